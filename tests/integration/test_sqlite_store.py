"""The embedded SQLite store behaves like InfluxDB for the EMS: series identity, field merge on
rewrite (idempotent replays), tag filters, windowed means, durability across reopen."""

from __future__ import annotations

from adapters.sqlite_store import SQLiteStore
from ems.ports.timeseries import Point, SeriesQuery, TimeSeriesStore

TAGS = {"community": "c", "hub": "hub1", "device": "bat1", "kind": "battery"}


def test_sqlite_store_semantics(tmp_path):
    path = tmp_path / "ems.sqlite"
    store = SQLiteStore(path, batch_size=7, flush_interval_s=0.05)
    assert isinstance(store, TimeSeriesStore)
    store.write(
        Point("telemetry", i * 10**9, TAGS, {"p_kw": float(i), "soc_pct": 50.0}) for i in range(100)
    )
    store.write([Point("telemetry", 5 * 10**9, {**TAGS, "device": "bat2"}, {"p_kw": -1.0})])
    # rewriting a point merges fields and never duplicates it (as InfluxDB does)
    store.write([Point("telemetry", 10 * 10**9, TAGS, {"p_kw": 10.0, "temp_c": 21.5})])
    store.write([Point("telemetry", 10 * 10**9, TAGS, {"p_kw": 10.0})])
    assert store.flush(10)
    assert store.count("telemetry") == 101
    bat1 = store.read(SeriesQuery("telemetry", "p_kw", 0, 100 * 10**9, {"device": "bat1"}))
    assert [s.value for s in bat1] == [float(i) for i in range(100)]
    assert bat1[0].tags == TAGS
    assert [
        (s.time_ns, s.value) for s in store.read(SeriesQuery("telemetry", "temp_c", 0, 2**62))
    ] == [(10 * 10**9, 21.5)]
    window = store.read(
        SeriesQuery("telemetry", "p_kw", 0, 20 * 10**9, {"device": "bat1"}, every_s=10)
    )
    assert [(s.time_ns, s.value) for s in window] == [(0, 4.5), (10 * 10**9, 14.5)]
    both = store.read(SeriesQuery("telemetry", "p_kw", 5 * 10**9, 6 * 10**9, {"hub": "hub1"}))
    assert sorted(s.tags["device"] for s in both) == ["bat1", "bat2"]
    store.close()
    reopened = SQLiteStore(path)
    assert reopened.count("telemetry") == 101
    reopened.close()
