"""TLS with username/password: the EMS client verifies the broker's certificate against the
configured CA, authenticates with a password from the environment, and refuses a broker whose
certificate it cannot verify."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timezone

import pytest

from adapters.mqtt import MqttClient, MqttSettings, TelemetryIngest
from adapters.sqlite_store import SQLiteStore
from tests.conftest import server_missing
from tests.integration import servers
from tests.integration.helpers import make_test_pki, wait_until

pytestmark = pytest.mark.integration


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tls_broker(tmp_path):
    if shutil.which("openssl") is None:
        server_missing("openssl not installed")
    pki = tmp_path / "pki"
    pki.mkdir()
    make_test_pki(pki)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other-ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=some other CA",
        cwd=pki,
    )
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(
        ["mosquitto_passwd", "-b", str(passwd), "ems", "tls-secret-77"],
        check=True,
        capture_output=True,
    )
    extra = (
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        f"password_file {passwd}\n"
    )
    try:
        proc = servers.mosquitto(tmp_path / "m", extra_conf=extra, allow_anonymous=False).start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"cannot start a TLS mosquitto: {exc}")
    yield proc, pki
    proc.stop()


def test_tls_and_password_from_env(tls_broker, tmp_path, monkeypatch, caplog):
    proc, pki = tls_broker
    monkeypatch.setenv("EMS_TEST_MQTT_PASSWORD", "tls-secret-77")
    settings = MqttSettings(
        host="127.0.0.1",
        port=proc.port,
        community="tls",
        username="ems",
        password_env="EMS_TEST_MQTT_PASSWORD",
        tls=True,
        ca_file=pki / "ca.crt",
        client_id="cer-ems-tls",
    )
    store = SQLiteStore(tmp_path / "s.sqlite")
    client = MqttClient(settings).start()
    ingest = TelemetryIngest(client, store).start()
    try:
        assert client.wait_subscribed(10), proc.tail_log()
        client.publish(
            "cer/tls/hub1/pv/pv1/state",
            json.dumps({"ts": datetime.now(timezone.utc).isoformat(), "p_kw": 3.0}),
        ).wait_for_publish(5)
        assert wait_until(lambda: ingest.accepted == 1, 10)
    finally:
        ingest.stop()
        client.stop()
        store.close()
    assert "tls-secret-77" not in caplog.text

    # a broker certificate not signed by the configured CA: never connects
    untrusted = MqttClient(
        settings.model_copy(update={"ca_file": pki / "other-ca.crt", "client_id": "cer-ems-tls2"})
    )
    untrusted.start()
    try:
        assert not untrusted.wait_connected(3)
    finally:
        untrusted.stop(announce_offline=False)
