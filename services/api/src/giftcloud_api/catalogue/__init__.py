"""The catalogue: project → subject → study → series → instance, as archive announced them."""
