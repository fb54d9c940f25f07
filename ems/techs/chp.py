"""Combined heat and power: gas engines and micro-turbines in identical units (seed §3.2.2).

Sizes: integer units n of one model. Operation per step: integer units on u ≤ n (PyPSA-style
committable in *units*, never status × capacity), P_min·u ≤ P_el ≤ P_max·u; part-load map linear
in (P_el, u) with a no-load term: fuel = a·P_el + b·u, heat = η_th,rated · fuel (so the rated heat
at full load and a rising heat share at part load). Heat split (1)–(2): heating + DHW + absorption
chillers + district heating; no dissipation unless ``allow_heat_dump`` (the seed's (2) is an
equality).
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from ems.config.schema import ChpSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._units import fixed_value, gas_costs
from ems.techs.base import Technology

OUTLET_LABEL = {"heat": "heating", "dhw": "DHW", "chiller_feed": "chiller feed", "dh_injection": "to DH"}


class Chp(Technology):
    kind = "chp"

    def __init__(self, name: str, hub: str, model: str, spec: ChpSpec, max_units: int, *, outlets: list[str],
                 gas_eur_per_kwh: float, gas_t_per_mwh: float = 0.205, existing_units: int = 0,
                 fixed: dict[str, Any] | None = None, allow_heat_dump: bool = False) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.max_units, self.existing_units = max_units, existing_units
        self.outlets = list(outlets)
        self.gas_eur_per_kwh, self.gas_t_per_mwh = gas_eur_per_kwh, gas_t_per_mwh
        self.fixed = fixed
        self.allow_heat_dump = allow_heat_dump
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
        n_max = max(self.max_units, self.existing_units)
        blk.u_on = pyo.Var(ctx.T, domain=pyo.NonNegativeIntegers, bounds=(0, n_max))
        blk.p_el_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, n_max * s.p_el_kw))
        blk.units_on_le_units = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.u_on[p, t] <= n.units)
        blk.p_min = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_el_kw[p, t] >= s.min_load * s.p_el_kw * b.u_on[p, t])
        blk.p_max = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_el_kw[p, t] <= s.p_el_kw * b.u_on[p, t])
        blk.fuel_kw = pyo.Expression(ctx.T, rule=lambda b, p, t: self.a_fuel * b.p_el_kw[p, t] + self.b_fuel_kw * b.u_on[p, t])
        q_max = n_max * s.eta_th * s.p_el_kw / s.eta_el
        blk.O = pyo.Set(initialize=self.outlets, ordered=True)
        blk.q_out_kw = pyo.Var(blk.O, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, q_max))
        if self.allow_heat_dump:
            blk.q_dump_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, q_max))
        dump = (lambda p, t: blk.q_dump_kw[p, t]) if self.allow_heat_dump else (lambda p, t: 0.0)
        # (1)-(2): all the heat produced goes to heating, DHW, chillers and district heating
        blk.heat_split = pyo.Constraint(ctx.T, rule=lambda b, p, t: sum(b.q_out_kw[o, p, t] for o in b.O) + dump(p, t)
                                        == s.eta_th * b.fuel_kw[p, t])
        label = f"CHP {self.model}"
        self.port(ctx, "electricity", label, lambda p, t: blk.p_el_kw[p, t])
        for o in self.outlets:
            self.port(ctx, o, label, lambda p, t, o=o: blk.q_out_kw[o, p, t])

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        gas_costs(ctx, blk, blk.fuel_kw, self.gas_eur_per_kwh, self.gas_t_per_mwh)
        if self.spec.om_eur_per_kwh_el > 0:
            ctx.add_cost("om", sum(ctx.weight(p) * self.spec.om_eur_per_kwh_el * blk.p_el_kw[p, t] for p, t in ctx.T))

    def sizes(self) -> dict[str, float]:
        assert self.n is not None
        return {"n_units": self.n.value_units(), "kwe": self.n.value()}
