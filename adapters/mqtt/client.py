"""A paho-mqtt 2.x client with the EMS's conventions.

- QoS 1 and a persistent session (MQTT 3.1.1 ``clean_session=False`` or MQTT 5 ``clean_start=False``
  with a session expiry), a stable client id: the broker queues messages while we are away;
- QoS 1 messages are acknowledged (PUBACK) only after their handler has returned (paho's
  ``manual_ack``): a handler that persists what it took before returning makes the broker keep
  every message the EMS has not made durable; a handler that raises leaves its message
  unacknowledged, and the broker delivers it again after the next reconnect;
- reconnect with exponential backoff (``reconnect_min_s`` … ``reconnect_max_s``, at most 10 s),
  also when the broker is down at start;
- last will ``{"state": "offline"}`` retained on ``cer/<community>/ems/status``; ``online`` is
  published (retained) on every connect;
- TLS and username/password from :class:`MqttSettings`; the password is never logged.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from adapters.mqtt.config import MqttSettings
from ems.errors import ConfigError
from ems.telemetry.rejects import RejectCounter
from ems.telemetry.topics import status_topic

log = logging.getLogger(__name__)

MessageHandler = Callable[[paho.MQTTMessage], None]
#: Messages that arrive before their handler is registered are kept for it this long after
#: start, at most this many (see :meth:`MqttClient._on_message`).
EARLY_WINDOW_S = 10.0
MAX_EARLY_MESSAGES = 100_000


class _QuietPaho(logging.Filter):
    """paho 2.2 logs "Client is not connected" at ERROR from its loop after every disconnect;
    our own callbacks already log connection loss once, with the broker address."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Client is not connected")


