"""The shipped Mosquitto ACL (deploy/mosquitto/acl) and password auth, on a private broker:
the EMS user reads states and writes setpoints, a hub gateway writes only its own hub's states,
anonymous clients and wrong passwords are refused. Also: the EMS client authenticates with a
password from a file and never logs it."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from adapters.mqtt import MqttClient, MqttSettings, SetpointPublisher, TelemetryIngest
from adapters.sqlite_store import SQLiteStore
from ems.ports.timeseries import SeriesQuery
from tests.conftest import server_missing
from tests.integration import servers
from tests.integration.helpers import wait_until

pytestmark = pytest.mark.integration

ACL = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "acl"
PASSWORDS = {"ems": "ems-secret-9f2c", "hub1": "hub1-pw", "monitor": "mon-pw"}


@pytest.fixture
def secured_broker(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.touch()
    try:
        for user, password in PASSWORDS.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwd), user, password],
                check=True,
                capture_output=True,
            )
    except FileNotFoundError:
        server_missing("mosquitto_passwd not installed")
    passwd.chmod(0o600)
    extra = f"password_file {passwd}\nacl_file {ACL}\n"
    try:
        proc = servers.mosquitto(tmp_path / "m", extra_conf=extra, allow_anonymous=False).start()
    except (FileNotFoundError, RuntimeError) as exc:
        server_missing(f"cannot start a private mosquitto: {exc}")
    yield proc
    proc.stop()


def _connect(port: int, user: str | None, password: str | None) -> tuple[paho.Client, list]:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}")
    results: list = []
    client.on_connect = lambda c, u, f, reason, p: results.append(reason)
    if user:
        client.username_pw_set(user, password)
    client.connect("127.0.0.1", port, 10)
    client.loop_start()
    wait_until(lambda: results, 5)
    return client, results


def test_auth_and_acl(secured_broker, tmp_path, caplog):
    port = secured_broker.port
    for user, password in ((None, None), ("ems", "wrong"), ("intruder", "x")):
        client, results = _connect(port, user, password)
        assert results and results[0].is_failure, (user, results)
        client.loop_stop()

    password_file = tmp_path / "ems.pw"
    password_file.write_text(PASSWORDS["ems"] + "\n")
    settings = MqttSettings(
        port=port,
        community="acl",
        username="ems",
        password_file=password_file,
        client_id="cer-ems-acl",
    )
    assert PASSWORDS["ems"] not in repr(settings) and PASSWORDS["ems"] not in str(
        settings.model_dump()
    )
    store = SQLiteStore(tmp_path / "s.sqlite")
    caplog.set_level(logging.DEBUG)
    ems = MqttClient(settings).start()
    ingest = TelemetryIngest(ems, store).start()
    setpoints_seen: list[str] = []
    ems.subscribe("cer/acl/+/+/+/setpoint", lambda msg: setpoints_seen.append(msg.topic))
    try:
        assert ems.wait_subscribed(10)
        hub1, results = _connect(port, "hub1", PASSWORDS["hub1"])
        assert not results[0].is_failure
        received_by_hub1: list[str] = []
        hub1.on_message = lambda c, u, msg: received_by_hub1.append(msg.topic)
        hub1.subscribe("cer/acl/hub1/+/+/setpoint", qos=1)
        hub1.subscribe("cer/acl/hub2/+/+/setpoint", qos=1)  # not allowed: nothing arrives
        time.sleep(0.3)
        ts = datetime.now(timezone.utc).replace(microsecond=0)
        ok = json.dumps({"ts": ts.isoformat(), "p_kw": 5.0})
        hub1.publish("cer/acl/hub1/pv/pv1/state", ok, qos=1).wait_for_publish(5)
        hub1.publish("cer/acl/hub2/pv/pv9/state", ok, qos=1).wait_for_publish(
            5
        )  # other hub: dropped
        hub1.publish("cer/acl/hub1/battery/b1/setpoint", b"{}", qos=1).wait_for_publish(
            5
        )  # not allowed
        job = json.dumps(
            {
                "ts": ts.isoformat(),
                "job_id": "j1",
                "energy_kwh": 10.0,
                "deadline": (ts + timedelta(hours=6)).isoformat(),
            }
        )
        hub1.publish("cer/acl/hub1/ai_cluster/gpu1/job", job, qos=1).wait_for_publish(5)
        hub1.publish("cer/acl/hub2/ai_cluster/gpu1/job", job, qos=1).wait_for_publish(
            5
        )  # other hub: dropped
        publisher = SetpointPublisher(ems, store)
        for hub in ("hub1", "hub2"):
            publisher.publish_setpoint(
                hub,
                "battery",
                "b1",
                {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_kw": 1.0},
            ).wait_for_publish(5)
        assert wait_until(lambda: ingest.accepted >= 2 and len(received_by_hub1) >= 1, 10)
        time.sleep(1.0)  # let anything that should not arrive have a chance to
        assert ingest.accepted == 2
        assert store.read(SeriesQuery("telemetry", "p_kw", 0, 2**62))[0].tags["hub"] == "hub1"
        jobs = store.read(SeriesQuery("ai_cluster_job", "energy_kwh", 0, 2**62))
        assert [(p.tags["hub"], p.value) for p in jobs] == [("hub1", 10.0)]
        assert received_by_hub1 == ["cer/acl/hub1/battery/b1/setpoint"]
        assert sorted(setpoints_seen) == [
            "cer/acl/hub1/battery/b1/setpoint",
            "cer/acl/hub2/battery/b1/setpoint",
        ]
        hub1.loop_stop()
        # the monitoring user can read the broker's $SYS tree (docker health check)
        out = subprocess.run(
            [
                "mosquitto_sub",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-u",
                "monitor",
                "-P",
                PASSWORDS["monitor"],
                "-t",
                "$SYS/broker/version",
                "-C",
                "1",
                "-W",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert "mosquitto" in out.stdout.lower(), out
    finally:
        ingest.stop()
        ems.stop()
        store.close()
    assert PASSWORDS["ems"] not in caplog.text
