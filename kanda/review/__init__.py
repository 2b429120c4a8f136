"""Steward review of quarantined records: queue, fixes re-validated by the contract, audit, reprocessing."""
