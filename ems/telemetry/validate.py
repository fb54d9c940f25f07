"""Decode and validate device payloads; turn accepted telemetry into store points.

:func:`decode_state` never raises on bad input: it returns :class:`Accepted` or :class:`Rejected`
with a machine-readable :class:`RejectReason` and a human-readable detail (logged by the adapter,
counted per reason, published in the EMS status and written to the store).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ValidationError

from ems.ports.timeseries import Point
from ems.telemetry.kinds import JOB_MODELS, RATED_FIELDS, SETPOINT_MODELS, STATE_MODELS
from ems.telemetry.schemas import POWER_FIELDS, TimestampError
from ems.telemetry.topics import Topic, TopicError, parse_topic


class RejectReason(str, Enum):
    """Why a payload was rejected. The value is the counter name."""

    BAD_TOPIC = "bad_topic"
    WRONG_COMMUNITY = "wrong_community"
    UNKNOWN_KIND = "unknown_kind"
    UNKNOWN_DEVICE = "unknown_device"
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    NOT_UTF8 = "not_utf8"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    BAD_VALUE = "bad_value"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    ABOVE_RATED = "above_rated"
    INCONSISTENT = "inconsistent"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    TOO_DEEP = "too_deep"
    UNDECODABLE = "undecodable"


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """How far a payload timestamp may be from the receiver's clock; payload size and nesting
    limits (checked on the raw bytes before decoding; the schemas need depth 2)."""

    max_future_s: float = 300.0
    max_age_s: float = 24 * 3600.0
    max_payload_bytes: int = 64 * 1024
    max_depth: int = 8


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the EMS knows about a device: its rated power (for the range check), if any."""

    rated_p_kw: float | None = None


@dataclass
class DeviceRegistry:
    """Known devices, keyed by (hub, kind, device id). Empty with ``open=True`` accepts any device."""

    devices: dict[tuple[str, str, str], DeviceInfo] = field(default_factory=dict)
    open: bool = True

    def add(self, hub: str, kind: str, device: str, rated_p_kw: float | None = None) -> None:
        self.devices[(hub, kind, device)] = DeviceInfo(rated_p_kw)
        self.open = False

    def lookup(self, hub: str, kind: str, device: str) -> DeviceInfo | None:
        info = self.devices.get((hub, kind, device))
        if info is None and self.open:
            return DeviceInfo()
        return info


@dataclass(frozen=True, slots=True)
class Accepted:
    topic: Topic
    state: BaseModel


@dataclass(frozen=True, slots=True)
class Rejected:
    topic_text: str
    reason: RejectReason
    detail: str

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.detail} (topic {self.topic_text})"


Decoded = Accepted | Rejected

_TYPE_ERRORS = {
    "float_type",
    "int_type",
    "bool_type",
    "string_type",
    "int_from_float",
    "float_parsing",
    "int_parsing",
    "bool_parsing",
    "datetime_type",
    "model_type",
    "dict_type",
}
_RANGE_ERRORS = {
    "greater_than_equal",
    "less_than_equal",
    "greater_than",
    "less_than",
    "too_long",
    "too_short",
    "string_too_long",
}


def _reject_json_constant(token: str) -> float:
    raise ValueError(f"{token} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_json_constant)


def _classify(exc: ValidationError) -> tuple[RejectReason, str]:
    """Map the first pydantic error to a reason; the detail lists every error."""
    errors = exc.errors(include_url=False)
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in errors
    )
    first = errors[0]
    kind, ctx = first["type"], first.get("ctx") or {}
    if kind == "missing":
        return RejectReason.MISSING_FIELD, detail
    if kind == "extra_forbidden":
        return RejectReason.UNKNOWN_FIELD, detail
    if kind == "finite_number":
        return RejectReason.NON_FINITE, detail
    if kind in _RANGE_ERRORS:
        return RejectReason.OUT_OF_RANGE, detail
    if kind in ("literal_error", "enum"):
        return RejectReason.BAD_VALUE, detail
    if kind == "value_error":
        error = ctx.get("error")
        if isinstance(error, TimestampError):
            return RejectReason.BAD_TIMESTAMP, detail
        if "inconsistent" in str(error) or "valid_until" in str(error):
            return RejectReason.INCONSISTENT, detail
        return RejectReason.BAD_VALUE, detail
    if kind in _TYPE_ERRORS or kind.endswith("_type"):
        return RejectReason.WRONG_TYPE, detail
    return RejectReason.BAD_VALUE, detail


