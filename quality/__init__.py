"""Data quality: the canonical sale contract, boundary validation with quarantine, and batch checks."""
