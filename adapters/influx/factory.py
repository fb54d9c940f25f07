"""Pick the time-series store: InfluxDB when configured, else the embedded SQLite store."""

from __future__ import annotations

from pathlib import Path

from adapters.influx.config import InfluxSettings
from ems.ports.timeseries import TimeSeriesStore

DEFAULT_SQLITE_PATH = Path("var/ems.sqlite")


def open_store(influx: InfluxSettings | None, sqlite_path: Path | None = None) -> TimeSeriesStore:
    """InfluxDB (1.x or 2.x/3.x) if ``influx`` is given, otherwise SQLite at ``sqlite_path``."""
    if influx is not None:
        from adapters.influx.store import InfluxStore

        return InfluxStore(influx)
    from adapters.sqlite_store import SQLiteStore

    return SQLiteStore(sqlite_path or DEFAULT_SQLITE_PATH)
