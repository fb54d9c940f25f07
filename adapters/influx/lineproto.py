"""InfluxDB line protocol encoding (nanosecond precision)."""

from __future__ import annotations

from collections.abc import Iterable

from ems.ports.timeseries import FieldValue, Point

_MEASUREMENT_ESC = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n"})
_KEY_ESC = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n"})


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


_HEAD_CACHE: dict[tuple, str] = {}


def _head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    head = _HEAD_CACHE.get((measurement, tags))
    if head is None:
        head = measurement.translate(_MEASUREMENT_ESC) + "".join(
            f",{k.translate(_KEY_ESC)}={v.translate(_KEY_ESC)}" for k, v in sorted(tags) if v != ""
        )
        if len(_HEAD_CACHE) > 10_000:  # a site has a bounded set of series; guard against misuse
            _HEAD_CACHE.clear()
        _HEAD_CACHE[(measurement, tags)] = head
    return head


def encode_point(point: Point) -> str:
    """One line of line protocol. Empty tag values are omitted (InfluxDB rejects them)."""
    head = _head(point.measurement, tuple(point.tags.items()))
    fields = ",".join(f"{k.translate(_KEY_ESC)}={_field(v)}" for k, v in point.fields.items())
    return f"{head} {fields} {point.time_ns}"


def encode_points(points: Iterable[Point]) -> list[str]:
    return [encode_point(p) for p in points]
