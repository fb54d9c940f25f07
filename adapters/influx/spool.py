"""A disk-backed FIFO of line-protocol batches (SQLite, WAL, fsync on commit).

Batches that could not be written to the server are appended here in order and removed only after
the server acknowledged them, so a crash or restart of the process loses nothing: the next writer
opened on the same file drains it first. Re-sending a batch the server already stored (crash
between acknowledgement and delete) is harmless: every point has an explicit timestamp, so InfluxDB
overwrites it with identical values instead of duplicating it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path


class DiskSpool:
    """FIFO of (seq, body, n_points). Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " n_points INTEGER NOT NULL, body BLOB NOT NULL, queued_at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " n_points INTEGER NOT NULL, body BLOB NOT NULL, error TEXT NOT NULL, failed_at REAL NOT NULL)"
        )
        self._points = self._db.execute(
            "SELECT COALESCE(SUM(n_points), 0) FROM batches"
        ).fetchone()[0]

    def append(self, body: bytes, n_points: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO batches (n_points, body, queued_at) VALUES (?, ?, ?)",
                (n_points, body, time.time()),
            )
            self._points += n_points

    def oldest(self) -> tuple[int, bytes, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, body, n_points FROM batches ORDER BY seq LIMIT 1"
            ).fetchone()
        return None if row is None else (row[0], bytes(row[1]), row[2])

    def remove(self, seq: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT n_points FROM batches WHERE seq = ?", (seq,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                self._points -= row[0]

    def dead_letter(self, seq: int | None, body: bytes, n_points: int, error: str) -> None:
        """Keep a batch the server refused as invalid (HTTP 400) for inspection; drop it from the FIFO."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO dead_letters (n_points, body, error, failed_at) VALUES (?, ?, ?, ?)",
                (n_points, body, error[:2000], time.time()),
            )
            if seq is not None:
                row = self._db.execute(
                    "SELECT n_points FROM batches WHERE seq = ?", (seq,)
                ).fetchone()
                if row is not None:
                    self._db.execute("DELETE FROM batches WHERE seq = ?", (seq,))
                    self._points -= row[0]
            self._db.execute("COMMIT")

    @property
    def points(self) -> int:
        """Points waiting in the spool."""
        return self._points

    def batches(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]

    def dead_letter_points(self) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COALESCE(SUM(n_points), 0) FROM dead_letters"
            ).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
