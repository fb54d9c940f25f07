"""Telemetry source and setpoint sink ports (implemented over MQTT by ``adapters.mqtt``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ems.telemetry.topics import Topic

#: Called for every accepted device state (topic, validated payload model).
StateCallback = Callable[[Topic, BaseModel], None]


@runtime_checkable
class TelemetrySource(Protocol):
    """Delivers validated device states; bad payloads are rejected and counted, never delivered."""

    def latest(self) -> Mapping[tuple[str, str, str], tuple[datetime, BaseModel]]:
        """Latest accepted state per (hub, kind, device), with its timestamp."""

    def counters(self) -> Mapping[str, int]:
        """``accepted`` and ``rejected_<reason>`` counts since start."""


@runtime_checkable
class SetpointSink(Protocol):
    """Publishes setpoints (retained, with ``valid_until``) and the EMS status."""

    def publish_setpoint(self, hub: str, kind: str, device: str, values: Mapping[str, Any]) -> None:
        """Validate and publish one setpoint; ``values`` must include ``ts`` and ``valid_until``."""

    def publish_status(self, status: Mapping[str, Any]) -> None:
        """Publish the EMS status document (online, counters, plan summary)."""
