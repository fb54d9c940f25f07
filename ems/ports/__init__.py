"""Ports: small interfaces that adapters implement (the time-series store, the ledger store)."""
