"""The site's audit trail, kept by api."""
