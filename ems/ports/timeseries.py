"""Time-series store port: what the core needs from InfluxDB (or the embedded SQLite store).

The core writes :class:`Point` objects (InfluxDB's data model: measurement, tags, fields, time)
and reads history back as plain ``(time_ns, value)`` series. Adapters implement
:class:`TimeSeriesStore`; the core never imports them.

Measurements (SPEC §5) and their tags are fixed here so that every adapter, the dashboards and the
core agree on one schema.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

FieldValue = float | int | bool | str

#: The measurements of SPEC §5.
MEASUREMENTS: tuple[str, ...] = (
    "telemetry",  # device state as received (one point per payload)
    "setpoint",  # setpoints published to devices
    "plan",  # the optimiser's plan for the horizon
    "forecast",  # PV / load / price forecasts
    "shared_energy",  # hourly community shared energy
    "incentive",  # hourly TIP, valorisation, sale
    "solver",  # solve status, gap, time, fallbacks
    "ingest",  # ingest health: accepted / rejected payload counters
)

#: Field names per measurement: the contract between the writers (ingest, controller, accounting),
#: the dashboards in ``deploy/grafana`` and forecasting. Telemetry fields are those of the payload
#: schemas in :mod:`ems.telemetry.schemas` (``p_kw``, ``soc_pct``, ...).
SCHEMA: dict[str, dict[str, str]] = {
    "telemetry": {"*": "fields of the device kind's state payload (see docs/mqtt.md)"},
    "setpoint": {"*": "fields of the device kind's setpoint payload", "valid_until_epoch_s": "int"},
    "plan": {
        "p_kw": "planned power of the device (tag kind/device) at the step time",
        "soc_pct": "planned state of charge (storage, EV)",
        "horizon_step": "int, 0 = first step",
    },
    "forecast": {
        "p_kw": "forecast power; kind = pv | load | ai_cluster",
        "price_eur_mwh": "kind = price",
    },
    "shared_energy": {
        "e_shared_kwh": "hourly shared energy of the configuration",
        "e_injected_kwh": "hourly injection",
        "e_withdrawn_kwh": "hourly withdrawal",
    },
    "incentive": {
        "tip_eur": "GSE TIP",
        "valorisation_eur": "ARERA valorisation",
        "sale_eur": "energy sale",
    },
    "solver": {
        "status": "string",
        "objective_eur": "float",
        "gap_pct": "float",
        "solve_time_s": "float",
        "fallback": "int 0/1: rule-based fallback used",
        "stale_inputs": "int",
        "nodes": "int: branch-and-bound nodes (a load-independent measure of the step's work)",
        "time_limit_hit": "bool: stopped by the wall-clock safety net (the plan depends on load)",
    },
    "ingest": {
        "accepted": "int counter since start",
        "rejected": "int counter since start",
        "rejected_<reason>": "int counter per reason",
        "store_points_buffered_disk": "int",
    },
}

#: Standard tags. ``kind`` is the device kind (meter, pv, battery, ...) or a sub-kind for non-device
#: measurements (e.g. ``forecast`` kind ``pv``).
STANDARD_TAGS: tuple[str, ...] = ("community", "hub", "device", "kind")


@dataclass(frozen=True, slots=True)
class Point:
    """One time-series point. ``time_ns`` is UTC nanoseconds since the epoch.

    Every point carries an explicit timestamp: writing the same point twice (same measurement,
    tags and time) overwrites it, which is what makes buffered re-sends idempotent.
    """

    measurement: str
    time_ns: int
    tags: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, FieldValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.measurement:
            raise ValueError("point without measurement")
        if not self.fields:
            raise ValueError(f"point of {self.measurement!r} without fields")
        for key, value in self.fields.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"field {key!r} of {self.measurement!r} is not finite: {value}")

    @property
    def series_key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Measurement plus sorted tags: the identity of a series."""
        return self.measurement, tuple(sorted(self.tags.items()))


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A history read: one field of one measurement, filtered by tags, in ``[start_ns, end_ns)``.

    ``every_s`` > 0 asks for the mean over windows of that many seconds (InfluxQL ``GROUP BY
    time(...)``); empty windows are omitted, never returned as zeros.
    """

    measurement: str
    field: str
    start_ns: int
    end_ns: int
    tags: Mapping[str, str] = field(default_factory=dict)
    every_s: int = 0


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a series read back from the store."""

    time_ns: int
    value: FieldValue
    tags: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class TimeSeriesStore(Protocol):
    """Where telemetry, setpoints, plans, forecasts, accounting and solver health are kept.

    Implementations batch writes: :meth:`write` returns quickly and never raises because the
    server is unreachable (points are buffered, on disk when the server is down). :meth:`flush`
    blocks until everything accepted so far is either on the server or in the disk buffer.
    """

    def write(self, points: Iterable[Point]) -> None:
        """Accept points for writing (batched, buffered)."""

    def flush(self, timeout_s: float | None = None) -> bool:
        """Push pending points; return True when nothing is left pending (in memory or on disk)."""

    def read(self, query: SeriesQuery) -> list[Sample]:
        """Read one field back, ordered by time."""

    def close(self) -> None:
        """Flush what can be flushed, spool the rest to disk, release resources."""

    def stats(self) -> Mapping[str, int]:
        """Counters: points accepted, sent, buffered on disk, failed writes..."""


def read_latest(store: TimeSeriesStore, query: SeriesQuery) -> Sample | None:
    """The last sample of a query's window, or None when the window is empty."""
    samples = store.read(query)
    return samples[-1] if samples else None


def check_points(points: Sequence[Point]) -> None:
    """Raise ValueError if a point uses an unknown measurement."""
    for point in points:
        if point.measurement not in MEASUREMENTS:
            raise ValueError(f"unknown measurement {point.measurement!r}; known: {MEASUREMENTS}")
