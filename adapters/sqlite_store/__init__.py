"""Embedded time-series store (SQLite): the default when no InfluxDB is configured."""

from adapters.sqlite_store.store import SQLiteStore

__all__ = ["SQLiteStore"]
