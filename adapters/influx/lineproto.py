"""InfluxDB line protocol encoding (nanosecond precision)."""

from __future__ import annotations

from typing import Iterable

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


def encode_point(point: Point) -> str:
    """One line of line protocol. Empty tag values are omitted (InfluxDB rejects them)."""
    head = point.measurement.translate(_MEASUREMENT_ESC)
    tags = "".join(
        f",{k.translate(_KEY_ESC)}={v.translate(_KEY_ESC)}" for k, v in sorted(point.tags.items()) if v != ""
    )
    fields = ",".join(f"{k.translate(_KEY_ESC)}={_field(v)}" for k, v in point.fields.items())
    return f"{head}{tags} {fields} {point.time_ns}"


def encode_points(points: Iterable[Point]) -> list[str]:
    return [encode_point(p) for p in points]
