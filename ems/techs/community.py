"""Community-level rules.

Virtual community (CER), seed eq. (22): the hourly shared energy is min(Σ_h export, Σ_h import)
over the hubs of the configuration; it earns the incentive. Modelled as ``shared ≤ Σ export``
and ``shared ≤ Σ import`` with the incentive as a revenue, so the optimum sits on the minimum.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Key, Technology
from ems.techs.grid import Grid


class VirtualCommunity(Technology):
    kind = "virtual_community"

    def __init__(self, grids: list[Grid], incentive_eur_per_mwh: float) -> None:
        super().__init__("community", "community")
        self.grids = grids
        self.incentive_eur_per_mwh = incentive_eur_per_mwh

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        bound = sum(g.contract_kw for g in self.grids)
        blk.shared_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, bound))
        blk.incentive_eur_per_kwh = pyo.Param(
            initialize=self.incentive_eur_per_mwh / 1000.0, mutable=True
        )
        blk.le_export = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: b.shared_kw[p, t] <= sum(g.export_kw(p, t) for g in self.grids),
        )
        blk.le_import = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: b.shared_kw[p, t] <= sum(g.import_kw(p, t) for g in self.grids),
        )

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        ctx.add_cost(
            "revenue_incentive",
            sum(ctx.weight(p) * blk.incentive_eur_per_kwh * blk.shared_kw[p, t] for p, t in ctx.T),
        )

    # ---- operation interface
    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {"community.shared_kw": self.values(self.block.shared_kw, keys)}

    def can_supply_electricity(self) -> bool:
        return False
