"""Embedded MQTT broker (amqtt) for running the EMS with no server installed."""

from adapters.broker.embedded import EmbeddedBroker

__all__ = ["EmbeddedBroker"]
