"""Absorption chiller in identical units, fed by CHP heat or district heat (seed §3.2.3.2, (18)).

cooling = COP_th × heat input ≤ units × rated cooling; electric auxiliaries ∝ cooling. The heat
input is drawn from the hub's ``chiller_feed`` balance (18), which CHP and DH supply.
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from ems.config.schema import AbsorptionChillerSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._units import fixed_value
from ems.techs.base import Technology


class AbsorptionChiller(Technology):
    kind = "absorption_chiller"

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: AbsorptionChillerSpec,
        max_units: int,
        *,
        existing_units: int = 0,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.max_units, self.existing_units = max_units, existing_units
        self.fixed = fixed
        self.n: SizeHandle | None = None

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        self.n = ctx.size(
            blk,
            "n_units",
            unit_size=s.cool_kw,
            unit="kWc",
            max_units=self.max_units,
            existing_units=self.existing_units,
            capex_eur_per_unit=s.capex_eur_per_unit,
            lifetime_y=s.lifetime_y,
            om_fraction_per_y=s.om_fraction_per_y,
            fixed_units=fixed_value(self.fixed, "n_units"),
        )

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s, n = self.spec, self.n
        assert n is not None
        n_max = max(self.max_units, self.existing_units)
        blk.q_cool_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, n_max * s.cool_kw))
        blk.capacity = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.q_cool_kw[p, t] <= n.expr)
        label = f"absorption chiller {self.model}"
        self.port(ctx, "cooling", label, lambda p, t: blk.q_cool_kw[p, t])
        self.port(ctx, "chiller_feed", label, lambda p, t: -blk.q_cool_kw[p, t] / s.cop_th)
        if s.aux_el_fraction > 0:
            self.port(
                ctx, "electricity", label, lambda p, t: -s.aux_el_fraction * blk.q_cool_kw[p, t]
            )

    def sizes(self) -> dict[str, float]:
        assert self.n is not None
        return {"n_units": self.n.value_units(), "kwc": self.n.value()}
