"""Combined heat and power: gas engines and micro-turbines in identical units (seed §3.2.2).

Sizes: integer units n of one model. Operation per step: integer units on u ≤ n (PyPSA-style
committable in *units*, never status × capacity), P_min·u ≤ P_el ≤ P_max·u; part-load map linear
in (P_el, u) with a no-load term: fuel = a·P_el + b·u, heat = η_th,rated · fuel (so the rated heat
at full load and a rising heat share at part load). Heat split (1)–(2): the heat of all CHP units of a
hub goes to its ``chp_heat`` balance and :class:`ChpHeatSplit` sends it to heating + DHW +
absorption chillers + district heating; no dissipation unless ``allow_heat_dump`` (the seed's (2)
is an equality). One split per hub instead of one per model: the same plans, fewer variables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import ChpSpec
from ems.model.context import BuildContext
from ems.techs._plant import KeepsLast, RowKpis
from ems.techs._sized import UnitSized
from ems.techs._units import GasFired, gas_costs
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import EX_CHP, HEAT_CHP, HubStep, PlantDevice, r3

OUTLET_LABEL = {
    "heat": "heating",
    "dhw": "DHW",
    "chiller_feed": "chiller feed",
    "dh_injection": "to DH",
}


# --------------------------------------------------------------------------- the heat-led rule
@dataclass(frozen=True)
class ChpUnits:
    """One CHP model at a hub: n identical units, fuel = a·P + b per unit on, heat = η_th·fuel."""

    model: str
    n_units: int
    p_el_kw: float
    min_load: float
    a_fuel: float
    b_fuel_kw: float
    eta_th: float

    def heat_kw(self, p_el_kw: float, units: float = 1.0) -> float:
        return self.eta_th * (self.a_fuel * p_el_kw + self.b_fuel_kw * units)

    def p_for_heat(self, heat_kw: float) -> float:
        """Electric power of one unit that makes ``heat_kw`` of heat, within its load range."""
        p = (heat_kw / self.eta_th - self.b_fuel_kw) / self.a_fuel
        return min(max(p, self.min_load * self.p_el_kw), self.p_el_kw)


def chp_heat_led(
    heat_kw: float, models: list[ChpUnits]
) -> tuple[dict[str, tuple[int, float, float]], float]:
    """The rule-based fallback (SPEC §4 "CHP following heat demand"): units on enough to cover
    ``heat_kw`` within min/max load, largest models first; a unit is started only if the heat
    left is at least its minimum-load heat (no heat is dumped). Returns {model: (units on, P_el,
    heat)} and the heat left uncovered."""
    left = max(float(heat_kw), 0.0)
    out: dict[str, tuple[int, float, float]] = {m.model: (0, 0.0, 0.0) for m in models}
    for m in sorted(models, key=lambda m: -m.p_el_kw):
        q_min, q_max = m.heat_kw(m.min_load * m.p_el_kw), m.heat_kw(m.p_el_kw)
        units, p_tot, q_tot = 0, 0.0, 0.0
        for _ in range(max(int(m.n_units), 0)):
            if left < q_min - 1e-9:
                break
            p = m.p_for_heat(min(left, q_max))
            q = m.heat_kw(p)
            units, p_tot, q_tot, left = units + 1, p_tot + p, q_tot + q, max(left - q, 0.0)
        out[m.model] = (units, p_tot, q_tot)
    return out, left


class Chp(GasFired, UnitSized):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("chp_el", 3, "electricity", 3, generation=True),
        Bar("chp_heat", 12, "heating", 2),
    )

    kind = "chp"
    device_kind = "chp"
    size_item, size_key, size_unit = "chp", "kwe", "kWe"
    hub_field = "chp"
    commitment_sized = True  # engines time-shared in the relaxation: the sizing bound's gap

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return ChpPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: ChpSpec,
        max_units: int,
        *,
        gas_eur_per_kwh: float,
        gas_t_per_mwh: float = 0.205,
        existing_units: int = 0,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name, hub, model, spec, max_units, existing_units=existing_units, fixed=fixed
        )
        self.gas_eur_per_kwh, self.gas_t_per_mwh = gas_eur_per_kwh, gas_t_per_mwh
        rated_fuel = spec.p_el_kw / spec.eta_el
        self.b_fuel_kw = spec.no_load_fuel_fraction * rated_fuel  # no-load fuel per unit on
        self.a_fuel = (rated_fuel - self.b_fuel_kw) / spec.p_el_kw  # marginal fuel per kWe

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        gas, co2 = a.scenario.prices.gas_eur_per_kwh, a.scenario.emissions.gas_t_per_mwh
        kw = {"gas_eur_per_kwh": gas, "gas_t_per_mwh": co2}
        return cls.units_from_hub(a, hub, ChpSpec, "chp", **kw)

    def bound_kw(self, role: str) -> float:
        assert self.n is not None
        if role == "el_firm":
            return self.n.ub_units * self.spec.p_el_kw
        if role == "chp_heat":
            return self.n.ub_units * self.unit_heat_kw
        return 0.0

    def generation_terms(self) -> list | None:
        b = self.block
        return [lambda p, t: b.p_el_kw[p, t]]

    def cover_terms(self, carrier: str) -> list | None:
        return []  # the subject of the cut

    @property
    def unit_heat_kw(self) -> float:
        """Heat of one unit at full load: η_th × rated fuel (kW)."""
        return self.spec.eta_th * self.spec.p_el_kw / self.spec.eta_el

    def unit_kw(self) -> float:
        return self.spec.p_el_kw

    def unit_capex_eur(self) -> float:
        return self.spec.capex_eur_per_kw_el * self.spec.p_el_kw

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s, n = self.spec, self.n
        assert n is not None
        n_max = n.ub_units
        blk.u_on = pyo.Var(ctx.T, domain=pyo.NonNegativeIntegers, bounds=(0, n_max))
        blk.p_el_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, n_max * s.p_el_kw))
        blk.units_on_le_units = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.u_on[p, t] <= n.units)
        blk.p_min = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_el_kw[p, t] >= s.min_load * s.p_el_kw * b.u_on[p, t]
        )
        blk.p_max = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_el_kw[p, t] <= s.p_el_kw * b.u_on[p, t]
        )
        blk.fuel_kw = pyo.Expression(
            ctx.T,
            rule=lambda b, p, t: self.a_fuel * b.p_el_kw[p, t] + self.b_fuel_kw * b.u_on[p, t],
        )
        # (1)-(2): the heat produced goes to the hub's CHP heat bus; ChpHeatSplit sends it on to
        # heating, DHW, chillers and district heating (one split per hub, not per model)
        label = f"CHP {self.model}"
        self.port(ctx, "electricity", label, lambda p, t: blk.p_el_kw[p, t], bar="chp_el")
        self.port(ctx, "chp_heat", label, lambda p, t: s.eta_th * blk.fuel_kw[p, t], bar="chp_heat")

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        gas_costs(ctx, blk, blk.fuel_kw, self.gas_eur_per_kwh, self.gas_t_per_mwh)
        if self.spec.om_eur_per_kwh_el > 0:
            ctx.add_cost(
                "om",
                sum(
                    ctx.weight(p) * self.spec.om_eur_per_kwh_el * blk.p_el_kw[p, t]
                    for p, t in ctx.T
                ),
            )

    # ---- operation interface (device id = the CHP model)
    def units(self) -> int:
        return int(round(self.installed_units()))

    def installed(self) -> bool:
        return self.units() > 0

    def devices(self) -> list[Device]:
        return [(self.hub, "chp", self.model, self.n.value() if self.n else 0.0)]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        units = int(round(pyo.value(b.u_on[k0])))
        p = rnd_pos(pyo.value(b.p_el_kw[k0])) if units else 0.0
        return [(self.hub, "chp", self.model, {"units_on": units, "p_kw": p})]

    def rule_units(self) -> ChpUnits:
        s = self.spec
        return ChpUnits(
            self.model, self.units(), s.p_el_kw, s.min_load, self.a_fuel, self.b_fuel_kw, s.eta_th
        )

    def fallback_passes(self):  # noqa: ANN201
        return [((20.0, -self.spec.p_el_kw), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """Follow the heat demand: enough units on to cover the hub's heat left within their
        min/max load (largest models first, by the pass order)."""
        plan, st.heat_kw = chp_heat_led(st.heat_kw, [self.rule_units()])
        units, p, _q = plan[self.model]
        st.net_el_kw -= rnd_pos(p)
        return [(self.hub, "chp", self.model, {"units_on": int(units), "p_kw": rnd_pos(p)})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        return {
            f"{self.hub}.chp_kw": self.values(b.p_el_kw, keys),
            f"{self.hub}.chp_heat_kw": self.spec.eta_th * self.values(b.fuel_kw, keys),
            f"{self.hub}.chp_units": self.values(b.u_on, keys),
        }

    def can_supply_electricity(self) -> bool:
        return self.installed()

    def measured_el_kw(self, state: Any) -> float:
        return state.value((self.hub, "chp", self.model), "p_kw")


class ChpHeatSplit(Technology):
    """Seed (1)–(2): CHP heat of a hub = heating + DHW + chiller feed + district heating (+ dump
    only if ``allow_heat_dump``)."""

    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("chp_to_heating", 13),
    )

    kind = "chp_heat_split"

    def can_supply_electricity(self) -> bool:
        return False

    def __init__(
        self,
        hub: str,
        outlets: list[str],
        q_max_kw: float | None = None,
        allow_heat_dump: bool = False,
        chps: list[Chp] | None = None,
    ) -> None:
        super().__init__(f"{hub}_chp_heat", hub)
        self.outlets, self.q_max_kw, self.allow_heat_dump = list(outlets), q_max_kw, allow_heat_dump
        self.chps = list(chps or [])

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        chps = a.at(hub.id, Chp)
        if not chps:
            return []
        carriers = a.carriers(hub)
        outlets = [c for c in ("heat", "dhw", "chiller_feed", "dh_injection") if c in carriers]
        return [cls(hub.id, outlets, chps=chps)]

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if self.q_max_kw is None:  # the CHPs' heat at their size bound (built before the split)
            self.q_max_kw = sum(c.bound_kw("chp_heat") for c in self.chps)
        blk.O = pyo.Set(initialize=self.outlets, ordered=True)
        blk.q_kw = pyo.Var(blk.O, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.q_max_kw))
        self.port(
            ctx, "chp_heat", "CHP heat split", lambda p, t: -sum(blk.q_kw[o, p, t] for o in blk.O)
        )
        for o in self.outlets:
            bar = "chp_to_heating" if o == "heat" else None
            self.port(ctx, o, "CHP", lambda p, t, o=o: blk.q_kw[o, p, t], bar=bar)
        if self.allow_heat_dump:
            blk.q_dump_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.q_max_kw))
            self.port(ctx, "chp_heat", "CHP heat dump", lambda p, t: -blk.q_dump_kw[p, t])

    def cover_terms(self, carrier: str) -> list | None:
        return []


def unit_weights(
    ctx: BuildContext,
    blk: pyo.Block,
    name: str,
    per_step: dict[tuple[str, int], float],
    per_unit: list[float],
) -> None:
    """``blk.<name>[c, p, t]`` = min(per_step_t, per_unit_c) over the cut's CHPs ``blk.C``: what
    one running unit of CHP c counts in step t in the cuts' mixed-integer rounding (a unit counts
    at most the step's residual, never more than its own output)."""
    blk.C = pyo.Set(initialize=range(len(per_unit)), ordered=True)
    init = weight_values(per_step, per_unit)
    par = pyo.Param(blk.C, ctx.T, mutable=True, within=pyo.NonNegativeReals, initialize=init)
    blk.add_component(name, par)


