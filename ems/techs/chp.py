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

from typing import Any

import pyomo.environ as pyo

from ems.config.schema import ChpSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._units import fixed_value, gas_costs, set_gas_price
from ems.techs.base import Technology

OUTLET_LABEL = {"heat": "heating", "dhw": "DHW", "chiller_feed": "chiller feed", "dh_injection": "to DH"}


class Chp(Technology):
    kind = "chp"

    def __init__(self, name: str, hub: str, model: str, spec: ChpSpec, max_units: int, *,
                 gas_eur_per_kwh: float, gas_t_per_mwh: float = 0.205, existing_units: int = 0,
                 fixed: dict[str, Any] | None = None) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.max_units, self.existing_units = max_units, existing_units
        self.gas_eur_per_kwh, self.gas_t_per_mwh = gas_eur_per_kwh, gas_t_per_mwh
        self.fixed = fixed
        self.n: SizeHandle | None = None
        rated_fuel = spec.p_el_kw / spec.eta_el
        self.b_fuel_kw = spec.no_load_fuel_fraction * rated_fuel  # no-load fuel per unit on
        self.a_fuel = (rated_fuel - self.b_fuel_kw) / spec.p_el_kw  # marginal fuel per kWe

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        self.n = ctx.size(blk, "n_units", unit_size=s.p_el_kw, unit="kWe", max_units=self.max_units,
                          existing_units=self.existing_units, capex_eur_per_unit=s.capex_eur_per_kw_el * s.p_el_kw,
                          lifetime_y=s.lifetime_y, om_fraction_per_y=s.om_fraction_per_y,
                          fixed_units=fixed_value(self.fixed, "n_units"))

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s, n = self.spec, self.n
        assert n is not None
        n_max = self.existing_units if ctx.asis else max(self.max_units, self.existing_units)
        blk.u_on = pyo.Var(ctx.T, domain=pyo.NonNegativeIntegers, bounds=(0, n_max))
        blk.p_el_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, n_max * s.p_el_kw))
        blk.units_on_le_units = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.u_on[p, t] <= n.units)
        blk.p_min = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_el_kw[p, t] >= s.min_load * s.p_el_kw * b.u_on[p, t])
        blk.p_max = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_el_kw[p, t] <= s.p_el_kw * b.u_on[p, t])
        blk.fuel_kw = pyo.Expression(ctx.T, rule=lambda b, p, t: self.a_fuel * b.p_el_kw[p, t] + self.b_fuel_kw * b.u_on[p, t])
        # (1)-(2): the heat produced goes to the hub's CHP heat bus; ChpHeatSplit sends it on to
        # heating, DHW, chillers and district heating (one split per hub, not per model)
        label = f"CHP {self.model}"
        self.port(ctx, "electricity", label, lambda p, t: blk.p_el_kw[p, t])
        self.port(ctx, "chp_heat", label, lambda p, t: s.eta_th * blk.fuel_kw[p, t])

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        gas_costs(ctx, blk, blk.fuel_kw, self.gas_eur_per_kwh, self.gas_t_per_mwh)
        if self.spec.om_eur_per_kwh_el > 0:
            ctx.add_cost("om", sum(ctx.weight(p) * self.spec.om_eur_per_kwh_el * blk.p_el_kw[p, t] for p, t in ctx.T))

    def update(self, gas_eur_per_kwh: float | None = None) -> None:
        """Operation: gas price (€/kWh of fuel) for the horizon; value only."""
        assert self.block is not None, "build the model first"
        if gas_eur_per_kwh is not None:
            set_gas_price(self.block, gas_eur_per_kwh, self.name)

    def sizes(self) -> dict[str, float]:
        assert self.n is not None
        return {"n_units": self.n.value_units(), "kwe": self.n.value()}


class ChpHeatSplit(Technology):
    """Seed (1)–(2): CHP heat of a hub = heating + DHW + chiller feed + district heating (+ dump
    only if ``allow_heat_dump``)."""

    kind = "chp_heat_split"

    def __init__(self, hub: str, outlets: list[str], q_max_kw: float, allow_heat_dump: bool = False) -> None:
        super().__init__(f"{hub}_chp_heat", hub)
        self.outlets, self.q_max_kw, self.allow_heat_dump = list(outlets), q_max_kw, allow_heat_dump

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        blk.O = pyo.Set(initialize=self.outlets, ordered=True)
        blk.q_kw = pyo.Var(blk.O, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.q_max_kw))
        self.port(ctx, "chp_heat", "CHP heat split", lambda p, t: -sum(blk.q_kw[o, p, t] for o in blk.O))
        for o in self.outlets:
            self.port(ctx, o, "CHP", lambda p, t, o=o: blk.q_kw[o, p, t])
        if self.allow_heat_dump:
            blk.q_dump_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.q_max_kw))
            self.port(ctx, "chp_heat", "CHP heat dump", lambda p, t: -blk.q_dump_kw[p, t])
