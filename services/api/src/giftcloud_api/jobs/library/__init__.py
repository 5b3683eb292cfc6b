"""The algorithms giftcloud ships (each approved, or not, by a site's admin like any other)."""
