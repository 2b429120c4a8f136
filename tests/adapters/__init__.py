"""Adapter tests; `roundtrip` holds what they share."""
