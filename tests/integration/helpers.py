"""Helpers for integration tests: an ingest pipeline, a QoS 1 publisher, session cleanup."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt import MqttClient, MqttSettings, TelemetryIngest
from adapters.mqtt.client import wait_until
from ems.ports.timeseries import TimeSeriesStore

__all__ = ["Pipeline", "Publisher", "forget_session", "mosquitto_pub", "wait_until"]


def forget_session(host: str, port: int, client_id: str) -> None:
    """Drop a persistent session from the broker (connect once with a clean session)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    try:
        client.connect(host, port, 10)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()
    except OSError:
        pass


def clear_retained(host: str, port: int, topics: list[str]) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    client.connect(host, port, 10)
    client.loop_start()
    for topic in topics:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def mosquitto_pub(
    host: str,
    port: int,
    topic: str,
    payload: bytes | str | None = None,
    *,
    lines: list[str] | None = None,
    qos: int = 1,
    client_id: str | None = None,
    extra: list[str] | None = None,
) -> None:
    """Publish with Mosquitto's own client: one payload (``-s``, raw bytes) or one message per line
    (``-l``)."""
    argv = ["mosquitto_pub", "-h", host, "-p", str(port), "-q", str(qos), "-t", topic]
    if client_id:
        argv += ["-i", client_id]
    argv += extra or []
    if lines is not None:
        data = ("\n".join(lines) + "\n").encode()
        argv.append("-l")
    else:
        data = payload.encode() if isinstance(payload, str) else (payload or b"")
        argv.append("-s")
    subprocess.run(argv, input=data, check=True, timeout=60, capture_output=True)


@dataclass
class Pipeline:
    """MQTT client + telemetry ingest feeding a store."""

    client: MqttClient
    ingest: TelemetryIngest
    store: TimeSeriesStore

    @classmethod
    def start(
        cls,
        host: str,
        port: int,
        community: str,
        store: TimeSeriesStore,
        *,
        client_id: str,
        **ingest_kwargs: Any,
    ) -> Pipeline:
        settings = MqttSettings(
            host=host,
            port=port,
            community=community,
            client_id=client_id,
            reconnect_min_s=1,
            reconnect_max_s=2,
            status_interval_s=1,
            keepalive_s=5,
        )
        client = MqttClient(settings).start()
        ingest = TelemetryIngest(client, store, **ingest_kwargs)
        ingest.start()
        assert client.wait_subscribed(10), f"could not connect and subscribe to {host}:{port}"
        return cls(client, ingest, store)

    def stop(self) -> None:
        self.ingest.stop()
        self.client.stop()


class Publisher:
    """A QoS 1 publisher with a persistent session (keeps unacknowledged messages across reconnects)."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.connected = False
        self.client.on_connect = lambda *a: setattr(self, "connected", True)
        self.client.on_disconnect = lambda *a: setattr(self, "connected", False)
        self.client.connect_async(host, port, 5)
        self.client.loop_start()
        assert wait_until(lambda: self.connected, 10)
        self.infos: list[paho.MQTTMessageInfo] = []

    def publish(self, topic: str, document: dict | bytes | str) -> None:
        payload = json.dumps(document) if isinstance(document, dict) else document
        self.infos.append(self.client.publish(topic, payload, qos=1))

    def all_acknowledged(self) -> bool:
        return all(info.is_published() for info in self.infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_test_pki(pki: Path, ca_cn: str = "cer-ems test CA") -> None:
    """A throw-away CA (ca.crt/ca.key) and a server certificate for localhost and 127.0.0.1
    (server.crt/server.key) in ``pki``, valid two days, made with the real openssl."""

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=pki, check=True, capture_output=True)

    key = ["-newkey", "rsa:2048", "-nodes"]
    ssl(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        f"/CN={ca_cn}",
    )
    ssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (pki / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext",
    )
