"""Signing keys and revocation: the keys that sign access tokens (a ring: published before
they sign, retired after their last token expired), and the list of subjects whose tokens
issued before a moment are refused."""