def weight_values(
    per_step: dict[tuple[str, int], float], per_unit: list[float]
) -> dict[tuple[Any, ...], float]:
    """The values of :func:`unit_weights`: {(c, p, t): min(per_step_t, per_unit_c)}."""
    return {(i, *k): min(v, h) for i, h in enumerate(per_unit) for k, v in per_step.items()}


def hub_groups(hubs: list[str], linked: list[str]) -> list[list[str]]:
    """The groups of hubs that share a carrier: the linked ones together, each other alone."""
    return ([linked] if linked else []) + [[h] for h in hubs if h not in linked]


def running(chps: list[Chp]) -> list[Chp]:
    """The CHPs with installed units (operation: the others' units on are fixed at 0)."""
    return [c for c in chps if c.n is not None and c.n.ub_units > 0]


def slack_terms(
    ctx: BuildContext, hubs: list[str], carriers: Any, unmet: bool = True, dump: bool = False
) -> list[Any]:
    """Operation mode's unmet and/or dump slack of the group's balances whose carrier passes
    ``carriers`` (a predicate), as (p, t) terms. A soft balance takes energy from nowhere
    (unmet) or sends it nowhere (dump) at a penalty, so a cut derived from the hard balances
    holds in the soft model only with that slack on its "other sources" (or sink) side."""
    m = ctx.model
    if not hasattr(m, "unmet_kw"):
        return []
    out: list[Any] = []
    for h, c in m.B:
        if h not in hubs or not carriers(c):
            continue
        if unmet:
            out.append(lambda p, t, h=h, c=c: m.unmet_kw[h, c, p, t])
        if dump:
            out.append(lambda p, t, h=h, c=c: m.dump_kw[h, c, p, t])
    return out


