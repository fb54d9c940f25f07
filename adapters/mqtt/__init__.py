"""MQTT adapter (paho-mqtt 2.x): telemetry ingest into a time-series store, setpoint publishing,
EMS status with last will. Topic scheme and payloads: ``docs/mqtt.md``."""

from adapters.mqtt.client import MqttClient
from adapters.mqtt.config import MqttSettings
from adapters.mqtt.ingest import TelemetryIngest
from adapters.mqtt.setpoints import SetpointPublisher

__all__ = ["MqttClient", "MqttSettings", "SetpointPublisher", "TelemetryIngest"]
