"""Sign-in: the password grant with its throttle and lockout, refresh-token families, the
browser session that follows a sign-in, and single sign-on with an identity provider."""
