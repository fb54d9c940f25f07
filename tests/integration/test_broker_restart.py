"""The broker restarts in the middle of a stream: with QoS 1 and persistent sessions, nothing is lost.

Phase 1: a publisher streams while the broker is stopped and started again.
Phase 2: the ingest is offline (session kept), Mosquitto's own client publishes, the broker restarts
with those messages queued for us, then the ingest reconnects with the same client id and gets them.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from adapters.sqlite_store import SQLiteStore
from ems.ports.timeseries import SeriesQuery
from tests.conftest import unique
from tests.integration.helpers import Pipeline, Publisher, mosquitto_pub, wait_until

pytestmark = pytest.mark.integration

N_STREAM = 2000
N_OFFLINE = 500


def test_broker_restart_loses_nothing(private_mosquitto, tmp_path):
    host, port = "127.0.0.1", private_mosquitto.port
    community = unique("br")
    store = SQLiteStore(tmp_path / "ems.sqlite")
    base_ms = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp() * 1000)
    topic = f"cer/{community}/hub1/pv/pv1/state"
    ingest_id = unique("ingest-")
    pipeline = Pipeline.start(host, port, community, store, client_id=ingest_id)
    publisher = Publisher(host, port, unique("pub-"))
    try:
        # ---- phase 1: restart in the middle of a stream
        for seq in range(N_STREAM):
            publisher.publish(topic, {"ts": base_ms + seq, "p_kw": seq % 100})
            if seq == N_STREAM // 2:
                assert wait_until(lambda: pipeline.ingest.accepted > 0, 10)
                private_mosquitto.restart()
            if seq % 100 == 0:
                time.sleep(0.01)
        assert wait_until(lambda: pipeline.ingest.accepted >= N_STREAM, 60), (
            pipeline.ingest.counters()
        )
        assert pipeline.client.connects >= 2, "the broker restart was not noticed"

        # ---- phase 2: messages queued for the offline ingest survive a broker restart
        pipeline.stop()  # clean DISCONNECT, session kept by the broker
        lines = [json.dumps({"ts": base_ms + N_STREAM + i, "p_kw": 1.0}) for i in range(N_OFFLINE)]
        mosquitto_pub(host, port, topic, lines=lines, qos=1)
        private_mosquitto.restart()
        pipeline = Pipeline.start(host, port, community, store, client_id=ingest_id)
        assert wait_until(lambda: pipeline.ingest.accepted >= N_OFFLINE, 30), (
            pipeline.ingest.counters()
        )

        assert store.flush(10)
        samples = store.read(SeriesQuery("telemetry", "p_kw", 0, 2**62, {"community": community}))
        got = sorted((s.time_ns // 1_000_000) - base_ms for s in samples)
        assert got == list(range(N_STREAM + N_OFFLINE)), (
            f"missing: {sorted(set(range(N_STREAM + N_OFFLINE)) - set(got))[:20]}"
        )
        assert pipeline.ingest.counters()["rejected"] == 0
    finally:
        publisher.close()
        pipeline.stop()
        store.close()


def test_client_started_before_the_broker_connects_when_it_comes_up(private_mosquitto, tmp_path):
    """The EMS may boot before the broker: it keeps retrying with backoff and connects once it answers."""
    from adapters.mqtt import MqttClient, MqttSettings

    private_mosquitto.stop()
    client = MqttClient(
        MqttSettings(
            port=private_mosquitto.port,
            community="late",
            client_id=unique("early-"),
            reconnect_min_s=1,
            reconnect_max_s=2,
        )
    ).start()
    try:
        assert not client.wait_connected(1.5)
        private_mosquitto.start()
        assert client.wait_connected(15), "no reconnect after the broker came up"
    finally:
        client.stop()