def load_kw(frame: Any, columns: list[str], etas: list[float], keys: list[Any]) -> dict:
    """Σ_j max(column_j, 0) / η_j per step: what the balances ask of the group (the demand's
    distribution efficiency η ≤ 1 counted, as its balance term is load / η)."""
    total = np.zeros(len(keys))
    for c, eta in zip(columns, etas, strict=True):
        total += np.maximum(np.asarray(frame[c], dtype=float), 0.0) / eta
    return dict(zip(keys, total.tolist(), strict=True))


def build_frame(ctx: BuildContext, columns: list[str], keys: list[Any]) -> dict:
    """The build data of ``columns`` in the form :meth:`update_data` gets them (one array each)."""
    out = {}
    for c in columns:
        ser = ctx.series(c)
        out[c] = np.array([ser[k] for k in keys], dtype=float)
    return out


def set_values(par: Any, values: dict) -> None:
    """Write values into a mutable Param in place (operation: no rebuild)."""
    for k, v in values.items():
        par[k].set_value(float(v))


class ChpHeatSink(Technology):
    """Valid inequality on CHP units on (design mode): the heat of a running unit must find a sink,
    since (2) is an equality (no dissipation). For a group of hubs (those linked by district
    heating, or one hub), with D_t the heating (15) + DHW (16) load and F_t an upper bound of the
    chiller feed (18) (cooling load / COP_th) of step t, η the district-heating efficiency (17)
    (1 without it) and u the units on:

        Σ_stores (charge − discharge)_t ≥ η · Σ_CHP heat_t − D_t − Σ_c min(F_t, η·H_c) · u_c,t

    (H_c the heat of one unit of CHP c at full load). Valid: η·heat ≤ D + feed + net charge from
    the balances; the chillers take only CHP (or district, i.e. CHP) heat, so feed ≤ min(F,
    η·Σ H_c·u_c) ≤ Σ min(F, η·H_c)·u_c for integer u; and the stores only discharge into
    heating/DHW (net charge ≥ −D when no unit runs). With the units on relaxed (sizing pass) it
    removes the plans that run "a fraction of a unit" to feed a chiller load smaller than one
    unit's heat when no heating load can take the surplus (summer).
    """

    kind = "chp_heat_sink"

    def __init__(
        self,
        name: str,
        chps: list[Chp],
        stores: list[Technology],
        heat_columns: list[str],
        feed_columns: list[tuple[str, float]],
        eta: float = 1.0,
        hubs: list[str] | None = None,
        column_eta: dict[str, float] | None = None,
    ) -> None:
        super().__init__(name, "community")
        self.chps, self.stores, self.eta = list(chps), list(stores), eta
        self.heat_columns, self.feed_columns = list(heat_columns), list(feed_columns)
        self.hubs = list(hubs if hubs is not None else {c.hub for c in self.chps})
        # the demands' distribution efficiency per column (operation: load / η in the balance)
        self.column_eta = dict(column_eta or {})
        self.keys: list[Any] = []

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        """One cut per group of hubs that can share heat (linked by district heating, or one)."""
        from ems.techs.absorption_chiller import AbsorptionChiller
        from ems.techs.demand import HEAT_CARRIERS, Demand
        from ems.techs.district_heating import DhNetwork
        from ems.techs.thermal_storage import ThermalStorage

        nets = a.of(DhNetwork)
        linked = [st.hub for n in nets for st in n.stations]
        eta = nets[0].eta if nets else 1.0
        hubs = [h.id for h in a.scenario.hubs]
        out: list[Technology] = []
        for grp in hub_groups(hubs, linked):
            eta_g = eta if grp == linked else 1.0
            chps = [c for h in grp for c in a.at(h, Chp)]
            if not chps:
                continue
            demands = [d for h in grp for d in a.at(h, Demand)]
            feed = []
            for h in grp:
                cops = [c.spec.cop_th for c in a.at(h, AbsorptionChiller)]
                cool = [d.column for d in a.at(h, Demand) if d.carrier == "cooling"]
                if cops and cool:  # chiller feed ≤ cooling load / COP_th
                    feed.append((cool[0], 1.0 / min(cops)))
            out.append(
                cls(
                    f"chp_heat_sink_{'_'.join(grp)}",
                    chps,
                    [st for h in grp for st in a.at(h, ThermalStorage)],
                    [d.column for d in demands if d.carrier in HEAT_CARRIERS],
                    feed,
                    eta=min(eta_g, 1.0),
                    hubs=grp,
                    column_eta={d.column: d.distribution_eta for d in demands},
                )
            )
        return out

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if ctx.mode != "design" or not self.chps or not self.feed_columns:
            return
        # D_t as the balances ask it: load / distribution η (with the bare load the cut was
        # stronger than the balances whenever η < 1, and could cut off a feasible plan)
        heat = [(ctx.series(c), self.column_eta.get(c, 1.0)) for c in self.heat_columns]
        feed = [(ctx.series(c), f) for c, f in self.feed_columns]
        ctx.param(
            blk,
            "heat_load_kw",
            {k: sum(max(h[k], 0.0) / e for h, e in heat) for k in ctx.grid.index()},
        )
        feed_max = {k: sum(f * max(c[k], 0.0) for c, f in feed) for k in ctx.grid.index()}
        ctx.param(blk, "feed_max_kw", feed_max)
        chps, stores, eta = self.chps, self.stores, self.eta
        unit_weights(ctx, blk, "feed_weight_kw", feed_max, [eta * c.unit_heat_kw for c in chps])
        blk.heat_finds_sink = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: (
                sum(s.block.q_charge_kw[p, t] - s.block.q_discharge_kw[p, t] for s in stores)
                >= sum(
                    eta * c.spec.eta_th * c.block.fuel_kw[p, t]
                    - b.feed_weight_kw[i, p, t] * c.block.u_on[p, t]
                    for i, c in enumerate(chps)
                )
                - b.heat_load_kw[p, t]
            ),
        )

    # ---- operation: the same cut on the controller's relaxed tail, coefficients from forecasts
    def add_late(self, ctx: BuildContext) -> None:
        """Operation mode: the cut with its data-derived coefficients (heat load D_t, chiller
        feed bound F_t, unit weights min(F_t, η·H_c)) as mutable Params that :meth:`update_data`
        rewrites from each step's forecasts, and the soft balances' slack on the sink side:

            Σ_stores (charge − discharge)_t + κ·Σ slack_t
                ≥ η·Σ_c CHP heat_c,t − D_t − Σ_c min(F_t, η·H_c)·u_c,t

        with D_t = Σ heat loads / distribution η, F_t = Σ cooling load / (η_cool·COP_th), the
        slack: the dump of every non-electric balance of the group (dumped cooling lets a
        chiller take more feed, hence κ = max(1, 1/COP_th)) and the unmet CHP heat. Valid for
        every integer plan of the soft model, as the design form is for the hard one."""
        if ctx.mode == "design" or not self.heat_columns:
            return
        chps = running(self.chps)
        if not chps:
            return
        blk, eta, stores = self.block, self.eta, self.stores
        self.keys = list(ctx.grid.index())
        self.op_chps = chps
        heat, feed_max = self._coefficients(build_frame(ctx, self.data_columns(), self.keys))
        ctx.param(blk, "heat_load_kw", heat)
        ctx.param(blk, "feed_max_kw", feed_max)
        unit_weights(ctx, blk, "feed_weight_kw", feed_max, [eta * c.unit_heat_kw for c in chps])
        kappa = max([1.0] + [f for _c, f in self.feed_columns])
        # CHP heat ≤ what its split delivers + its dump; each heat bus may dump what it got
        slack = slack_terms(ctx, self.hubs, lambda c: c != "electricity", unmet=False, dump=True)
        slack += slack_terms(ctx, self.hubs, lambda c: c == "chp_heat")
        blk.heat_finds_sink = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: (
                sum(s.block.q_charge_kw[p, t] - s.block.q_discharge_kw[p, t] for s in stores)
                + kappa * sum(f(p, t) for f in slack)
                >= sum(
                    eta * c.spec.eta_th * c.block.fuel_kw[p, t]
                    - b.feed_weight_kw[i, p, t] * c.block.u_on[p, t]
                    for i, c in enumerate(chps)
                )
                - b.heat_load_kw[p, t]
            ),
        )

    def _coefficients(self, frame: Any) -> tuple[dict, dict]:
        """(D_t, F_t) from one horizon of the data columns."""
        keys, ce = self.keys, self.column_eta
        heat = load_kw(frame, self.heat_columns, [ce.get(c, 1.0) for c in self.heat_columns], keys)
        feed = {k: 0.0 for k in keys}
        for col, f in self.feed_columns:
            for k, v in load_kw(frame, [col], [ce.get(col, 1.0)], keys).items():
                feed[k] += f * v
        return heat, feed

    def relaxation_cuts(self) -> list[Any]:
        b = self.block
        return [b.heat_finds_sink] if b is not None and hasattr(b, "heat_finds_sink") else []

    def data_columns(self) -> list[str]:
        return list(dict.fromkeys(self.heat_columns + [c for c, _f in self.feed_columns]))

    def update_data(self, frame: Any) -> None:
        """The step's forecasts into the cut's coefficients (values only, no rebuild)."""
        if not self.relaxation_cuts():
            return
        b = self.block
        heat, feed = self._coefficients(frame)
        set_values(b.heat_load_kw, heat)
        set_values(b.feed_max_kw, feed)
        units = [self.eta * c.unit_heat_kw for c in self.op_chps]
        set_values(b.feed_weight_kw, weight_values(feed, units))


