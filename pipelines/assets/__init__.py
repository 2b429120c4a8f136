"""Asset layers: `ingestion` (landing files into regional stores) and `rollups` (models and central publish)."""
