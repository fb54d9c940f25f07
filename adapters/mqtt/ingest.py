"""Telemetry ingest: MQTT device states → validation → time-series store.

Accepted states become ``telemetry`` points (tags community/hub/device/kind). Rejected payloads
are logged with their reason (rate-limited per reason) and counted; the counters are published in
the retained EMS status and written to the store as the ``ingest`` measurement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

import paho.mqtt.client as paho
from pydantic import BaseModel

from adapters.mqtt.client import MqttClient
from ems.ports.timeseries import Point, TimeSeriesStore
from ems.telemetry.topics import Topic, job_subscription, state_subscription
from ems.telemetry.validate import (
    Accepted,
    DeviceRegistry,
    Rejected,
    RejectReason,
    ValidationLimits,
    decode_state,
    to_point,
)

log = logging.getLogger(__name__)

StateCallback = Callable[[Topic, BaseModel], None]


class TelemetryIngest:
    """Subscribes to every device state (and job announcement) of the community and feeds the store."""

    def __init__(
        self,
        client: MqttClient,
        store: TimeSeriesStore,
        *,
        registry: DeviceRegistry | None = None,
        limits: ValidationLimits | None = None,
        on_state: StateCallback | None = None,
        on_reject: Callable[[Rejected], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        log_burst: int = 20,
    ) -> None:
        self.client = client
        self.store = store
        self.community = client.settings.community
        self.registry = registry or DeviceRegistry()
        self.limits = limits or ValidationLimits()
        self.on_state = on_state
        self.on_reject = on_reject
        self.clock = clock
        self.log_burst = log_burst
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self._latest: dict[tuple[str, str, str], tuple[datetime, BaseModel]] = {}
        self._lock = threading.Lock()
        self._log_window_start = time.monotonic()
        self._logged_in_window: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()
        self._status_stop = threading.Event()
        self._status_thread: threading.Thread | None = None

    def start(self) -> TelemetryIngest:
        self.client.subscribe(state_subscription(self.community), self._on_message, qos=1)
        self.client.subscribe(job_subscription(self.community), self._on_message, qos=1)
        self._status_thread = threading.Thread(
            target=self._status_loop, name="ems-status", daemon=True
        )
        self._status_thread.start()
        return self

    def stop(self) -> None:
        self._status_stop.set()
        if self._status_thread is not None:
            self._status_thread.join()
        self.report()

    # ------------------------------------------------------------------ messages

    def _on_message(self, msg: paho.MQTTMessage) -> None:
        try:
            result = decode_state(
                msg.topic,
                msg.payload,
                now=self.clock(),
                community=self.community,
                registry=self.registry,
                limits=self.limits,
            )
            if isinstance(result, Accepted):
                point = to_point(result)
                self.store.write([point])
                topic = result.topic
                with self._lock:
                    self.accepted += 1
                    if topic.channel == "state":
                        self._latest[(topic.hub, topic.kind, topic.device)] = (
                            result.state.ts,
                            result.state,
                        )  # type: ignore[attr-defined]
                if self.on_state is not None:
                    self.on_state(topic, result.state)
            else:
                with self._lock:
                    self.rejected[result.reason.value] += 1
                self._log_rejection(result)
                if self.on_reject is not None:
                    self.on_reject(result)
        except Exception:  # a bug must not stop the network thread
            log.exception("error handling message on %s", msg.topic)
            with self._lock:
                self.rejected["internal_error"] += 1

    def _log_rejection(self, rejected: Rejected) -> None:
        now = time.monotonic()
        reason = rejected.reason.value
        if now - self._log_window_start >= 60.0:
            for key, n in self._suppressed.items():
                log.warning(
                    "%d more payloads rejected as %s in the last minute (not logged)", n, key
                )
            self._suppressed.clear()
            self._logged_in_window.clear()
            self._log_window_start = now
        if self._logged_in_window[reason] < self.log_burst:
            self._logged_in_window[reason] += 1
            log.warning("payload rejected: %s", rejected)
        else:
            self._suppressed[reason] += 1

    # ------------------------------------------------------------------ status

    def latest(self) -> Mapping[tuple[str, str, str], tuple[datetime, BaseModel]]:
        with self._lock:
            return dict(self._latest)

    def counters(self) -> dict[str, int]:
        with self._lock:
            counts = {"accepted": self.accepted, "rejected": sum(self.rejected.values())}
            counts.update({f"rejected_{k}": v for k, v in sorted(self.rejected.items())})
            return counts

    def report(self, wait_s: float = 0.0) -> dict[str, int]:
        """Publish the counters in the EMS status (retained) and write them to the store.

        ``wait_s`` > 0 waits that long for the broker to acknowledge the status message.
        """
        counts = self.counters()
        store_stats = dict(self.store.stats())
        info = self.client.publish_status({"ingest": counts, "store": store_stats})
        if wait_s > 0:
            try:
                info.wait_for_publish(wait_s)
            except (RuntimeError, ValueError):
                log.warning("status not acknowledged by the broker within %.1f s", wait_s)
        fields: dict[str, int] = dict(counts)
        fields.update({f"store_{k}": int(v) for k, v in store_stats.items()})
        self.store.write(
            [
                Point(
                    "ingest",
                    time.time_ns(),
                    {
                        "community": self.community,
                        "hub": "ems",
                        "device": self.client.client_id,
                        "kind": "ingest",
                    },
                    fields,
                )
            ]
        )
        return counts

    def _status_loop(self) -> None:
        interval = self.client.settings.status_interval_s
        while not self._status_stop.wait(interval):
            try:
                self.report()
            except Exception:
                log.exception("could not publish the EMS status")


__all__ = ["RejectReason", "TelemetryIngest"]
