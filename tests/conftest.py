"""Shared fixtures: real servers on loopback (Mosquitto, InfluxDB 1.x, VictoriaMetrics).

Servers come from the environment (``.ci/services.sh`` exports ``EMS_TEST_MQTT_HOST/PORT``,
``EMS_TEST_INFLUX_URL``, ``EMS_TEST_VM_URL``), else the system Mosquitto on 127.0.0.1:1883, else a
private process started here on a free port. Tests that stop a server (broker restart, InfluxDB
outage) always get a private process of their own; the system services are never touched.

Under ``CI=true`` a test whose server is missing fails; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import servers


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_missing(reason: str) -> None:
    """Fail under CI, skip elsewhere."""
    if in_ci():
        pytest.fail(f"CI=true and a required server is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def mqtt_broker(server_root: Path) -> Iterator[tuple[str, int]]:
    """(host, port) of a running MQTT broker."""
    host = os.environ.get("EMS_TEST_MQTT_HOST")
    if host:
        port = int(os.environ.get("EMS_TEST_MQTT_PORT", "1883"))
        if not servers.port_open(host, port):
            server_missing(f"EMS_TEST_MQTT_HOST={host}:{port} does not answer")
        yield host, port
        return
    if servers.port_open("127.0.0.1", 1883):
        yield "127.0.0.1", 1883
        return
    try:
        proc = servers.mosquitto(server_root / "mosquitto-shared").start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"no MQTT broker: {exc}")
    yield servers.LOOPBACK, proc.port
    proc.stop()


@pytest.fixture
def private_mosquitto(tmp_path: Path) -> Iterator[servers.ServerProcess]:
    """A Mosquitto of this test only (persistence on), which the test may restart."""
    try:
        proc = servers.mosquitto(tmp_path / "mosquitto").start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"cannot start a private mosquitto: {exc}")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def influx_url(server_root: Path) -> Iterator[str]:
    """URL of a running InfluxDB 1.x."""
    url = os.environ.get("EMS_TEST_INFLUX_URL")
    if url:
        if not servers.http_ok(url.rstrip("/") + "/ping"):
            server_missing(f"EMS_TEST_INFLUX_URL={url} does not answer /ping")
        yield url.rstrip("/")
        return
    try:
        proc = servers.influxd(server_root / "influxd-shared").start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"no InfluxDB: {exc}")
    yield proc.url
    proc.stop()


@pytest.fixture
def private_influxd(tmp_path: Path) -> Iterator[servers.ServerProcess]:
    """An InfluxDB 1.x of this test only, which the test may stop and start."""
    try:
        proc = servers.influxd(tmp_path / "influxd").start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"cannot start a private influxd: {exc}")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def vm_url(server_root: Path) -> Iterator[str]:
    """URL of a running VictoriaMetrics (InfluxDB ``/api/v2/write``)."""
    url = os.environ.get("EMS_TEST_VM_URL")
    if url:
        if not servers.http_ok(url.rstrip("/") + "/health"):
            server_missing(f"EMS_TEST_VM_URL={url} does not answer /health")
        yield url.rstrip("/")
        return
    try:
        proc = servers.victoria_metrics(server_root / "victoria-metrics").start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"no VictoriaMetrics: {exc}")
    yield proc.url
    proc.stop()
