"""Projects, their members and roles, and the networks their data may be reached from
(each project's own, or the site's default)."""
