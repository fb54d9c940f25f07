"""Fixed demand of a hub for one carrier (electricity here; heat, DHW, cooling later)."""

from __future__ import annotations

import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Technology


class Demand(Technology):
    kind = "demand"

    def __init__(self, name: str, hub: str, carrier: str, column: str) -> None:
        super().__init__(name, hub)
        self.carrier = carrier
        self.column = column

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        load = ctx.param(blk, "load_kw", ctx.series(self.column))
        self.port(ctx, self.carrier, "load", lambda p, t: -load[p, t])
