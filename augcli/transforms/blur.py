"""placeholder: filled by the catalogue work."""