def decode_state(
    topic_text: str,
    payload: bytes,
    *,
    now: datetime,
    community: str | None = None,
    registry: DeviceRegistry | None = None,
    limits: ValidationLimits = ValidationLimits(),
) -> Decoded:
    """Validate one state (or job announcement) message. ``now`` is the receiver's clock (aware UTC).

    Never raises: every failure is a :class:`Rejected` with a counted reason. Size and nesting
    are checked on the raw bytes before any decoding, so a hostile payload costs O(size) once.
    """
    try:
        return _decode(topic_text, payload, now, community, registry or DeviceRegistry(), limits)
    except RecursionError:  # the depth scan makes this unreachable; kept as a guard
        return Rejected(topic_text, RejectReason.TOO_DEEP, "payload nested too deeply to decode")
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a counted rejection
        return Rejected(
            topic_text,
            RejectReason.UNDECODABLE,
            f"payload could not be decoded ({type(exc).__name__}: {str(exc)[:200]})",
        )


def _decode(
    topic_text: str,
    payload: bytes,
    now: datetime,
    community: str | None,
    registry: DeviceRegistry,
    limits: ValidationLimits,
) -> Decoded:
    checked = _check_topic(topic_text, community, registry)
    if isinstance(checked, Rejected):
        return checked
    topic, model, info = checked
    data = _parse_payload(topic_text, bytes(payload), limits)
    if isinstance(data, Rejected):
        return data
    try:
        state = model.model_validate(data)
    except ValidationError as exc:
        reason, detail = _classify(exc)
        return Rejected(topic_text, reason, detail)
    problem = _check_time(state, now, limits) or _check_rated(topic.kind, state, info)
    if problem is not None:
        return Rejected(topic_text, *problem)
    return Accepted(topic, state)


def _check_topic(
    topic_text: str, community: str | None, registry: DeviceRegistry
) -> tuple[Topic, type[BaseModel], DeviceInfo] | Rejected:
    try:
        topic = parse_topic(topic_text)
    except TopicError as exc:
        return Rejected(topic_text, RejectReason.BAD_TOPIC, str(exc))
    if topic.channel not in ("state", "job"):
        return Rejected(topic_text, RejectReason.BAD_TOPIC, "not a state or job topic")
    if community is not None and topic.community != community:
        return Rejected(
            topic_text,
            RejectReason.WRONG_COMMUNITY,
            f"community {topic.community!r} is not {community!r}",
        )
    models = STATE_MODELS if topic.channel == "state" else JOB_MODELS
    model = models.get(topic.kind)
    if model is None:
        return Rejected(
            topic_text,
            RejectReason.UNKNOWN_KIND,
            f"device kind {topic.kind!r} has no {topic.channel} messages (kinds: {sorted(models)})",
        )
    info = registry.lookup(topic.hub, topic.kind, topic.device)
    if info is None:
        return Rejected(
            topic_text,
            RejectReason.UNKNOWN_DEVICE,
            f"{topic.kind} {topic.device!r} of hub {topic.hub!r} is not configured",
        )
    return topic, model, info


#: The bytes that matter to the nesting scan: brackets, quotes and backslashes.
_STRUCTURE = re.compile(rb'[\[\]{}"\\]')


