"""SQLite implementation of :class:`ems.ports.timeseries.TimeSeriesStore`.

Same data model as InfluxDB: a point is identified by measurement, tags and time; writing it again
merges its fields (as InfluxDB does), so replays are idempotent. Writes are batched in memory and
committed by a background thread (``batch_size`` points or every ``flush_interval_s``), in WAL mode.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ems.ports.timeseries import STANDARD_TAGS, Point, Sample, SeriesQuery

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    community TEXT NOT NULL DEFAULT '',
    hub TEXT NOT NULL DEFAULT '',
    device TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT '',
    extra_tags TEXT NOT NULL DEFAULT '{}',
    time_ns INTEGER NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (measurement, community, hub, device, kind, extra_tags, time_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (measurement, time_ns);
"""

_UPSERT = (
    "INSERT INTO points (measurement, community, hub, device, kind, extra_tags, time_ns, fields)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT DO UPDATE SET fields = json_patch(points.fields, excluded.fields)"
)


def _row(point: Point) -> tuple[Any, ...]:
    tags = point.tags
    extra = {k: v for k, v in tags.items() if k not in STANDARD_TAGS}
    return (
        point.measurement,
        tags.get("community", ""),
        tags.get("hub", ""),
        tags.get("device", ""),
        tags.get("kind", ""),
        json.dumps(extra, sort_keys=True, separators=(",", ":")),
        point.time_ns,
        json.dumps(dict(point.fields), separators=(",", ":")),
    )


class SQLiteStore:
    """Embedded store: one SQLite file, batched commits, reads straight from the file."""

    def __init__(
        self, path: str | Path, *, batch_size: int = 5000, flush_interval_s: float = 0.5
    ) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db_lock = threading.Lock()
        self._pending: deque[tuple[Any, ...]] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._flush_requested = False
        self._stop = False
        self.counters = {
            "points_accepted": 0,
            "points_sent": 0,
            "batches_sent": 0,
            "write_failures": 0,
        }
        self._thread = threading.Thread(target=self._run, name="sqlite-store", daemon=True)
        self._thread.start()

    def write(self, points: Iterable[Point]) -> None:
        rows = [_row(p) for p in points]
        with self._lock:
            if self._stop:
                raise RuntimeError("store is closed")
            self._pending.extend(rows)
            self.counters["points_accepted"] += len(rows)
            if len(self._pending) >= self.batch_size:
                self._wake.notify()

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        with self._db_lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _run(self) -> None:
        last = time.monotonic()
        while True:
            with self._lock:
                while (
                    not self._stop
                    and not self._flush_requested
                    and len(self._pending) < self.batch_size
                    and not (self._pending and time.monotonic() - last >= self.flush_interval_s)
                ):
                    self._wake.wait(timeout=self.flush_interval_s)
                if not self._pending:
                    self._flush_requested = False
                    self._idle.notify_all()
                    if self._stop:
                        return
                    continue
                n = min(len(self._pending), self.batch_size)
                rows = [self._pending.popleft() for _ in range(n)]
                self._in_flight = n
            try:
                self._commit(rows)
                with self._lock:
                    self.counters["points_sent"] += n
                    self.counters["batches_sent"] += 1
            except sqlite3.Error:
                log.exception("SQLite write failed; retrying")
                with self._lock:
                    self.counters["write_failures"] += 1
                    self._pending.extendleft(reversed(rows))
                time.sleep(0.5)
            finally:
                with self._lock:
                    self._in_flight = 0
                    self._idle.notify_all()
                last = time.monotonic()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every accepted point is committed; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while self._pending or self._in_flight:
                self._flush_requested = True
                self._wake.notify()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(timeout=0.1 if remaining is None else min(0.1, remaining))
            return True

    def read(self, query: SeriesQuery) -> list[Sample]:
        self.flush()
        where = [
            "measurement = ?",
            "time_ns >= ?",
            "time_ns < ?",
            "json_extract(fields, ?) IS NOT NULL",
        ]
        path = "$." + json.dumps(query.field)
        args: list[Any] = [query.measurement, int(query.start_ns), int(query.end_ns), path]
        for key, value in sorted(query.tags.items()):
            if key in STANDARD_TAGS:
                where.append(f"{key} = ?")
            else:
                where.append("json_extract(extra_tags, ?) = ?")
                args.append("$." + json.dumps(key))
            args.append(value)
        sql_where = " AND ".join(where)
        with self._db_lock:
            if query.every_s > 0:
                bucket = int(query.every_s) * 1_000_000_000
                rows = self._db.execute(
                    f"SELECT (time_ns / {bucket}) * {bucket} AS t, AVG(json_extract(fields, ?)) FROM points"
                    f" WHERE {sql_where} GROUP BY t ORDER BY t",
                    [path, *args],
                ).fetchall()
                return [Sample(int(t), v) for t, v in rows]
            rows = self._db.execute(
                "SELECT time_ns, json_extract(fields, ?), community, hub, device, kind, extra_tags"
                f" FROM points WHERE {sql_where} ORDER BY time_ns",
                [path, *args],
            ).fetchall()
        samples = []
        for t, value, community, hub, device, kind, extra in rows:
            tags = {
                k: v
                for k, v in zip(STANDARD_TAGS, (community, hub, device, kind), strict=False)
                if v
            }
            tags.update(json.loads(extra))
            samples.append(Sample(int(t), value, tags))
        return samples

    def count(self, measurement: str) -> int:
        """Number of points of a measurement (for tests and the benchmark)."""
        self.flush()
        with self._db_lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM points WHERE measurement = ?", (measurement,)
            ).fetchone()[0]

    def stats(self) -> Mapping[str, int]:
        with self._lock:
            return {
                **self.counters,
                "points_pending_memory": len(self._pending),
                "points_buffered_disk": 0,
            }

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._stop = True
            self._wake.notify()
        self._thread.join()
        with self._db_lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"
