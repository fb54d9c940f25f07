"""Telemetry: MQTT topic scheme, payload schemas and validation (pure, no I/O).

See ``docs/mqtt.md`` for the scheme with one example payload per device kind.
"""

from ems.telemetry.schemas import DEVICE_KINDS, JOB_MODELS, SETPOINT_MODELS, STATE_MODELS
from ems.telemetry.topics import (
    Topic,
    job_subscription,
    job_topic,
    parse_topic,
    setpoint_topic,
    state_topic,
    status_topic,
)
from ems.telemetry.validate import (
    Accepted,
    DeviceRegistry,
    Rejected,
    RejectReason,
    ValidationLimits,
    decode_state,
    encode_setpoint,
    to_point,
)

__all__ = [
    "DEVICE_KINDS",
    "JOB_MODELS",
    "SETPOINT_MODELS",
    "STATE_MODELS",
    "Accepted",
    "DeviceRegistry",
    "RejectReason",
    "Rejected",
    "Topic",
    "ValidationLimits",
    "decode_state",
    "encode_setpoint",
    "job_subscription",
    "job_topic",
    "parse_topic",
    "setpoint_topic",
    "state_topic",
    "status_topic",
    "to_point",
]
