"""Device kinds on MQTT and their payload models, from the technology registry.

The technologies' device kinds (with their state, setpoint and job-channel schemas and the
fields checked against the rated power) come from :mod:`ems.techs.registry`; the site sensors
(weather station, price feed) from :data:`ems.telemetry.schemas.SENSOR_STATE_MODELS`.
"""

from __future__ import annotations

from pydantic import BaseModel

from ems.techs import registry
from ems.telemetry.schemas import SENSOR_STATE_MODELS

STATE_MODELS: dict[str, type[BaseModel]] = {**registry.state_models(), **SENSOR_STATE_MODELS}
DEVICE_KINDS: tuple[str, ...] = tuple(STATE_MODELS)
SETPOINT_MODELS: dict[str, type[BaseModel]] = registry.setpoint_models()
RATED_FIELDS: dict[str, tuple[str, ...]] = registry.rated_fields()
#: Models of the ``job`` channel, per device kind.
JOB_MODELS: dict[str, type[BaseModel]] = registry.job_models()
