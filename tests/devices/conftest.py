"""Fixtures for the device-protocol tests: the MQTT path's real ingest (validation, counters,
SQLite store) behind a device gateway, without a broker (bridges deliver in-process)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from adapters.devices.gateway import DeviceGateway, ingest_deliver
from adapters.mqtt.client import MqttClient
from adapters.mqtt.config import MqttSettings
from adapters.mqtt.ingest import TelemetryIngest
from adapters.sqlite_store import SQLiteStore

COMMUNITY = "testcer"


@dataclass
class Plant:
    """What the runtime would see: states by device, flexibility flags, alerts."""

    ingest: TelemetryIngest
    gateway: DeviceGateway
    store: SQLiteStore
    states: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    flex: list[tuple[tuple[str, str, str], bool, str]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)

    def last(self, hub: str, kind: str, device: str) -> dict[str, Any] | None:
        got = self.states.get((hub, kind, device))
        return got[-1] if got else None

    def counters(self) -> dict[str, int]:
        self.gateway.flush()
        return self.ingest.counters()


@pytest.fixture
def plant(tmp_path):
    store = SQLiteStore(tmp_path / "ts.sqlite")
    client = MqttClient(MqttSettings(community=COMMUNITY))
    holder: dict[str, Plant] = {}

    def on_state(topic, state):
        holder["p"].states.setdefault((topic.hub, topic.kind, topic.device), []).append(
            state.model_dump(mode="json")
        )

    ingest = TelemetryIngest(client, store, on_state=on_state)
    p = Plant(ingest, None, store)  # type: ignore[arg-type]
    p.gateway = DeviceGateway(
        COMMUNITY,
        ingest_deliver(ingest),
        on_flexibility=lambda k, ok, t: p.flex.append((k, ok, t)),
        on_alert=p.alerts.append,
    )
    holder["p"] = p
    yield p
    p.gateway.close()
    store.close()


def wait_for(cond: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1/localhost (security profile 2)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the test certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"
