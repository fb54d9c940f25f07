"""Subprocess for the outage test: write points while InfluxDB is down, report when they are all in
the disk buffer, then wait to be killed (SIGKILL: no clean shutdown)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from adapters.influx import InfluxSettings, InfluxStore
from ems.ports.timeseries import Point


def main(url: str, database: str, buffer_path: str, n: int, t0_ns: int) -> None:
    store = InfluxStore(
        InfluxSettings(
            url=url,
            database=database,
            buffer_path=Path(buffer_path),
            batch_size=500,
            flush_interval_s=0.1,
        )
    )
    for start in range(0, n, 250):
        store.write(
            [
                Point(
                    "telemetry",
                    t0_ns + i * 1_000_000_000,
                    {"community": "outage", "hub": "hub1", "device": "m1", "kind": "meter"},
                    {"import_p_kw": float(i), "export_p_kw": 0.0},
                )
                for i in range(start, min(n, start + 250))
            ]
        )
    deadline = time.monotonic() + 30
    while store.stats()["points_buffered_disk"] < n and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"SPOOLED {store.stats()['points_buffered_disk']}", flush=True)
    time.sleep(600)  # killed by the test


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
