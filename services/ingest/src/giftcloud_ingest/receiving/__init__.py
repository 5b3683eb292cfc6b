"""The receiving core: what every way in shares (checks, uploads, bundles, their records)."""
