"""What a technology shows on the dashboards: panels declared as data in its own module.

A :class:`~ems.techs.base.Technology` lists its panels in ``panels``; the dashboard builder
(``deploy/grafana/build_dashboards.py``) iterates the registry, turns every :class:`Series` into a
query over the stored measurements and lays the panels out in ``order``. Panels of several
technologies with the same board and title are one panel (their series in registry order), so the
hub's grid exchange can show the PV beside the meter. The core knows no dashboard tool: units are
the domain's (``kW``, ``kWh``, ``%``), the builder maps them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Series:
    """One query of a panel over the technology's devices.

    ``source``: ``telemetry`` (measured), ``setpoint`` (the last one sent, held), ``plan`` or
    ``forecast`` (the stored measurements, ``docs/io.md``); ``kind``: the ``kind`` tag (default:
    the technology's MQTT device kind); ``by``: the tags one line per; ``when``: count 1 while this
    boolean field of the telemetry is true (0 otherwise); ``sum_devices``: the sum over the devices
    of each device's mean (one line per ``by``)."""

    field: str
    alias: str
    source: str = "telemetry"
    kind: str | None = None
    by: tuple[str, ...] = ("device",)
    when: str | None = None
    sum_devices: bool = False


@dataclass(frozen=True)
class Panel:
    """A time-series panel on one board (``community``: the overview, ``hub``: the hub detail,
    filtered by the ``hub`` variable); ``order`` places it (lower first, two per row unless
    ``wide``)."""

    board: str
    title: str
    unit: str  # kW, kWh, %, "" (a count)
    series: tuple[Series, ...]
    order: float
    wide: bool = False
    description: str = ""
