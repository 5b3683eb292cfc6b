"""Results back to the clinic: pulled from the hub, approved by a reidentifier, delivered."""
