"""Telemetry: MQTT topic scheme, payload schemas and validation (pure, no I/O).

See ``docs/mqtt.md`` for the scheme with one example payload per device kind.
"""

import importlib
from typing import Any

# Imported on first use (PEP 562): the technology registry imports the payload schemas of this
# package, and the validators import the registry.
_HOME = {
    "DEVICE_KINDS": "kinds",
    "SETPOINT_MODELS": "kinds",
    "STATE_MODELS": "kinds",
    "JOB_MODELS": "kinds",
    "Topic": "topics",
    "job_subscription": "topics",
    "job_topic": "topics",
    "parse_topic": "topics",
    "setpoint_topic": "topics",
    "state_topic": "topics",
    "status_topic": "topics",
    "Accepted": "validate",
    "DeviceRegistry": "validate",
    "Rejected": "validate",
    "RejectReason": "validate",
    "ValidationLimits": "validate",
    "decode_state": "validate",
    "encode_setpoint": "validate",
    "to_point": "validate",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"ems.telemetry.{_HOME[name]}"), name)
    raise AttributeError(f"module 'ems.telemetry' has no attribute {name!r}")


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
