"""Telemetry ingest: MQTT device states → validation → time-series store.

Accepted states become ``telemetry`` points (tags community/hub/device/kind). Rejected payloads
are counted per reason and logged as one line each, rate-limited per reason
(:class:`~ems.telemetry.rejects.RejectCounter`); the counters are published in the retained EMS
status and written to the store as the ``ingest`` measurement.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

import paho.mqtt.client as paho
from pydantic import BaseModel

from adapters.mqtt.client import MqttClient
from ems.ports.timeseries import Point, TimeSeriesStore
from ems.telemetry.rejects import RejectCounter
from ems.telemetry.topics import Topic, job_subscription, state_subscription
from ems.telemetry.validate import (
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
        self.rejects = RejectCounter(burst=log_burst, logger=log)
        self._latest: dict[tuple[str, str, str], tuple[datetime, BaseModel]] = {}
        self._lock = threading.Lock()
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
        """Decode, store, hand to ``on_state``. The client acknowledges the message (QoS 1) only
        when this returns: an exception from ``on_state`` (its state could not be persisted)
        leaves it unacknowledged, so the broker delivers it again after the next reconnect."""
        result = decode_state(  # never raises: every failure is a counted reason
            msg.topic,
            msg.payload,
            now=self.clock(),
            community=self.community,
            registry=self.registry,
            limits=self.limits,
        )
        if isinstance(result, Rejected):
            self.rejects.record(result)
            if self.on_reject is not None:
                self.on_reject(result)
            return
        topic = result.topic
        try:
            self.store.write([to_point(result)])
        except Exception as exc:  # noqa: BLE001 - the store spools; a failure is counted, once
            self.rejects.record_error("store_error", f"{type(exc).__name__}: {exc}")
        if self.on_state is not None:
            self.on_state(topic, result.state)  # persists before we return (and acknowledge)
        with self._lock:
            self.accepted += 1
            if topic.channel == "state":
                self._latest[(topic.hub, topic.kind, topic.device)] = (
                    result.state.ts,  # type: ignore[attr-defined]
                    result.state,
                )

    # ------------------------------------------------------------------ status

    def latest(self) -> Mapping[tuple[str, str, str], tuple[datetime, BaseModel]]:
        with self._lock:
            return dict(self._latest)

    def counters(self) -> dict[str, int]:
        rejected = self.rejects.snapshot()
        with self._lock:
            counts = {"accepted": self.accepted, "rejected": sum(rejected.values())}
        counts.update({f"rejected_{k}": v for k, v in sorted(rejected.items())})
        counts.update(self.rejects.error_snapshot())  # e.g. store_error, not_persisted
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
