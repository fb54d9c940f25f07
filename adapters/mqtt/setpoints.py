"""Setpoint publishing: validated, retained, QoS 1, with ``valid_until``; also recorded in the store."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as paho

from adapters.mqtt.client import MqttClient
from ems.errors import DataError
from ems.ports.timeseries import TimeSeriesStore
from ems.telemetry.topics import parse_topic, setpoint_topic
from ems.telemetry.validate import encode_setpoint, setpoint_point

log = logging.getLogger(__name__)


class SetpointPublisher:
    """Publishes setpoints (retained, with ``valid_until``) and the EMS status over MQTT."""

    def __init__(self, client: MqttClient, store: TimeSeriesStore | None = None) -> None:
        self.client = client
        self.store = store
        self.community = client.settings.community

    def publish_setpoint(
        self, hub: str, kind: str, device: str, values: Mapping[str, Any]
    ) -> paho.MQTTMessageInfo:
        """Validate (``ts`` < ``valid_until``, ranges) and publish retained with QoS 1."""
        try:
            payload = encode_setpoint(kind, values)
        except ValueError as exc:
            raise DataError(
                f"setpoint for {kind} {device!r} of hub {hub!r} is invalid: {exc}"
            ) from exc
        topic = setpoint_topic(self.community, hub, kind, device)
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if self.store is not None:
            self.store.write([setpoint_point(parse_topic(topic), payload)])
        log.debug("setpoint %s %s", topic, payload)
        return info

    def clear_setpoint(self, hub: str, kind: str, device: str) -> paho.MQTTMessageInfo:
        """Remove the retained setpoint (an empty retained message)."""
        return self.client.publish(
            setpoint_topic(self.community, hub, kind, device), b"", qos=1, retain=True
        )

    def publish_status(self, status: Mapping[str, Any]) -> None:
        self.client.publish_status(dict(status))
