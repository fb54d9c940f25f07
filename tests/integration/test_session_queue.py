"""A persistent session delivers its queue as soon as the client connects — possibly before the
handlers are registered. Those messages are kept (unacknowledged) for the handler, not dropped:
the soak benchmark lost a burst of state messages this way before (issue 16)."""

from __future__ import annotations

import json
import time

import pytest

from adapters.mqtt import MqttClient, MqttSettings
from tests.conftest import unique
from tests.integration.helpers import Publisher, wait_until

pytestmark = pytest.mark.integration


def test_queue_delivered_before_subscribe_reaches_the_handler(private_mosquitto):
    port = private_mosquitto.port
    cid = unique("early-")
    settings = MqttSettings(community="early", port=port, client_id=cid)
    first = MqttClient(settings, last_will=False).start()
    first.subscribe("cer/early/+/+/+/state", lambda _m: None)
    assert first.wait_subscribed(10)
    first.stop(announce_offline=False)  # the broker keeps the session and queues for it
    publisher = Publisher("127.0.0.1", port, unique("pub-"))
    for i in range(50):
        publisher.publish("cer/early/hub1/pv/pv1/state", {"seq": i})
    assert wait_until(publisher.all_acknowledged, 10)
    publisher.close()

    got: list[int] = []
    client = MqttClient(settings, last_will=False).start()
    try:
        assert client.wait_connected(10)
        time.sleep(0.5)  # the queue arrives now, with no handler registered yet
        client.subscribe(
            "cer/early/+/+/+/state", lambda m: got.append(json.loads(m.payload)["seq"])
        )
        assert wait_until(lambda: len(got) >= 50, 10), len(got)
        assert sorted(got) == list(range(50))
        # the SUBACK comes after the broker read our 50 PUBACKs (it reads in order); closing
        # with it unread makes the socket send RST, and Mosquitto drops the PUBACKs it had not
        # read yet (the messages come again: at least once, but this test checks the acks)
        assert client.wait_subscribed(10)
    finally:
        client.stop(announce_offline=False)
    # all of them were acknowledged: a new connection of the session gets nothing again
    again: list[bytes] = []
    client = MqttClient(settings, last_will=False)
    client.subscribe("cer/early/+/+/+/state", lambda m: again.append(m.payload))
    client.start()
    try:
        assert client.wait_subscribed(10)
        time.sleep(0.5)
        assert again == []
    finally:
        client.stop(announce_offline=False)
