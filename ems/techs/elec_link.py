"""Physical electric exchange between the hubs of a physical community (seed §3.2.6, (3)–(7), (14)).

``LinkStation`` (one per hub): power taken from (P_from) and given to (P_to) the other hubs over
the private lossless network, (3)–(4) with binaries x_take, x_give per step:
(5) x_take + x_give ≤ 1 — a hub does not give and take at once;
(6) grid import ≤ C·(1 − x_give) — it does not pass grid energy to the other hubs;
(7) grid export ≤ C·(1 − x_take) — it does not pass the other hubs' energy to the grid.
Big-M values from data: C = contract power; P_max per hub from its possible local generation
(giving) and its possible consumption (taking); in design mode also capped by what the other
hubs can take (giving) or give (taking) in that step. ``LinkNetwork``: Σ given = Σ taken (14).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs._plant import KeepsLast, RowKpis
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.grid import Grid
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import EX_GIVE, EX_TAKE, HubStep, PlantDevice, r3

TAKE_LABEL = "from other hubs"
GIVE_LABEL = "to other hubs"


class LinkStation(Technology):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("el_taken", 6, "electricity", 7),
        Bar("el_given", 7, "electricity", 6),
    )

    kind = "link_station"
    exchange_carrier = "electricity"
    device_kind = "elec_link"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return LinkStationPlant(self) if self.installed() else None

    def __init__(
        self,
        hub: str,
        grid: Grid,
        *,
        give_max_kw: float = 0.0,
        take_max_kw: float = 0.0,
        load_column: str | None = None,
        take_flex_kw: float = 0.0,
        give_firm_kw: float = 0.0,
        pv_kwp_by_yield: dict[str, float] | None = None,
        local_techs: list[Technology] | None = None,
    ) -> None:
        super().__init__(f"{hub}_link", hub)
        self.local_techs = list(local_techs or [])
        self.grid = grid
        self.give_max_kw, self.take_max_kw = give_max_kw, take_max_kw
        self.load_column, self.take_flex_kw = load_column, take_flex_kw
        self.give_firm_kw, self.pv_kwp_by_yield = give_firm_kw, dict(pv_kwp_by_yield or {})
        self.peers: list[LinkStation] = []  # the other hubs' stations (set by LinkNetwork)
        # bounds from the hub's sizes at build time (None: given to the constructor)
        self.from_sizes: dict[str, Any] | None = None

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        """One station per hub of a physical community of several hubs (not in the AS-IS plant)."""
        from ems.techs.grid import Grid

        s = a.scenario
        if s.community != "physical" or a.asis or len(s.hubs) <= 1:
            return []
        out: list[Technology] = []
        for hub in s.hubs:
            st = cls(hub.id, a.at(hub.id, Grid)[0], local_techs=a.at(hub.id))
            st.from_sizes = {
                "max_kw_per_hub": s.links.max_kw_per_hub,
                "peaks": dict(a.peaks),
                "load_column": a.load_column(hub.id),
                "contract_kw": hub.contract_kw,
            }
            out.append(st)
        return out

    def _own_bounds(self) -> tuple[float, float, float, dict[str, float]]:
        """(give, take, flexible use, PV kWp by yield column) of the hub at its size bounds: it
        gives at most its firm generation (CHP, battery) plus PV at the peak yield, and takes at
        most its load peak (the contract without data) plus its flexible uses."""
        f = self.from_sizes or {}
        peaks = f.get("peaks", {})
        firm = sum(t.bound_kw("el_firm") for t in self.local_techs)
        flex = sum(t.bound_kw("el_flex") for t in self.local_techs)
        by_yield: dict[str, float] = {}
        pv = 0.0
        for t in self.local_techs:
            kwp = t.bound_kw("pv_kwp")
            if kwp:
                col = t.data_columns()[0]
                by_yield[col] = by_yield.get(col, 0.0) + kwp
                pv += kwp * max(peaks.get(col, 1.0), 0.0)
        take = peaks.get(f.get("load_column"), f.get("contract_kw", 0.0)) + flex
        return firm + pv, take, flex, by_yield

    def resolve_bounds(self) -> None:
        """Set the big-M values from the sizes' upper bounds (design maximum, installed size in
        operation); with ``links.max_kw_per_hub`` that value instead."""
        f = self.from_sizes
        if f is None or f.get("resolved"):
            return
        f["resolved"] = True
        give, take, flex, by_yield = self._own_bounds()
        limit = f["max_kw_per_hub"]
        if limit is not None:
            self.give_max_kw, self.take_max_kw = max(limit, 0.0), max(limit, 0.0)
            return
        others = sum(o._own_bounds()[0] for o in self.peers)
        self.give_max_kw, self.take_max_kw = max(give, 0.0), max(min(take, others), 0.0)
        with_data = bool(f["peaks"])
        self.load_column = f["load_column"] if with_data else None
        self.take_flex_kw = flex
        self.give_firm_kw = give - sum(
            kwp * max(f["peaks"].get(c, 1.0), 0.0) for c, kwp in by_yield.items()
        )
        self.pv_kwp_by_yield = by_yield if with_data else {}

    def _step_bounds(
        self, ctx: BuildContext
    ) -> tuple[
        dict[tuple[str, int], float], dict[tuple[str, int], float], dict[tuple[str, int], float]
    ]:
        """Per-step big-M from data: take ≤ load + flexible uses, give ≤ firm generation + PV at
        its maximum size × the step's yield (tighter than one constant; SPEC §3 "big-M from data")."""
        take = {k: self.take_max_kw for k in ctx.grid.index()}
        give = {k: self.give_max_kw for k in ctx.grid.index()}
        use = {k: float(self.grid.contract_kw) for k in ctx.grid.index()}
        if self.load_column is not None:
            load = ctx.series(self.load_column)
            use = {k: max(load[k], 0.0) + self.take_flex_kw for k in take}
            take = {k: min(self.take_max_kw, use[k]) for k in take}
        if self.pv_kwp_by_yield or self.give_firm_kw < self.give_max_kw:
            yields = {col: ctx.series(col) for col in self.pv_kwp_by_yield}
            give = {
                k: min(
                    self.give_max_kw,
                    self.give_firm_kw
                    + sum(kwp * max(yields[c][k], 0.0) for c, kwp in self.pv_kwp_by_yield.items()),
                )
                for k in give
            }
        return take, give, use

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        for st in (self, *self.peers):  # the peers' bounds enter this station's big-M
            st.resolve_bounds()
        G, Tk, C = self.give_max_kw, self.take_max_kw, self.grid.contract_kw
        m_take, m_give, use = self._step_bounds(ctx)
        gen_max = dict(m_give)  # what the hub can generate: the big-M of (7)
        if self.peers and ctx.mode == "design":
            # (3)-(4) with community big-M (design data do not change after the build): by (14) a
            # hub gives at most what the others can take and takes at most what they can give
            peer = [o._step_bounds(ctx) for o in self.peers]
            m_give = {k: min(v, sum(b[0][k] for b in peer)) for k, v in m_give.items()}
            m_take = {k: min(v, sum(b[1][k] for b in peer)) for k, v in m_take.items()}
        ctx.param(blk, "m_take", m_take)
        ctx.param(blk, "m_give", m_give)
        blk.p_from_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, Tk))
        blk.p_to_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, G))
        blk.x_take = pyo.Var(ctx.T, domain=pyo.Binary)
        blk.x_give = pyo.Var(ctx.T, domain=pyo.Binary)
        blk.take_max = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_from_kw[p, t] <= b.m_take[p, t] * b.x_take[p, t]
        )  # (3)
        blk.give_max = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_to_kw[p, t] <= b.m_give[p, t] * b.x_give[p, t]
        )  # (4)
        blk.give_or_take = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.x_take[p, t] + b.x_give[p, t] <= 1
        )  # (5)
        g = self.grid
        # (6)-(7) with big-M from data: a hub never imports more than it can use, nor exports more
        # than it can generate (importing to export is dominated), so min(C, ·) is valid and tighter
        blk.no_grid_pass = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: g.import_kw(p, t) <= min(C, use[p, t]) * (1 - b.x_give[p, t]),
        )  # (6)
        blk.no_pass_to_grid = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: g.export_kw(p, t) <= min(C, gen_max[p, t]) * (1 - b.x_take[p, t]),
        )  # (7)
        # Valid inequality (cuts the relaxation's pass-through loops, keeps every non-dominated
        # integer plan): what a hub exports and gives comes from its own generation,
        # export + give ≤ PV + CHP + battery discharge — with (5)-(7) a giver does not import or
        # take, a taker does not export or give. Skipped if EVs could discharge (V2G).
        gens = self._local_generation()
        if gens is not None:
            blk.own_energy_only = pyo.Constraint(
                ctx.T,
                rule=lambda b, p, t: (
                    g.export_kw(p, t) + b.p_to_kw[p, t] <= sum(fn(p, t) for fn in gens)
                ),
            )
            if self.load_column is not None and ctx.mode == "design":
                # (3)/(7), valid inequality: a hub that does not take covers its own load from its
                # generation and imports, so export + give + load·(1 − x_take) ≤ generation + import
                # (no dominance argument needed); equivalently take ≤ load·x_take + flexible uses,
                # i.e. (3) without the flexible uses' maximum in its big-M
                load = ctx.series(self.load_column)
                ctx.param(blk, "load_kw", load)
                blk.own_load_first = pyo.Constraint(
                    ctx.T,
                    rule=lambda b, p, t: (
                        g.export_kw(p, t) + b.p_to_kw[p, t] + b.load_kw[p, t] * (1 - b.x_take[p, t])
                        <= sum(fn(p, t) for fn in gens) + g.import_kw(p, t)
                    ),
                )
        self.port(ctx, "electricity", TAKE_LABEL, lambda p, t: blk.p_from_kw[p, t], bar="el_taken")
        give = lambda p, t: -blk.p_to_kw[p, t]  # noqa: E731
        self.port(ctx, "electricity", GIVE_LABEL, give, bar="el_given", sign=-1)

    def _local_generation(self) -> list[Any] | None:
        gens: list[Any] = []
        for tech in self.local_techs:
            got = tech.generation_terms()
            if got is None:
                return None
            gens += got
        return gens

    def from_kw(self, p: str, t: int) -> Any:
        assert self.block is not None
        return self.block.p_from_kw[p, t]

    def to_kw(self, p: str, t: int) -> Any:
        assert self.block is not None
        return self.block.p_to_kw[p, t]

    # ---- operation interface (device ``elec_link/main``)
    def devices(self) -> list[Device]:
        return [(self.hub, "elec_link", "main", max(self.give_max_kw, self.take_max_kw, 0.1))]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        give, take = pyo.value(b.p_to_kw[k0]), pyo.value(b.p_from_kw[k0])
        net = {
            "give_kw": rnd_pos(give - min(give, take)),
            "take_kw": rnd_pos(take - min(give, take)),
        }
        return [(self.hub, "elec_link", "main", net)]

    def fallback_passes(self):  # noqa: ANN201
        return [((95.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """No exchange: each hub on its own."""
        return [(self.hub, "elec_link", "main", {"give_kw": 0.0, "take_kw": 0.0})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        return {
            f"{self.hub}.link_give_kw": self.values(b.p_to_kw, keys),
            f"{self.hub}.link_take_kw": self.values(b.p_from_kw, keys),
        }

    def can_supply_electricity(self) -> bool:
        return False  # a link taker cannot export what it takes, (7)

    def cover_terms(self, carrier: str) -> list | None:
        return []

    def measured_el_kw(self, state: Any) -> float:
        key = (self.hub, "elec_link", "main")
        return state.value(key, "take_kw") - state.value(key, "give_kw")


class LinkNetwork(Technology):
    """Lossless private network (14): Σ_h given = Σ_h taken, every step."""

    kind = "link_network"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return LinkNetworkPlant(self)

    def can_supply_electricity(self) -> bool:
        return False

    def __init__(self, stations: list[LinkStation]) -> None:
        super().__init__("link_network", "community")
        self.stations = stations
        for s in stations:
            s.peers = [o for o in stations if o is not s]

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        stations = a.of(LinkStation)
        return [cls(stations)] if stations else []

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        blk.balance = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: (
                sum(s.to_kw(p, t) for s in self.stations)
                == sum(s.from_kw(p, t) for s in self.stations)
            ),
        )


class LinkStationPlant(KeepsLast, RowKpis, PlantDevice):
    """An electric-link station in the simulated plant: it gives and takes what its setpoint
    asks; the network then balances (no exchange in the baseline)."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("link_kwh", "electricity exchanged between hubs", "kWh", 1, 26),
    )

    rows = ("link_give_kw", "link_take_kw")
    thermal = True
    station_carrier = "electricity"
    kpi_rows = {"link_kwh": "link_take_kw"}

    def __init__(self, tech: LinkStation) -> None:
        super().__init__(tech)
        self.give_kw = self.take_kw = 0.0
        self.last = (0.0, 0.0)

    def exchange(self, hs: HubStep) -> None:
        self.give_kw = self.take_kw = 0.0
        if hs.baseline:
            return
        key = (self.hub, "elec_link", "main")
        self.give_kw = max(float(hs.setpoint(key, "give_kw") or 0.0), 0.0)
        self.take_kw = max(float(hs.setpoint(key, "take_kw") or 0.0), 0.0)

    def settle(self, hs: HubStep) -> None:
        hs.sums.add("el_exchange", EX_GIVE, self.give_kw)
        hs.sums.add("el_exchange", EX_TAKE, -self.take_kw)

    def record(self, hs: HubStep) -> None:
        hs.rows.add("link_give_kw", 0, self.give_kw)
        hs.rows.add("link_take_kw", 0, self.take_kw)
        self.last = (self.give_kw, self.take_kw)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        g, t = self.last
        g, t = (g, 0.0) if g >= t else (0.0, t)  # a station reports its net direction
        return [((self.hub, "elec_link", "main"), {"ts": ts, "give_kw": r3(g), "take_kw": r3(t)})]


class LinkNetworkPlant(PlantDevice):
    """The private electric network in the simulated plant: Σ given = Σ taken, the larger side
    scaled down."""

    def balance_network(self, devices: list[PlantDevice], baseline: bool) -> None:
        st = [d for d in devices if d.tech in self.tech.stations]
        tg, tt = sum(d.give_kw for d in st), sum(d.take_kw for d in st)
        if tg > tt:
            for d in st:
                d.give_kw = d.give_kw * (tt / tg if tg > 0 else 0.0)
        else:
            for d in st:
                d.take_kw = d.take_kw * (tg / tt if tt > 0 else 0.0)
