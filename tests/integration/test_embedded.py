"""Running with no servers: the embedded broker (amqtt) and the embedded SQLite store, also through
the ``ems ingest`` command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest

from adapters.broker import EmbeddedBroker
from adapters.mqtt import MqttClient, MqttSettings, SetpointPublisher
from adapters.sqlite_store import SQLiteStore
from ems.ports.timeseries import SeriesQuery
from tests.integration.helpers import Pipeline, Publisher, forget_session, wait_until


def test_embedded_broker_and_sqlite_store(tmp_path):
    store = SQLiteStore(tmp_path / "ems.sqlite")
    with EmbeddedBroker() as broker:
        pipeline = Pipeline.start(broker.host, broker.port, "emb", store, client_id="cer-ems-emb")
        publisher = Publisher(broker.host, broker.port, "pub-emb")
        try:
            base = int(time.time()) - 600
            for i in range(200):
                publisher.publish(
                    "cer/emb/hub1/battery/bat1/state",
                    {"ts": base + i, "p_kw": 1.0, "soc_pct": i / 2},
                )
            publisher.publish("cer/emb/hub1/battery/bat1/state", b"{broken")
            assert wait_until(
                lambda: (
                    pipeline.ingest.accepted == 200 and pipeline.ingest.counters()["rejected"] == 1
                ),
                30,
            ), (pipeline.ingest.counters(), publisher.all_acknowledged())
            samples = store.read(SeriesQuery("telemetry", "soc_pct", 0, 2**62, {"device": "bat1"}))
            assert [s.value for s in samples] == [i / 2 for i in range(200)]
            # setpoints are retained by the embedded broker too
            ts = datetime.now(timezone.utc)
            SetpointPublisher(pipeline.client, store).publish_setpoint(
                "hub1",
                "ev_charger",
                "cp1",
                {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_kw": -3.0},
            ).wait_for_publish(5)
            got: list[bytes] = []
            late = MqttClient(
                MqttSettings(host=broker.host, port=broker.port, community="emb"),
                client_id="late",
                last_will=False,
            ).start()
            late.subscribe(
                "cer/emb/hub1/ev_charger/cp1/setpoint", lambda msg: got.append(msg.payload)
            )
            assert wait_until(lambda: got, 10), (
                "retained setpoint not delivered by the embedded broker"
            )
            assert json.loads(got[0])["p_kw"] == -3.0
            late.stop()
        finally:
            publisher.close()
            pipeline.stop()
    store.close()


@pytest.mark.integration
def test_ems_ingest_command(mqtt_broker, tmp_path):
    host, port = mqtt_broker
    db = tmp_path / "cli.sqlite"
    community = f"cli{int(time.time() * 1000) % 10**8}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli.main",
            "ingest",
            "--community",
            community,
            "--mqtt-host",
            host,
            "--mqtt-port",
            str(port),
            "--client-id",
            f"{community}-ingest",
            "--sqlite",
            str(db),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "ingesting" in proc.stderr.readline()
        publisher = Publisher(host, port, f"{community}-pub")
        ts = int(time.time()) - 5
        deadline = time.monotonic() + 20
        # resend until the ingest is subscribed (same ts: idempotent in the store)
        while time.monotonic() < deadline:
            publisher.publish(f"cer/{community}/hub1/pv/pv1/state", {"ts": ts, "p_kw": 4.5})
            time.sleep(0.5)
            store = SQLiteStore(db)
            found = store.read(SeriesQuery("telemetry", "p_kw", 0, 2**62))
            store.close()
            if found:
                break
        publisher.close()
        assert [s.value for s in found] == [4.5]
    finally:
        proc.send_signal(2)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "accepted" in err
    forget_session(host, port, f"{community}-ingest")
