"""Results from the hub: checked against the vault and mapped back to the originals."""