_PAHO_LOG = logging.getLogger("paho")
_PAHO_LOG.addFilter(_QuietPaho())


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class MqttClient:
    """One connection to the broker, shared by telemetry ingest and setpoint publishing."""

    def __init__(
        self, settings: MqttSettings, *, client_id: str | None = None, last_will: bool = True
    ) -> None:
        self.settings = settings
        self.client_id = client_id or settings.client_id
        self.status_topic = status_topic(settings.community)
        self._subscriptions: dict[str, tuple[int, MessageHandler]] = {}
        self._early: list[paho.MQTTMessage] = []  # arrived before their handler was registered
        self._started_at = time.monotonic()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._sub_pending: set[int] = set()  # SUBSCRIBE packet ids not yet acknowledged
        self._sub_early_acks: set[int] = set()
        self._resubscribing = False
        self.connects = 0
        self.disconnects = 0
        self.unacked = 0  # messages left unacknowledged because their handler failed
        self._handler_errors = RejectCounter(burst=5, logger=log)
        v5 = settings.protocol == "5"
        self._v5 = v5
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        self._client.enable_logger(_PAHO_LOG)
        self._client.reconnect_delay_set(
            min_delay=max(1, int(settings.reconnect_min_s)),
            max_delay=max(1, int(settings.reconnect_max_s)),
        )
        self._client.max_inflight_messages_set(100)
        self._client.max_queued_messages_set(0)  # unlimited: QoS 1 publishes wait for the broker
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password_value())
        if settings.tls:
            try:
                self._client.tls_set(
                    ca_certs=str(settings.ca_file) if settings.ca_file else None,
                    certfile=str(settings.cert_file) if settings.cert_file else None,
                    keyfile=str(settings.key_file) if settings.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError("config", "mqtt.tls", f"cannot load TLS files: {exc}") from exc
            self._client.tls_insecure_set(settings.tls_insecure)
        if last_will:
            self._client.will_set(
                self.status_topic,
                json.dumps({"state": "offline", "client_id": self.client_id}),
                qos=1,
                retain=True,
            )
        self._last_will = last_will
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> MqttClient:
        """Connect in the background (retrying with backoff until the broker answers)."""
        self._started_at = time.monotonic()
        properties = None
        kwargs: dict[str, Any] = {}
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.settings.session_expiry_s
            kwargs = {"clean_start": False, "properties": properties}
        self._client.connect_async(
            self.settings.host, self.settings.port, self.settings.keepalive_s, **kwargs
        )
        self._client.loop_start()
        return self

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, *, announce_offline: bool = True, timeout_s: float = 5.0) -> None:
        """Announce ``offline`` (retained), disconnect cleanly, stop the network thread.

        The broker keeps the persistent session (subscriptions and queued QoS 1 messages).
        """
        if announce_offline and self._last_will and self.connected:
            info = self._client.publish(
                self.status_topic,
                json.dumps({"state": "offline", "client_id": self.client_id, "ts": utc_now_iso()}),
                qos=1,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def kill(self) -> None:
        """Drop the connection without DISCONNECT (the broker publishes the last will). For tests."""
        self._client.loop_stop()
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        self._connected.clear()

    # ------------------------------------------------------------------ pub/sub

    def subscribe(self, topic: str, handler: MessageHandler, qos: int = 1) -> None:
        """Subscribe now (if connected) and again after every reconnect.

        Messages the broker sent before this handler existed (a persistent session delivers its
        queue as soon as the client connects) were kept; they are handed to it first."""
        while True:
            with self._lock:
                early = [m for m in self._early if paho.topic_matches_sub(topic, m.topic)]
                if not early:
                    # under the lock: _on_message either sees this handler or kept its message
                    self._client.message_callback_add(
                        topic, lambda _c, _u, msg: self._dispatch(handler, msg)
                    )
                    self._subscriptions[topic] = (qos, handler)
                    connected = self._connected.is_set()
                    break
                self._early = [m for m in self._early if m not in early]
            for msg in early:
                self._dispatch(handler, msg)
        if connected:
            self._send_subscribe(self._client, topic, qos)

    def _dispatch(self, handler: MessageHandler, msg: paho.MQTTMessage) -> None:
        """Run the handler; acknowledge the message only when it returned."""
        try:
            handler(msg)
        except Exception as exc:  # noqa: BLE001 - never let a handler kill the network thread
            self.unacked += 1
            self._handler_errors.record_error(
                "not_acknowledged",
                f"message on {msg.topic} left for redelivery: {type(exc).__name__}: {exc}",
            )
            return
        if msg.qos > 0:
            self._client.ack(msg.mid, msg.qos)

    def _send_subscribe(self, client: paho.Client, topic: str, qos: int) -> None:
        rc, mid = client.subscribe(topic, qos)
        if rc != paho.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected any more: _on_connect subscribes again
        with self._lock:
            if mid in self._sub_early_acks:
                self._sub_early_acks.discard(mid)
            else:
                self._sub_pending.add(mid)

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, reason_codes: Any, _props: Any
    ) -> None:
        for code in reason_codes or []:
            if getattr(code, "is_failure", False):
                log.error("broker refused a subscription (mid %s): %s — check the ACL", mid, code)
        with self._lock:
            if mid in self._sub_pending:
                self._sub_pending.discard(mid)
            else:
                self._sub_early_acks.add(mid)

    def wait_subscribed(self, timeout_s: float = 10.0) -> bool:
        """Wait until connected and every subscription is acknowledged by the broker."""
        deadline = time.monotonic() + timeout_s
        if not self._connected.wait(timeout_s):
            return False
        while time.monotonic() < deadline:
            with self._lock:
                if not self._sub_pending and not self._resubscribing and self._connected.is_set():
                    return True
            time.sleep(0.01)
        return False

    def publish(
        self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        """Publish; with QoS 1 the message is queued and delivered after a reconnect if needed."""
        return self._client.publish(topic, payload, qos=qos, retain=retain)

    def publish_status(self, status: dict[str, Any]) -> paho.MQTTMessageInfo:
        """Publish the status document, retained, QoS 1."""
        document = {"state": "online", "client_id": self.client_id, "ts": utc_now_iso(), **status}
        return self.publish(
            self.status_topic, json.dumps(document, separators=(",", ":")), qos=1, retain=True
        )

    # ------------------------------------------------------------------ callbacks

    def _on_connect(
        self, client: paho.Client, _userdata: Any, flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.error(
                "MQTT broker %s:%d refused the connection: %s",
                self.settings.host,
                self.settings.port,
                reason,
            )
            return
        self.connects += 1
        log.info(
            "MQTT connected to %s:%d as %s (session present: %s)",
            self.settings.host,
            self.settings.port,
            self.client_id,
            getattr(flags, "session_present", "?"),
        )
        with self._lock:
            subscriptions = list(self._subscriptions.items())
            self._resubscribing = True
            self._connected.set()
        with self._lock:
            self._sub_pending.clear()  # acknowledgements of the old connection will not come
            self._sub_early_acks.clear()
        for topic, (qos, _handler) in subscriptions:
            self._send_subscribe(client, topic, qos)
        with self._lock:
            self._resubscribing = False
        if self._last_will:
            client.publish(
                self.status_topic,
                json.dumps({"state": "online", "client_id": self.client_id, "ts": utc_now_iso()}),
                qos=1,
                retain=True,
            )

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()
        self.disconnects += 1
        if reason.is_failure:
            log.warning(
                "MQTT connection to %s:%d lost (%s); reconnecting with backoff",
                self.settings.host,
                self.settings.port,
                reason,
            )

    def _on_message(self, client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        """A message no registered handler took. In the first ``EARLY_WINDOW_S`` after start (a
        persistent session delivers its queue as soon as the client connects, maybe before the
        handlers are registered) it is kept, unacknowledged, for :meth:`subscribe`; later, and
        for topics nobody registers, it is acknowledged and dropped."""
        now = time.monotonic()
        with self._lock:
            handler = next(
                (
                    h
                    for f, (_q, h) in self._subscriptions.items()
                    if paho.topic_matches_sub(f, msg.topic)
                ),
                None,
            )
            early = now - self._started_at < EARLY_WINDOW_S
            if handler is None and early and len(self._early) < MAX_EARLY_MESSAGES:
                self._early.append(msg)
                return
            stale: list[paho.MQTTMessage] = []
            if not early and self._early:
                stale, self._early = self._early, []
        if handler is not None:
            self._dispatch(handler, msg)
            return
        for m in [*stale, msg]:
            log.debug("message on unsubscribed topic %s ignored", m.topic)
            if m.qos > 0:
                client.ack(m.mid, m.qos)

    def __repr__(self) -> str:
        return (
            f"MqttClient({self.settings.host}:{self.settings.port}, client_id={self.client_id!r})"
        )


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll ``predicate`` until true or timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
