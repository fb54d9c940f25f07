"""Counting and logging of rejected payloads, shared by every ingest path (MQTT, OCPP, Modbus).

:class:`RejectCounter` is the one stable API: :meth:`RejectCounter.record` counts a
:class:`~ems.telemetry.validate.Rejected` under its reason (the counter name is the
:class:`~ems.telemetry.validate.RejectReason` value) and logs it as ONE line, at most ``burst``
lines per reason per ``window_s``; what is not logged is summed up in one line per reason when the
window closes. No traceback is ever logged for a payload: a hostile gateway cannot flood the log.
:meth:`RejectCounter.record_error` does the same for failures that are not the payload's fault
(store, persistence), under their own names.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

from ems.telemetry.validate import Rejected

log = logging.getLogger("ems.telemetry.rejects")


class RejectCounter:
    """Per-reason counters and a per-reason rate-limited log (thread-safe)."""

    def __init__(
        self,
        *,
        burst: int = 20,
        window_s: float = 60.0,
        logger: logging.Logger | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window_s = window_s
        self.log = logger or log
        self._monotonic = monotonic
        self.counts: Counter[str] = Counter()  # rejected payloads, per reason
        self.errors: Counter[str] = Counter()  # failures that are not the payload's, per name
        self.logged: Counter[str] = Counter()  # lines written in the current window, per reason
        self.suppressed: Counter[str] = Counter()  # not written in the current window, per reason
        self._window_start = monotonic()
        self._lock = threading.Lock()

    def record(self, rejected: Rejected) -> None:
        """Count one rejected payload and log it (rate-limited)."""
        self._count(self.counts, rejected.reason.value, f"payload rejected: {rejected}")

    def record_error(self, name: str, detail: str) -> None:
        """Count one failure that is not the payload's (e.g. ``store_error``) and log it."""
        self._count(self.errors, name, f"{name}: {detail}")

    def _count(self, counter: Counter[str], name: str, line: str) -> None:
        with self._lock:
            counter[name] += 1
            self._roll_window()
            write = self.logged[name] < self.burst
            if write:
                self.logged[name] += 1
            else:
                self.suppressed[name] += 1
        if write:
            self.log.warning("%s", line.replace("\n", " ")[:500])

    def _roll_window(self) -> None:
        now = self._monotonic()
        if now - self._window_start < self.window_s:
            return
        for name, n in sorted(self.suppressed.items()):
            self.log.warning(
                "%d more lines of %s in the last %.0f s not logged",
                n,
                name,
                now - self._window_start,
            )
        self.suppressed.clear()
        self.logged.clear()
        self._window_start = now

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def snapshot(self) -> dict[str, int]:
        """``{reason: count}`` of the payloads rejected so far."""
        with self._lock:
            return dict(self.counts)

    def error_snapshot(self) -> dict[str, int]:
        """``{name: count}`` of the other failures recorded so far."""
        with self._lock:
            return dict(self.errors)


__all__ = ["RejectCounter"]
