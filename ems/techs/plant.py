"""The simulated plant's interface: each technology's own simple physics (pure computation).

A technology's module declares a small :class:`PlantDevice` subclass and returns it from
:meth:`ems.techs.base.Technology.plant_device`; the simulated plant
(:mod:`adapters.sim.plant`) loops over the devices of every hub and calls the phases below in
order, without knowing any kind. Devices talk to each other only through one :class:`HubStep`
per hub and step: ordered sums of named quantities (:class:`Sums`), the cooling still to cover,
the heat loop's residual and the rule-based setpoints of the hub.

Phases of one step (all hubs through a phase before the next where the phase couples hubs):

1. thermal side (multi-energy sites): ``demand`` (heat and cooling demands, solar thermal),
   the hub's rule-based setpoints, ``run`` (CHP, heat pumps, chillers, boilers: setpoint or
   rule, within limits), ``exchange`` then ``balance_network`` (district heating, links:
   stations then their network), the heat loop (``absorb`` of the stores in order, then
   ``backup`` on a deficit or ``turndown`` on a surplus in :attr:`PlantDevice.turndown_order`),
   ``record`` (rows and telemetry memory);
2. electric side: ``el_step`` (load, PV, EV charging, AI clusters), ``balance`` (the battery on
   the hub's net load), ``after_balance`` (vehicles leave), ``meter`` (the POD), ``finish``.

Sums are added in group order and summed within a group, so the arithmetic (and the rows) do not
depend on the order in which devices are listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ems.techs.kpi import KpiRow

Key = tuple[str, str, str]
Telemetry = list[tuple[Key, dict[str, Any]]]

# group order of the hub sums (a device adds its term at its group)
#: the hub's electric bus before the battery: load, EV, AI, − PV, thermal side
BUS_LOAD, BUS_EV, BUS_AI, BUS_PV, BUS_THERMAL = 0, 1, 2, 3, 4
#: the heat loop's supply: CHP, − DH injection, + DH withdrawal, heat pumps, solar, boilers
HEAT_CHP, HEAT_DH_TO, HEAT_DH_FROM, HEAT_HP, HEAT_SOLAR, HEAT_BOILER, HEAT_EBOILER = range(7)
#: electricity of the thermal side after the heat loop: + link given, − taken, − CHP, + e-boiler
EX_GIVE, EX_TAKE, EX_CHP, EX_EBOILER = range(4)


def r3(x: float) -> float:
    """A telemetry value: 3 decimals, never −0."""
    return round(float(x), 3) + 0.0


class Sums:
    """Named quantities summed per group, groups added in order (deterministic arithmetic)."""

    def __init__(self) -> None:
        self._g: dict[str, dict[float, list[float]]] = {}

    def add(self, name: str, group: float, value: float) -> None:
        self._g.setdefault(name, {}).setdefault(group, []).append(value)

    def apply(self, start: float, name: str) -> float:
        x = start
        for g in sorted(self._g.get(name, {})):
            x = x + sum(self._g[name][g])
        return x

    def total(self, name: str) -> float:
        return self.apply(0.0, name) if name in self._g else 0


@dataclass
class HubStep:
    """One hub in one step: what its devices tell each other."""

    hub: str
    i: int
    now: pd.Timestamp
    dt_h: float
    setpoint: Callable[[Key, str], Any]  # a still-valid setpoint value (None: missing/baseline)
    baseline: bool  # the no-optimisation policy (no setpoints at all)
    col: Callable[..., float]  # exogenous column value at this step
    temps: dict[str, float] = field(default_factory=dict)
    rules: dict[Key, dict[str, Any]] = field(default_factory=dict)
    sums: Sums = field(default_factory=Sums)
    rows: Sums = field(default_factory=Sums)  # "<quantity>" -> the hub's row "<hub>.<quantity>"
    row: dict[str, float] = field(default_factory=dict)  # the step's row (device-level entries)
    cool_left: float = 0.0
    th_el: float = 0.0  # electric power of the thermal side (+ drawn)
    store_kw: float = 0.0
    net_kw: float = 0.0  # the hub's net electric power after the battery (+ import)
    surplus_kw: float = 0.0  # PV the hub would otherwise export


class PlantDevice:
    """A technology's devices in the simulated plant; every phase has a neutral default."""

    #: row quantities of its kind, written (0 without a device) for every hub; thermal ones only
    #: on sites with a thermal side
    rows: ClassVar[tuple[str, ...]] = ()
    thermal: ClassVar[bool] = False
    #: order of its ``turndown`` on a heat surplus (lower first)
    turndown_order: ClassVar[float] = 0.0
    #: the carrier it exchanges with other hubs through a network (a station)
    station_carrier: ClassVar[str | None] = None
    #: order of its :meth:`kpis` (the POD's cost comes first: others build on it)
    kpis_order: ClassVar[float] = 1.0
    #: its rows of the simulated day's KPI table (:class:`ems.techs.kpi.KpiRow`)
    kpi_table_rows: ClassVar[tuple[KpiRow, ...]] = ()

    def __init__(self, tech: Any) -> None:
        self.tech = tech
        self.hub: str = tech.hub
        self.name: str = tech.name

    # ---- exogenous draws
    def exo_columns(self) -> list[tuple[str, str, str]]:
        """(family, profile column, key of the drawn series) it reads: ``load`` (electric load,
        one draw per hub), ``yield`` (PV), ``thermal`` (heat/cooling demand), ``temperature``,
        ``solar`` (solar thermal); the plant draws each family with its own noise model."""
        return []

    def draw_day(self, rng: np.random.Generator, d0: pd.Timestamp, scenario: Any) -> list[Any]:
        """Its events of one local day (EV visits), drawn in hub order day by day."""
        return []

    def draw_events(self, rng: np.random.Generator, start: Any, times: Any) -> list[Any]:
        """Its events over the period (AI jobs)."""
        return []

    def take_events(self, events: list[Any]) -> None:
        """The events drawn for it (before the first step)."""
        for attr in ("visits", "jobs"):
            if hasattr(self, attr):
                setattr(self, attr, list(events))

    # ---- thermal side
    def demand(self, hs: HubStep) -> None:  # noqa: B027
        """Heat (``heat_use`` −) and cooling (``cool_demand``) demands, solar heat."""

    def run(self, hs: HubStep) -> None:  # noqa: B027
        """Run its setpoint (or the hub's rule) within its limits."""

    def exchange(self, hs: HubStep) -> None:  # noqa: B027
        """A station's wish to exchange with other hubs."""

    def balance_network(self, devices: list[PlantDevice], baseline: bool) -> None:  # noqa: B027
        """A network balances its own stations among ``devices`` (Σ given = Σ taken)."""

    def settle(self, hs: HubStep) -> None:  # noqa: B027
        """A station puts its balanced exchange on its hub's sums."""

    def absorb(self, hs: HubStep, r: float) -> float:
        """A store takes the heat loop's mismatch ``r`` (+ surplus); returns what is left."""
        return r

    def backup(self, hs: HubStep, r: float) -> float:
        """Cover a heat deficit ``r`` < 0; returns what is left."""
        return r

    def turndown(self, hs: HubStep, r: float) -> float:
        """Turn down on a heat surplus ``r`` > 0; returns what is left."""
        return r

    def record(self, hs: HubStep) -> None:  # noqa: B027
        """Its row quantities and telemetry memory after the heat loop."""

    # ---- electric side
    def arrivals(self, now: pd.Timestamp, end: pd.Timestamp, first: bool) -> None:  # noqa: B027
        """Arrivals and departures at the start of a step."""

    def el_step(self, hs: HubStep) -> None:  # noqa: B027
        """Its electric power on the hub's bus (``bus``) and its rows."""

    def balance(self, hs: HubStep, net_kw: float) -> float:
        """Storage on the hub's net load ``net_kw``: its power (+ charge)."""
        return 0.0

    def after_balance(self, hs: HubStep) -> None:  # noqa: B027
        """After the bus is settled (vehicles charged to their need leave)."""

    def meter(self, hs: HubStep, net_kw: float) -> float:
        """The POD: limits and counters; returns the net power actually exchanged."""
        return net_kw

    def finish(self, hs: HubStep) -> None:  # noqa: B027
        """Rows that need the hub's surplus."""

    # ---- telemetry and persistence
    def telemetry(self, ts: str, i: int, col: Callable[..., float]) -> Telemetry:
        return []

    def announcements(self, ts: str) -> Telemetry:
        """Messages on its devices' ``job`` topic (AI schedulers)."""
        return []

    def to_dict(self) -> dict[str, Any]:
        return {}

    def load_dict(self, d: dict[str, Any]) -> None:  # noqa: B027
        pass

    # ---- day KPIs (over every device of its class)
    @classmethod
    def kpis(  # noqa: B027
        cls, devices: list[Any], df: pd.DataFrame, dt_h: float, hubs: list[str], out: dict
    ) -> None:
        """Its day KPIs into ``out`` (called for every registered kind, devices or not)."""


def row_total(df: pd.DataFrame, hubs: list[str], quantity: str, dt_h: float) -> float:
    """Energy over the executed steps of one row quantity summed over the hubs."""
    cols = [f"{h}.{quantity}" for h in hubs if f"{h}.{quantity}" in df.columns]
    return float(df[cols].to_numpy().sum() * dt_h) if cols else 0.0


def device_classes() -> list[type[PlantDevice]]:
    """Every plant device class of the registered technologies (their modules declare them)."""
    import ems.techs.registry  # noqa: F401 (imports every technology module)

    out: list[type[PlantDevice]] = []
    todo = list(PlantDevice.__subclasses__())
    while todo:
        c = todo.pop(0)
        out.append(c)
        todo += c.__subclasses__()
    return out


def row_quantities(thermal: bool) -> list[str]:
    """The per-hub row quantities of one side (every registered kind's, devices or not)."""
    return list(dict.fromkeys(q for c in device_classes() if c.thermal == thermal for q in c.rows))
