"""The one device model: protocol bridges (OCPP, Modbus) feed the MQTT path's ingest and take the
runtime's setpoints.

A bridge turns what a device says into the JSON state payload of ``docs/mqtt.md`` and hands it to
:meth:`DeviceGateway.submit`. The gateway delivers it, on the state topic the device would use,
to the same ingest as MQTT telemetry (``adapters.mqtt.ingest.TelemetryIngest``): the same
validation (:func:`ems.telemetry.validate.decode_state`, with the same counted reject reasons),
the same ``telemetry`` store points, the same plant state. Delivery happens on the gateway's own
thread, in order, so a bridge's event loop never waits for a running control step.

Setpoints go the other way: :class:`SetpointRouter` is called by the runtime for each published
setpoint and passes it to the bridge that owns the device (the retained MQTT setpoint is still
published, for gateways and dashboards).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as futures_wait
from typing import Any, Protocol

from ems.telemetry.topics import state_topic

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str, str]
Deliver = Callable[[str, bytes], Any]


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """JSON as a gateway would send it; NaN/inf stay visible (``NaN``) and are rejected by the
    validation as ``non_finite``, like on MQTT."""
    return json.dumps(payload, default=_json_default, allow_nan=True).encode()


class DeviceGateway:
    """Ordered, non-blocking hand-over of bridge states (and flexibility flags) to the runtime."""

    def __init__(
        self,
        community: str,
        deliver: Deliver,
        *,
        on_flexibility: Callable[[DeviceKey, bool, str], None] | None = None,
        on_alert: Callable[[str], None] | None = None,
    ) -> None:
        self.community = community
        self.deliver = deliver
        self.on_flexibility = on_flexibility
        self.on_alert = on_alert
        self.submitted = 0
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="device-gateway", daemon=True)
        self._thread.start()

    # -------------------------------------------------------------- bridge side (any thread)
    def submit(self, hub: str, kind: str, device: str, payload: Mapping[str, Any]) -> None:
        """A device state, as the dict the MQTT payload would hold."""
        self.submitted += 1
        topic = state_topic(self.community, hub, kind, device)
        self._queue.put(("state", (topic, encode_payload(payload))))

    def flexibility(self, key: DeviceKey, ok: bool, text: str) -> None:
        """A device stopped (``ok=False``) or resumed taking setpoints."""
        self._queue.put(("flex", (key, ok, text)))

    def alert(self, text: str) -> None:
        self._queue.put(("alert", text))

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything submitted so far is delivered (tests, the simulated clock)."""
        done = threading.Event()
        self._queue.put(("mark", done))
        return done.wait(timeout_s)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    # -------------------------------------------------------------- runtime side
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            what, arg = item
            try:
                if what == "state":
                    self.deliver(*arg)
                elif what == "flex" and self.on_flexibility is not None:
                    self.on_flexibility(*arg)
                elif what == "alert" and self.on_alert is not None:
                    self.on_alert(arg)
                elif what == "mark":
                    arg.set()
            except Exception:  # a bug must not stop the delivery thread
                log.exception("device gateway: %s not delivered", what)


class SetpointTarget(Protocol):
    def handles(self, hub: str, kind: str, device: str) -> bool: ...

    def apply_setpoint(
        self, hub: str, kind: str, device: str, values: Mapping[str, Any]
    ) -> Any: ...


class SetpointRouter:
    """Passes each setpoint the runtime publishes to the bridge that owns the device."""

    def __init__(self, targets: list[SetpointTarget] | None = None) -> None:
        self.targets: list[SetpointTarget] = list(targets or [])
        self.routed = 0
        self.pending: list[Future] = []  # deliveries not yet awaited (see wait)

    def add(self, target: SetpointTarget) -> None:
        self.targets.append(target)

    def route(self, hub: str, kind: str, device: str, values: Mapping[str, Any]) -> bool:
        for target in self.targets:
            if target.handles(hub, kind, device):
                try:
                    fut = target.apply_setpoint(hub, kind, device, values)
                    if isinstance(fut, Future):
                        self.pending = [f for f in self.pending if not f.done()]
                        self.pending.append(fut)
                    self.routed += 1
                except Exception:
                    log.exception("setpoint for %s/%s/%s not passed on", hub, kind, device)
                return True
        return False

    def wait(self, timeout_s: float = 10.0) -> int:
        """Wait for the deliveries routed so far; returns how many did not finish in time."""
        pending, self.pending = self.pending, []
        _done, late = futures_wait(pending, timeout=timeout_s)
        return len(late)


def ingest_deliver(ingest: Any) -> Deliver:
    """Deliver to a :class:`adapters.mqtt.ingest.TelemetryIngest` exactly as its MQTT client does
    (a QoS 1 message on the state topic), so bridge states share its validation, counters and
    store points."""
    import paho.mqtt.client as paho

    def deliver(topic: str, payload: bytes) -> None:
        msg = paho.MQTTMessage(topic=topic.encode())
        msg.payload = payload
        msg.qos = 1
        ingest._on_message(msg)

    return deliver