def json_depth(payload: bytes, stop_above: int) -> int:
    """Nesting depth of a JSON text from its brackets outside strings, without decoding it.

    One linear pass (no backtracking, whatever the payload); stops as soon as the depth exceeds
    ``stop_above`` and returns that depth. With at most ``stop_above`` brackets in all, returns
    their count (an upper bound of the depth) without scanning.
    """
    brackets = payload.count(b"[") + payload.count(b"{")
    if brackets <= stop_above:
        return brackets
    depth = deepest = 0
    in_string, skip = False, -1
    for match in _STRUCTURE.finditer(payload):
        i = match.start()
        if i == skip:
            continue
        byte = payload[i]
        if in_string:
            if byte == 0x5C:  # backslash: the next byte is escaped
                skip = i + 1
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _parse_payload(topic_text: str, payload: bytes, limits: ValidationLimits) -> Any:
    """Size, emptiness, nesting, UTF-8 and JSON checks, in that order; the object or a Rejected."""
    if len(payload) > limits.max_payload_bytes:
        return Rejected(
            topic_text, RejectReason.TOO_LARGE, f"{len(payload)} bytes > {limits.max_payload_bytes}"
        )
    if not payload.strip():
        return Rejected(topic_text, RejectReason.EMPTY, "empty payload")
    depth = json_depth(payload, limits.max_depth)
    if depth > limits.max_depth:
        return Rejected(
            topic_text,
            RejectReason.TOO_DEEP,
            f"payload nested more than {limits.max_depth} levels deep",
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(
            topic_text,
            RejectReason.NOT_UTF8,
            f"payload is not UTF-8 ({exc.reason} at byte {exc.start})",
        )
    try:
        data: Any = _DECODER.decode(text)
    except ValueError as exc:
        if "is not valid JSON" in str(exc):
            return Rejected(topic_text, RejectReason.NON_FINITE, str(exc))
        return Rejected(topic_text, RejectReason.NOT_JSON, f"payload is not JSON: {exc}")
    if not isinstance(data, dict):
        return Rejected(
            topic_text,
            RejectReason.NOT_OBJECT,
            f"payload is a JSON {type(data).__name__}, expected an object",
        )
    return data


def _check_time(
    state: BaseModel, now: datetime, limits: ValidationLimits
) -> tuple[RejectReason, str] | None:
    ts: datetime = state.ts  # type: ignore[attr-defined]
    age_s = (now - ts).total_seconds()
    if age_s < -limits.max_future_s:
        return RejectReason.FUTURE_TIMESTAMP, f"ts {ts.isoformat()} is {-age_s:.0f} s in the future"
    if age_s > limits.max_age_s:
        return RejectReason.STALE_TIMESTAMP, f"ts {ts.isoformat()} is {age_s:.0f} s old"
    return None


def _check_rated(kind: str, state: BaseModel, info: DeviceInfo) -> tuple[RejectReason, str] | None:
    if info.rated_p_kw is None:
        return None
    for name in POWER_FIELDS + RATED_FIELDS.get(kind, ()):
        value = getattr(state, name, None)
        if value is not None and abs(value) > 1.1 * info.rated_p_kw:
            return (
                RejectReason.ABOVE_RATED,
                f"{name}={value} exceeds 110 % of rated {info.rated_p_kw} kW",
            )
    return None


def _epoch_ns(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def to_point(accepted: Accepted) -> Point:
    """The ``telemetry`` point for an accepted state (``ai_cluster_job`` for a job announcement):
    tags community/hub/device/kind, one field per value.

    Datetime fields become ``<name>_epoch_s`` (InfluxDB has no datetime field type).
    """
    fields: dict[str, float | int | bool | str] = {}
    for name, value in accepted.state.__dict__.items():  # validated model: plain attribute dict
        if value is None or name == "ts":
            continue
        if isinstance(
            value, (list, tuple)
        ):  # a price curve: its length here, the values as forecasts
            fields[f"{name}_n"] = len(value)
        elif isinstance(value, datetime):
            fields[f"{name}_epoch_s"] = int(value.timestamp())
        else:
            fields[name] = value  # finite: the models forbid inf/nan
    topic = accepted.topic
    return Point(
        "telemetry" if topic.channel == "state" else f"{topic.kind}_job",
        _epoch_ns(accepted.state.ts),
        {
            "community": topic.community,
            "hub": topic.hub,
            "device": topic.device,
            "kind": topic.kind,
        },
        fields,
    )


def encode_setpoint(kind: str, values: Mapping[str, Any]) -> bytes:
    """Validate a setpoint for ``kind`` and return its JSON payload (timestamps as ISO-8601 UTC)."""
    model = SETPOINT_MODELS.get(kind)
    if model is None:
        raise ValueError(
            f"device kind {kind!r} takes no setpoints; kinds with setpoints: {sorted(SETPOINT_MODELS)}"
        )
    setpoint = model.model_validate(dict(values))
    return setpoint.model_dump_json(exclude_none=True).encode()


def setpoint_point(topic: Topic, payload: bytes) -> Point:
    """The ``setpoint`` point recorded when a setpoint is published."""
    model = SETPOINT_MODELS[topic.kind]
    setpoint = model.model_validate_json(payload, strict=False)
    fields: dict[str, float | int | bool | str] = {}
    for name, value in setpoint:
        if name == "ts" or value is None:
            continue
        fields[f"{name}_epoch_s" if isinstance(value, datetime) else name] = (
            int(value.timestamp()) if isinstance(value, datetime) else value
        )
    return Point(
        "setpoint",
        _epoch_ns(setpoint.ts),
        {
            "community": topic.community,
            "hub": topic.hub,
            "device": topic.device,
            "kind": topic.kind,
        },
        fields,
    )
