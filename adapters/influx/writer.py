"""Batched, disk-buffered writing of line protocol to an InfluxDB-compatible server.

Points are encoded when accepted and collected in memory. A background thread sends a batch when
``batch_size`` points are pending or ``flush_interval_s`` has passed. When the server cannot be
reached (connection refused, timeout, HTTP 5xx/429, auth failure) the batch is appended to the
:class:`~adapters.influx.spool.DiskSpool` and every later batch goes behind it, so order is kept;
the spool is drained oldest first, with exponential backoff between attempts, as soon as the server
answers again. A batch the server refuses as malformed (HTTP 400) is moved to the spool's dead-letter
table (kept, counted, logged) instead of blocking the queue forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from adapters.influx.lineproto import encode_point
from adapters.influx.spool import DiskSpool
from ems.ports.timeseries import Point

log = logging.getLogger(__name__)


class RetryableWriteError(Exception):
    """The server is unreachable or temporarily failing: keep the batch and retry later."""


class PermanentWriteError(Exception):
    """The server refused the batch's content: retrying cannot help."""


class LineSink(Protocol):
    def send(self, body: bytes) -> None:
        """Write a newline-separated line-protocol body; raise one of the errors above on failure."""

    def close(self) -> None: ...


class BufferedWriter:
    """Batches points in memory, sends them in a background thread, spools to disk on failure."""

    def __init__(
        self,
        sink: LineSink,
        spool: DiskSpool,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        max_memory_points: int = 200_000,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        name: str = "influx-writer",
    ) -> None:
        self.sink = sink
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.max_memory_points = max_memory_points
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self._pending: deque[str] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._stop = False
        self._flush_requested = False
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self.counters = {
            "points_accepted": 0,
            "points_sent": 0,
            "points_spooled": 0,
            "points_dead_lettered": 0,
            "write_failures": 0,
            "batches_sent": 0,
        }
        if spool.points:
            log.warning(
                "disk buffer %s holds %d points from an earlier run; sending them first",
                spool.path,
                spool.points,
            )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ API

    def write(self, points: Iterable[Point]) -> None:
        lines = [encode_point(p) for p in points]
        if not lines:
            return
        with self._lock:
            if self._stop:
                raise RuntimeError("writer is closed")
            self._pending.extend(lines)
            self.counters["points_accepted"] += len(lines)
            if len(self._pending) >= self.batch_size:
                self._wake.notify()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until nothing is pending in memory or on disk. False on timeout (points stay buffered)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            self._flush_requested = True
            self._retry_at = 0.0  # try now, not after the backoff
            self._wake.notify()
            while self._pending or self._in_flight or self.spool.points:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(timeout=0.05 if remaining is None else min(0.05, remaining))
                self._flush_requested = True
                self._wake.notify()
            return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Try to send everything for up to ``timeout_s``; whatever is left goes to the disk spool."""
        self.flush(timeout_s)
        with self._lock:
            self._stop = True
            self._wake.notify()
        self._thread.join()
        with self._lock:
            if self._pending:
                lines = list(self._pending)
                self._pending.clear()
                self._spool_lines(lines)
        self.spool.close()
        self.sink.close()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                **self.counters,
                "points_pending_memory": len(self._pending),
                "points_buffered_disk": self.spool.points,
            }

    # ------------------------------------------------------------------ worker

    def _spool_lines(self, lines: list[str]) -> None:
        self.spool.append("\n".join(lines).encode(), len(lines))
        self.counters["points_spooled"] += len(lines)

    def _take_batch(self) -> list[str]:
        n = min(self.batch_size, len(self._pending))
        return [self._pending.popleft() for _ in range(n)]

    def _failed(self, exc: Exception) -> None:
        self.counters["write_failures"] += 1
        self._backoff_s = min(self.backoff_max_s, max(self.backoff_min_s, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s
        log.warning(
            "InfluxDB write failed (%s); %d points on disk buffer, retry in %.1f s",
            exc,
            self.spool.points,
            self._backoff_s,
        )

    def _succeeded(self) -> None:
        if self._backoff_s:
            log.info("InfluxDB write recovered")
        self._backoff_s = 0.0
        self._retry_at = 0.0

    def _drain_spool_once(self) -> bool:
        """Send the oldest spooled batch. True if one was sent (or dead-lettered)."""
        item = self.spool.oldest()
        if item is None:
            return False
        seq, body, n = item
        try:
            self.sink.send(body)
        except PermanentWriteError as exc:
            log.error(
                "InfluxDB refused %d buffered points, kept as dead letters in %s: %s",
                n,
                self.spool.path,
                exc,
            )
            self.spool.dead_letter(seq, body, n, str(exc))
            with self._lock:
                self.counters["points_dead_lettered"] += n
            return True
        self.spool.remove(seq)
        with self._lock:
            self.counters["points_sent"] += n
            self.counters["batches_sent"] += 1
        return True

    def _run(self) -> None:
        last_send = time.monotonic()
        while True:
            with self._lock:
                while not self._stop:
                    now = time.monotonic()
                    due = (
                        len(self._pending) >= self.batch_size
                        or (self._pending and now - last_send >= self.flush_interval_s)
                        or self._flush_requested
                    )
                    backing_off = now < self._retry_at
                    if (due or self.spool.points) and not backing_off:
                        break
                    if (due or self.spool.points) and backing_off:
                        # Keep memory bounded while the server is down: move full batches to disk.
                        if (
                            len(self._pending) >= self.batch_size
                            or len(self._pending) >= self.max_memory_points
                        ):
                            break
                        wait = self._retry_at - now
                    else:
                        wait = (
                            max(0.0, self.flush_interval_s - (now - last_send))
                            if self._pending
                            else self.flush_interval_s
                        )
                    self._wake.wait(timeout=max(0.005, wait))
                if self._stop:
                    self._idle.notify_all()
                    return
                self._flush_requested = False
                backing_off = time.monotonic() < self._retry_at
                batch = self._take_batch() if self._pending else []
                self._in_flight = len(batch)
            try:
                self._step(batch, backing_off)
            finally:
                with self._lock:
                    self._in_flight = 0
                    last_send = time.monotonic()
                    self._idle.notify_all()

    def _step(self, batch: list[str], backing_off: bool) -> None:
        if backing_off:
            if batch:
                self._spool_lines(batch)
            return
        try:
            while self.spool.points:
                if batch:  # keep order: new points go behind the spooled ones
                    self._spool_lines(batch)
                    batch = []
                self._drain_spool_once()
            if batch:
                body = "\n".join(batch).encode()
                try:
                    self.sink.send(body)
                except PermanentWriteError as exc:
                    log.error(
                        "InfluxDB refused %d points, kept as dead letters in %s: %s",
                        len(batch),
                        self.spool.path,
                        exc,
                    )
                    self.spool.dead_letter(None, body, len(batch), str(exc))
                    with self._lock:
                        self.counters["points_dead_lettered"] += len(batch)
                    return
                with self._lock:
                    self.counters["points_sent"] += len(batch)
                    self.counters["batches_sent"] += 1
            self._succeeded()
        except RetryableWriteError as exc:
            if batch:
                self._spool_lines(batch)
            with self._lock:
                self._failed(exc)
        except Exception as exc:  # unexpected: never lose the batch, never kill the thread
            log.exception("unexpected error writing to InfluxDB")
            if batch:
                self._spool_lines(batch)
            with self._lock:
                self._failed(exc)
