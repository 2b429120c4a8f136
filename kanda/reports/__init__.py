"""Creators' daily sales reports: built in each region from its own store, rendered, and delivered once."""