class ChpOffCover(Technology):
    """Valid inequality on CHP units on (design mode), one per carrier and group of hubs that can
    share it (electricity: hubs linked by (3)–(7), (14); heat: hubs linked by district heating).
    With L_t the group's load (data), U the largest output of one unit (kWe, or kW of heat at full
    load), U_c the output of one unit of CHP c, k_t = ⌊L_t / U⌋ and r_t = L_t − k_t·U, the other
    sources (grid import, PV, battery discharge; or boilers, heat pumps, solar thermal, store
    discharge) cover what the running units cannot:

        Σ other sources_t ≥ r_t·(k_t + 1) − Σ_c min(r_t, U_c)·u_c,t.

    This is the mixed-integer rounding of Σ_c U_c·u_c + other ≥ L with divisor U (a unit of the
    largest model counts r_t, a smaller one min(r_t, U_c)), so it holds for every integer u. With u
    relaxed it removes the plans that run "a fraction of a unit" at full-load efficiency instead of
    a whole unit at part load (or the unit for part of the step and the grid or the boiler for the
    rest), also when fractions of a small and a large model are mixed: counting a small unit as r_t
    (the first form) let 0.8 of a 20 kWe engine "cover" most of a 100 kW load.
    """

    kind = "chp_off_cover"

    def __init__(
        self,
        name: str,
        chps: list[Chp],
        sources: list[Any],
        load_columns: list[str],
        unit_kw: list[float],
    ) -> None:
        super().__init__(name, "community")
        self.chps, self.sources, self.load_columns = list(chps), list(sources), list(load_columns)
        if len(unit_kw) != len(self.chps):
            raise ValueError("ChpOffCover: one unit output per CHP")
        self.unit_kw = list(unit_kw)  # output of one unit of each CHP (kWe, or kW of heat)
        # (carrier, members): the other sources are read from these technologies' blocks when
        # the cut is built (last), see Technology.cover_terms
        self.members: tuple[str, list[Technology]] | None = None
        self.hubs: list[str] = sorted({c.hub for c in self.chps})
        # the demands' distribution efficiency per load column (operation: load / η)
        self.column_eta: dict[str, float] = {}
        self.keys: list[Any] = []

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        """The cuts per carrier and group of hubs (heat: linked by district heating; electricity:
        linked by the private network)."""
        from ems.techs.demand import HEAT_CARRIERS, Demand
        from ems.techs.district_heating import DhStation
        from ems.techs.elec_link import LinkStation

        out: list[Technology] = []
        hubs = [h.id for h in a.scenario.hubs]
        for carrier, linked in (
            ("heat", [st.hub for st in a.of(DhStation)]),
            ("electricity", [lk.hub for lk in a.of(LinkStation)]),
        ):
            for grp in hub_groups(hubs, linked):
                chps = [c for h in grp for c in a.at(h, Chp)]
                if not chps:
                    continue
                if carrier == "heat":
                    cols = [
                        d.column for h in grp for d in a.at(h, Demand) if d.carrier in HEAT_CARRIERS
                    ]
                    unit = [c.unit_heat_kw for c in chps]
                else:
                    cols = [a.load_column(h) for h in grp]
                    unit = [c.spec.p_el_kw for c in chps]
                cut = cls(f"chp_off_{carrier}_{'_'.join(grp)}", chps, [], cols, unit)
                cut.members = (carrier, [t for t in a.techs if t.hub in grp])
                cut.hubs = list(grp)
                cut.column_eta = {
                    d.column: d.distribution_eta for h in grp for d in a.at(h, Demand)
                }
                out.append(cut)
        return out

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if ctx.mode != "design" or not self.chps or not self.load_columns:
            return
        if self.members is not None:
            carrier, members = self.members
            terms: list[Any] = []
            for t in members:
                got = t.cover_terms(carrier)
                if got is None:
                    return  # a supply we do not know: no cut
                terms += got
            self.sources = terms
        loads = [ctx.series(c) for c in self.load_columns]
        total = {k: sum(max(x[k], 0.0) for x in loads) for k in ctx.grid.index()}
        U = max(self.unit_kw)
        units = {k: (math.floor(v / U) if U > 0 else 0) for k, v in total.items()}
        rest = {k: v - units[k] * U for k, v in total.items()}
        ctx.param(blk, "uncovered_kw", rest)
        ctx.param(blk, "units_k", {k: float(units[k]) for k in total})
        unit_weights(ctx, blk, "unit_weight_kw", rest, self.unit_kw)
        chps, sources = self.chps, self.sources
        blk.covered_when_off = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: (
                sum(f(p, t) for f in sources)
                >= b.uncovered_kw[p, t] * (b.units_k[p, t] + 1)
                - sum(b.unit_weight_kw[i, p, t] * c.block.u_on[p, t] for i, c in enumerate(chps))
            ),
        )

    # ---- operation: the same cut on the controller's relaxed tail, coefficients from forecasts
    def add_late(self, ctx: BuildContext) -> None:
        """Operation mode: the cut over the CHPs with installed units, its data-derived
        coefficients (r_t, k_t, the unit weights min(r_t, U_c)) mutable Params that
        :meth:`update_data` rewrites from each step's forecasts, and the soft balances' unmet
        and dump slack of the group among the other sources (L_t = Σ loads / distribution η,
        what the balances ask). Valid for every integer plan of the soft model."""
        if ctx.mode == "design" or not self.load_columns:
            return
        chps = running(self.chps)
        if not chps or self.members is None:
            return
        carrier, members = self.members
        terms: list[Any] = []
        for t in members:
            got = t.cover_terms(carrier)
            if got is None:
                return  # a supply we do not know: no cut
            terms += got
        # what a soft balance supplies from nowhere: of electricity, or of any heat bus
        el = carrier == "electricity"
        terms += slack_terms(ctx, self.hubs, lambda c: (c == "electricity") == el)
        blk = self.block
        self.keys = list(ctx.grid.index())
        self.op_chps = chps
        self.op_unit_kw = [self.unit_kw[self.chps.index(c)] for c in chps]
        rest, units = self._coefficients(build_frame(ctx, self.load_columns, self.keys))
        ctx.param(blk, "uncovered_kw", rest)
        ctx.param(blk, "units_k", units)
        unit_weights(ctx, blk, "unit_weight_kw", rest, self.op_unit_kw)
        blk.covered_when_off = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: (
                sum(f(p, t) for f in terms)
                >= b.uncovered_kw[p, t] * (b.units_k[p, t] + 1)
                - sum(b.unit_weight_kw[i, p, t] * c.block.u_on[p, t] for i, c in enumerate(chps))
            ),
        )

    def _coefficients(self, frame: Any) -> tuple[dict, dict]:
        """(r_t, k_t) from one horizon of the load columns: L_t = k_t·U + r_t, U the largest
        installed unit."""
        ce = self.column_eta
        total = load_kw(
            frame, self.load_columns, [ce.get(c, 1.0) for c in self.load_columns], self.keys
        )
        U = max(self.op_unit_kw)
        units = {k: float(math.floor(v / U)) for k, v in total.items()}
        return {k: v - units[k] * U for k, v in total.items()}, units

    def relaxation_cuts(self) -> list[Any]:
        b = self.block
        return [b.covered_when_off] if b is not None and hasattr(b, "covered_when_off") else []

    def data_columns(self) -> list[str]:
        return list(self.load_columns)

    def update_data(self, frame: Any) -> None:
        """The step's forecasts into the cut's coefficients (values only, no rebuild)."""
        if not self.relaxation_cuts():
            return
        b = self.block
        rest, units = self._coefficients(frame)
        set_values(b.uncovered_kw, rest)
        set_values(b.units_k, units)
        set_values(b.unit_weight_kw, weight_values(rest, self.op_unit_kw))


