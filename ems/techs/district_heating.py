"""District heating between hubs (seed §3.2.6, (8)–(12), (17), (21)).

``DhStation`` (one per hub that may connect): connection y_DH ∈ {0,1} as a size (Capex (21)),
heat withdrawn for heating, DHW and absorption chillers (8), heat injected — only CHP heat, via the
hub's ``dh_injection`` balance that only CHP units supply (12). (9)–(11): withdrawal and injection
≤ P_DH,max · x with x_from + x_to ≤ y_DH (binaries per step when ``exclusive``; otherwise both
≤ P_DH,max · y_DH). ``DhNetwork`` (community level): η_DH · Σ injection = Σ withdrawal (17).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.model.context import BuildContext, SizeHandle
from ems.techs._plant import KeepsLast, RowKpis
from ems.techs._units import fixed_value
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import HEAT_DH_FROM, HEAT_DH_TO, HubStep, PlantDevice, r3

WITHDRAW_LABEL = "from DH"
INJECT_LABEL = "to DH"


class DhStation(Technology):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("dh_taken", 16, "heating", 7),
        Bar("dh_given", 17, "heating", 6),
    )

    kind = "dh_station"
    exchange_carrier = "heat"
    device_kind = "dh_station"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return DhStationPlant(self) if self.installed() else None

    def __init__(
        self,
        hub: str,
        *,
        uses: list[str],
        can_inject: bool,
        max_kw: float | None,
        connection_capex_eur: float,
        lifetime_y: float,
        exclusive: bool = True,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{hub}_dh", hub)
        self.uses = list(uses)  # carriers the network heat may feed: heat, dhw, chiller_feed
        self.can_inject = can_inject
        self.max_kw = max_kw
        self.connection_capex_eur, self.lifetime_y = connection_capex_eur, lifetime_y
        self.exclusive = exclusive
        self.fixed = fixed
        self.y: SizeHandle | None = None
        self.local: list[Technology] = []  # the hub's technologies (big-M from their sizes)
        self.peers: list[DhStation] = []  # the other stations of the network (set by DhNetwork)
        self.heat_peak_known = True  # design data give the heat peak; operation builds without
        self.eta = 1.0  # network efficiency (set by DhNetwork)

    @classmethod
    def hub_carriers(cls, hub: Any) -> list[str]:
        """The injection into the network, which only the hub's CHP units supply (12)."""
        return ["dh_injection"] if hub.district_heating and hub.chp else []

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        return {"dh": ("y_dh",)} if hub.district_heating else {}

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        """One substation per hub that may connect (not in the AS-IS plant)."""
        if a.asis:
            return []
        dh = a.scenario.district_heating
        out: list[Technology] = []
        for hub in a.scenario.hubs:
            if not hub.district_heating:
                continue
            carriers = a.carriers(hub)
            st = cls(
                hub.id,
                uses=[c for c in ("heat", "dhw", "chiller_feed") if c in carriers],
                can_inject=bool(hub.chp),
                max_kw=dh.max_kw_per_hub,
                connection_capex_eur=dh.connection_capex_eur,
                lifetime_y=dh.lifetime_y,
                exclusive=dh.exclusive,
                fixed=a.fixed(hub.id, "dh"),
            )
            st.local = a.at(hub.id)
            st.heat_peak_known = bool(a.peaks)
            out.append(st)
        return out

    def exchange_bound_kw(self) -> float:
        """Big-M of the exchange from the hub's sizes: what its CHPs can inject, or its heat peak
        plus what its chillers and heating buffer can take."""

        def total(role: str, techs: list[Technology]) -> float:
            return sum(t.bound_kw(role) for t in techs)

        own = self.local
        if self.heat_peak_known:
            uses = total("heat_load", own) + total("chiller_feed", own) + total("heat_charge", own)
        else:  # operation: no heat peak at build time; it takes at most what the others can inject
            uses = self.eta * sum(total("chp_heat", o.local) for o in self.peers)
        return max(total("chp_heat", own), uses, 1.0)

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        self.y = ctx.size(
            blk,
            "y_dh",
            unit_size=1.0,
            unit="connection",
            max_units=1,
            integer=True,
            capex_eur_per_unit=self.connection_capex_eur,
            lifetime_y=self.lifetime_y,
            fixed_units=fixed_value(self.fixed, "y_dh"),
        )

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if self.max_kw is None:
            self.max_kw = self.exchange_bound_kw()
        y, M = self.y, self.max_kw
        assert y is not None
        blk.U = pyo.Set(initialize=self.uses, ordered=True)
        blk.q_from_kw = pyo.Var(blk.U, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, M))
        blk.q_to_kw = pyo.Var(
            ctx.T, domain=pyo.NonNegativeReals, bounds=(0, M if self.can_inject else 0.0)
        )
        blk.from_total = pyo.Expression(
            ctx.T, rule=lambda b, p, t: sum(b.q_from_kw[c, p, t] for c in b.U)
        )
        if self.exclusive:
            blk.x_from = pyo.Var(ctx.T, domain=pyo.Binary)
            blk.x_to = pyo.Var(ctx.T, domain=pyo.Binary)
            blk.from_max = pyo.Constraint(
                ctx.T, rule=lambda b, p, t: b.from_total[p, t] <= M * b.x_from[p, t]
            )  # (9)
            blk.to_max = pyo.Constraint(
                ctx.T, rule=lambda b, p, t: b.q_to_kw[p, t] <= M * b.x_to[p, t]
            )  # (10)
            blk.connected = pyo.Constraint(
                ctx.T, rule=lambda b, p, t: b.x_from[p, t] + b.x_to[p, t] <= y.units
            )  # (11)
        else:
            blk.from_max = pyo.Constraint(
                ctx.T, rule=lambda b, p, t: b.from_total[p, t] <= M * y.units
            )
            blk.to_max = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.q_to_kw[p, t] <= M * y.units)
        for c in self.uses:
            self.port(
                ctx, c, WITHDRAW_LABEL, lambda p, t, c=c: blk.q_from_kw[c, p, t], bar="dh_taken"
            )
        if self.can_inject:
            self.port(
                ctx,
                "dh_injection",
                INJECT_LABEL,
                lambda p, t: -blk.q_to_kw[p, t],
                bar="dh_given",
                sign=-1,
            )

    def to_kw(self, p: str, t: int) -> Any:
        assert self.block is not None
        return self.block.q_to_kw[p, t]

    def from_kw(self, p: str, t: int) -> Any:
        assert self.block is not None
        return self.block.from_total[p, t]

    def sizes(self) -> dict[str, float]:
        assert self.y is not None
        return {"y_dh": self.y.value_units()}

    def size_rows(self) -> list[dict[str, Any]]:
        item = "district heating connection"
        return [self.size_row(item, "y/n", self.sizes()["y_dh"], 1)]

    # ---- operation interface (device ``dh_station/main``)
    def installed(self) -> bool:
        if self.y is not None:
            return self.y.value_units() > 0
        return float(fixed_value(self.fixed, "y_dh") or 0.0) > 0

    def devices(self) -> list[Device]:
        return [(self.hub, "dh_station", "main", self.max_kw or self.exchange_bound_kw())]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        to, fr = pyo.value(b.q_to_kw[k0]), pyo.value(b.from_total[k0])
        # without the exclusivity binaries (scenario district_heating.exclusive: false) a plan
        # may inject and withdraw at once; a substation does one or the other: the net flow
        net = {"to_kw": rnd_pos(to - min(to, fr)), "from_kw": rnd_pos(fr - min(to, fr))}
        return [(self.hub, "dh_station", "main", net)]

    def fallback_passes(self):  # noqa: ANN201
        return [((95.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """No exchange: each hub on its own."""
        return [(self.hub, "dh_station", "main", {"to_kw": 0.0, "from_kw": 0.0})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        return {
            f"{self.hub}.dh_to_kw": self.values(b.q_to_kw, keys),
            f"{self.hub}.dh_from_kw": self.values(b.from_total, keys),
        }

    def can_supply_electricity(self) -> bool:
        return False

    def cover_terms(self, carrier: str) -> list | None:
        return []


class DhNetwork(Technology):
    """Community heat balance (17): η_DH · Σ_h injected = Σ_h withdrawn, every step."""

    kind = "dh_network"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return DhNetworkPlant(self)

    def can_supply_electricity(self) -> bool:
        return False

    def __init__(self, stations: list[DhStation], eta: float) -> None:
        super().__init__("dh_network", "community")
        self.stations, self.eta = stations, eta
        for st in stations:
            st.peers = [o for o in stations if o is not st]
            st.eta = eta

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        stations = a.of(DhStation)
        return [cls(stations, a.scenario.district_heating.eta)] if stations else []

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        blk.eta = pyo.Param(initialize=self.eta, mutable=True)
        blk.balance = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: (
                b.eta * sum(s.to_kw(p, t) for s in self.stations)
                == sum(s.from_kw(p, t) for s in self.stations)
            ),
        )


class DhStationPlant(KeepsLast, RowKpis, PlantDevice):
    """A district-heating station in the simulated plant: it injects up to its hub's CHP heat and
    withdraws what its setpoint asks; the network then balances (no exchange in the baseline)."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("dh_kwh", "district heat exchanged", "kWh", 1, 25),
    )

    rows = ("dh_to_kw", "dh_from_kw")
    thermal = True
    station_carrier = "heat"
    kpi_rows = {"dh_kwh": "dh_from_kw"}

    def __init__(self, tech: DhStation) -> None:
        super().__init__(tech)
        self.to_kw = self.from_kw = 0.0
        self.last = (0.0, 0.0)

    def exchange(self, hs: HubStep) -> None:
        self.to_kw = self.from_kw = 0.0
        if hs.baseline:
            return
        heat = hs.sums.total("chp_heat")
        to = hs.setpoint((self.hub, "dh_station", "main"), "to_kw")
        self.to_kw = min(max(float(to or 0.0), 0.0), heat)
        fr = hs.setpoint((self.hub, "dh_station", "main"), "from_kw")
        self.from_kw = max(float(fr or 0.0), 0.0)

    def settle(self, hs: HubStep) -> None:
        hs.sums.add("heat_supply", HEAT_DH_TO, -self.to_kw)
        hs.sums.add("heat_supply", HEAT_DH_FROM, self.from_kw)

    def record(self, hs: HubStep) -> None:
        hs.rows.add("dh_to_kw", 0, self.to_kw)
        hs.rows.add("dh_from_kw", 0, self.from_kw)
        self.last = (self.to_kw, self.from_kw)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        to, fr = self.last
        return [((self.hub, "dh_station", "main"), {"ts": ts, "to_kw": r3(to), "from_kw": r3(fr)})]


class DhNetworkPlant(PlantDevice):
    """The heat network in the simulated plant: η_DH·Σ injected = Σ withdrawn, the larger side
    scaled down."""

    def balance_network(self, devices: list[PlantDevice], baseline: bool) -> None:
        st = [d for d in devices if d.tech in self.tech.stations]
        eta = self.tech.eta
        ti, tw = sum(d.to_kw for d in st), sum(d.from_kw for d in st)
        if tw > eta * ti + 1e-9:
            f = eta * ti / tw if tw > 0 else 0.0
            for d in st:
                d.from_kw = d.from_kw * f
        elif eta * ti > tw + 1e-9:
            f = tw / (eta * ti) if ti > 0 else 0.0
            for d in st:
                d.to_kw = d.to_kw * f
