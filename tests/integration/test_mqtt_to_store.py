"""Telemetry published by mosquitto_pub (a client we did not write) arrives in the store and is
read back with the right tags, fields and timestamps; setpoints are retained; the last will works."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.influx import InfluxSettings, InfluxStore
from adapters.mqtt import MqttClient, MqttSettings, SetpointPublisher
from adapters.sqlite_store import SQLiteStore
from ems.ports.timeseries import SeriesQuery
from tests.conftest import unique
from tests.integration.helpers import (
    Pipeline,
    clear_retained,
    forget_session,
    mosquitto_pub,
    wait_until,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)
NOW -= timedelta(seconds=NOW.second % 10)  # window boundaries align to the epoch
T0_NS = int(NOW.timestamp()) * 10**9

# (kind, device, payload, expected fields, expected time offset in ns from NOW)
MESSAGES = [
    (
        "meter",
        "pod1",
        {"ts": NOW.isoformat(), "import_p_kw": 12.5, "export_p_kw": 0, "import_e_kwh": 1042.25},
        {"import_p_kw": 12.5, "export_p_kw": 0.0, "import_e_kwh": 1042.25},
        0,
    ),
    (
        "pv",
        "pv1",
        {
            "ts": (NOW + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "p_kw": 41.3,
            "e_kwh": 5120.0,
        },
        {"p_kw": 41.3, "e_kwh": 5120.0},
        1 * 10**9,
    ),
    (
        "battery",
        "bat1",
        {"ts": int(NOW.timestamp()) + 2, "p_kw": -3.5, "soc_pct": 62.5},
        {"p_kw": -3.5, "soc_pct": 62.5},
        2 * 10**9,
    ),
    (
        "ev_charger",
        "cp1",
        {
            "ts": int(NOW.timestamp() * 1000) + 3250,
            "plugged": True,
            "p_kw": 7.4,
            "vehicle_soc_pct": 40,
            "requested_e_kwh": 20,
            "departure": (NOW + timedelta(hours=8)).isoformat(),
        },
        {
            "plugged": True,
            "p_kw": 7.4,
            "vehicle_soc_pct": 40.0,
            "requested_e_kwh": 20.0,
            "departure_epoch_s": int(NOW.timestamp()) + 8 * 3600,
        },
        3_250_000_000,
    ),
    (
        "chp",
        "chp1",
        {"ts": (NOW + timedelta(seconds=4)).isoformat(), "p_kw": 90, "heat_kw": 140, "units_on": 1},
        {"p_kw": 90.0, "heat_kw": 140.0, "units_on": 1},
        4 * 10**9,
    ),
    (
        "heat_pump",
        "hp1",
        {
            "ts": (NOW + timedelta(seconds=5)).isoformat(),
            "mode": "heating",
            "p_kw": 15,
            "heat_kw": 52,
        },
        {"mode": "heating", "p_kw": 15.0, "heat_kw": 52.0},
        5 * 10**9,
    ),
    (
        "ai_cluster",
        "gpu1",
        {
            "ts": (NOW + timedelta(seconds=6)).isoformat(),
            "p_kw": 11.2,
            "p_cap_kw": 15,
            "queued_e_kwh": 42.0,
            "jobs_queued": 3,
        },
        {"p_kw": 11.2, "p_cap_kw": 15.0, "queued_e_kwh": 42.0, "jobs_queued": 3},
        6 * 10**9,
    ),
]


def _store(kind: str, tmp_path: Path, influx_url: str | None):
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "ems.sqlite")
    return InfluxStore(
        InfluxSettings(
            url=influx_url,
            database=unique("ems_"),
            buffer_path=tmp_path / "buf.sqlite",
            flush_interval_s=0.2,
        )
    )


@pytest.mark.parametrize("store_kind", ["influx", "sqlite"])
def test_mosquitto_pub_telemetry_reaches_store(store_kind, mqtt_broker, request, tmp_path):
    host, port = mqtt_broker
    influx_url = request.getfixturevalue("influx_url") if store_kind == "influx" else None
    community = unique("t")
    client_id = unique("ingest-")
    store = _store(store_kind, tmp_path, influx_url)
    pipeline = Pipeline.start(host, port, community, store, client_id=client_id)
    try:
        for kind, device, payload, _fields, _offset in MESSAGES:
            mosquitto_pub(
                host, port, f"cer/{community}/hub1/{kind}/{device}/state", json.dumps(payload)
            )
        assert wait_until(lambda: pipeline.ingest.accepted == len(MESSAGES), 15), (
            pipeline.ingest.counters()
        )
        assert store.flush(15)
        for kind, device, _payload, fields, offset in MESSAGES:
            for name, value in fields.items():
                samples = store.read(
                    SeriesQuery(
                        "telemetry",
                        name,
                        T0_NS - 10**9,
                        T0_NS + 10 * 10**9,
                        {"community": community, "device": device},
                    )
                )
                assert len(samples) == 1, (kind, name, samples)
                sample = samples[0]
                assert sample.time_ns == T0_NS + offset, (kind, name)
                if isinstance(value, bool):
                    assert bool(sample.value) is value
                else:
                    assert sample.value == pytest.approx(value), (kind, name)
                assert sample.tags == {
                    "community": community,
                    "hub": "hub1",
                    "device": device,
                    "kind": kind,
                }
        # windowed history read (forecasting): mean per 2 s window, empty windows omitted
        windows = store.read(
            SeriesQuery(
                "telemetry",
                "p_kw",
                T0_NS,
                T0_NS + 10 * 10**9,
                {"community": community, "hub": "hub1"},
                every_s=2,
            )
        )
        assert [(w.time_ns - T0_NS) // 10**9 for w in windows] == [0, 2, 4, 6]
        assert [w.value for w in windows] == pytest.approx(
            [41.3, (-3.5 + 7.4) / 2, (90 + 15) / 2, 11.2]
        )
        # a field never sent is not invented
        assert (
            store.read(
                SeriesQuery(
                    "telemetry", "soc_pct", 0, 2**62, {"community": community, "device": "pv1"}
                )
            )
            == []
        )
    finally:
        pipeline.stop()
        store.close()
        forget_session(host, port, client_id)
        clear_retained(host, port, [f"cer/{community}/ems/status"])


def test_setpoints_retained_with_valid_until_and_last_will(mqtt_broker, tmp_path):
    host, port = mqtt_broker
    community = unique("sp")
    store = SQLiteStore(tmp_path / "ems.sqlite")
    settings = MqttSettings(
        host=host, port=port, community=community, client_id=unique("ems-"), keepalive_s=5
    )
    client = MqttClient(settings).start()
    topics = [f"cer/{community}/ems/status", f"cer/{community}/hub1/battery/bat1/setpoint"]
    try:
        assert client.wait_connected(10)
        publisher = SetpointPublisher(client, store)
        ts = datetime.now(timezone.utc).replace(microsecond=0)
        publisher.publish_setpoint(
            "hub1",
            "battery",
            "bat1",
            {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_kw": -4.0},
        ).wait_for_publish(5)
        # a subscriber that connects later gets the retained setpoint
        out = subprocess.run(
            ["mosquitto_sub", "-h", host, "-p", str(port), "-t", topics[1], "-C", "1", "-W", "5"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        document = json.loads(out.stdout)
        assert document["p_kw"] == -4.0
        assert datetime.fromisoformat(
            document["valid_until"].replace("Z", "+00:00")
        ) == ts + timedelta(minutes=15)
        samples = store.read(SeriesQuery("setpoint", "p_kw", 0, 2**62, {"community": community}))
        assert [s.value for s in samples] == [-4.0]
        # an expired or inverted validity is refused before anything is published
        with pytest.raises(Exception, match="valid_until"):
            publisher.publish_setpoint(
                "hub1", "battery", "bat1", {"ts": ts, "valid_until": ts, "p_kw": 1.0}
            )
        status = subprocess.run(
            ["mosquitto_sub", "-h", host, "-p", str(port), "-t", topics[0], "-C", "1", "-W", "5"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert json.loads(status.stdout)["state"] == "online"
        # the process dies without DISCONNECT: the broker publishes the last will (retained)
        client.kill()

        def offline() -> bool:
            out = subprocess.run(
                [
                    "mosquitto_sub",
                    "-h",
                    host,
                    "-p",
                    str(port),
                    "-t",
                    topics[0],
                    "-C",
                    "1",
                    "-W",
                    "2",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            return bool(out.stdout) and json.loads(out.stdout)["state"] == "offline"

        assert wait_until(offline, 20, 0.5), "last will not published"
    finally:
        client.stop(announce_offline=False)
        store.close()
        forget_session(host, port, settings.client_id)
        clear_retained(host, port, topics)