class ChpPlant(KeepsLast, RowKpis, PlantDevice):
    """A CHP model in the simulated plant: units on ≤ installed, electric power clamped to
    [P_min·u, P_max·u], fuel = a·P + b·u, heat = η_th·fuel (the model's part-load map); on a
    heat surplus the units derate heat-led within their minimum load."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("chp_om_eur", "CHP O&M", "€", 2, 17, cost=True),
        KpiRow("chp_kwh", "CHP electricity", "kWh", 1, 21, generation=True),
        KpiRow("chp_heat_kwh", "CHP heat", "kWh", 1, 22),
    )

    rows = ("chp_kw", "chp_heat_kw", "chp_om_eur_per_h")
    thermal = True
    turndown_order = 2.0
    kpi_rows = {
        "chp_om_eur": "chp_om_eur_per_h",
        "chp_kwh": "chp_kw",
        "chp_heat_kwh": "chp_heat_kw",
    }

    def __init__(self, tech: Chp) -> None:
        super().__init__(tech)
        self.u, self.p = 0, 0.0
        self.last = (0, 0.0, 0.0, 0.0)  # units on, P_el, heat, fuel

    def fuel_kw(self) -> float:
        return self.tech.a_fuel * self.p + self.tech.b_fuel_kw * self.u

    def heat_kw(self) -> float:
        c = self.tech
        return c.spec.eta_th * (c.a_fuel * self.p + c.b_fuel_kw * self.u)

    def run(self, hs: HubStep) -> None:
        c = self.tech
        key = (self.hub, "chp", c.model)
        n = int(round(c.n.value_units()))
        u, p = hs.setpoint(key, "units_on"), hs.setpoint(key, "p_kw")
        if u is None or p is None:
            u, p = hs.rules[key]["units_on"], hs.rules[key]["p_kw"]
        u = max(0, min(int(u), n))
        p = min(max(float(p), c.spec.min_load * c.spec.p_el_kw * u), c.spec.p_el_kw * u)
        self.u, self.p = u, p
        hs.sums.add("chp_heat", 0, self.heat_kw())  # what district heating may inject
        hs.sums.add("heat_supply", HEAT_CHP, self.heat_kw())

    def turndown(self, hs: HubStep, r: float) -> float:
        c = self.tech
        if r <= 1e-9 or self.u == 0:
            return r
        p_new = max(
            c.spec.min_load * c.spec.p_el_kw * self.u, self.p - r / (c.spec.eta_th * c.a_fuel)
        )
        r -= c.spec.eta_th * c.a_fuel * (self.p - p_new)
        self.p = p_new
        return r

    def record(self, hs: HubStep) -> None:
        fuel, heat = self.fuel_kw(), self.heat_kw()
        hs.rows.add("chp_kw", 0, self.p)
        hs.rows.add("chp_heat_kw", 0, heat)
        hs.rows.add("gas_kw", 0, fuel)
        hs.rows.add("chp_om_eur_per_h", 0, self.tech.spec.om_eur_per_kwh_el * self.p)
        hs.sums.add("el_exchange", EX_CHP, -self.p)
        self.last = (self.u, self.p, self.tech.spec.eta_th * fuel, fuel)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        u, p, q, f = self.last
        payload = {"ts": ts, "p_kw": r3(p), "heat_kw": r3(q), "units_on": int(u), "fuel_kw": r3(f)}
        return [((self.hub, "chp", self.tech.model), payload)]
