"""Fixed demand of a hub for one carrier (electricity here; heat, DHW, cooling later)."""

from __future__ import annotations

from collections.abc import Sequence

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

    def update(self, load_kw: Sequence[float]) -> None:
        """Operation: set the load forecast over the horizon (values only, no rebuild)."""
        assert self.block is not None, "build the model first"
        _set_series(self.block.load_kw, load_kw, f"{self.name}.load_kw", lo=0.0)


def _set_series(
    par: pyo.Param,
    values: Sequence[float],
    what: str,
    lo: float | None = None,
    hi: float | None = None,
) -> None:
    """Write one value per horizon step into a (period, step)-indexed mutable Param."""
    keys = list(par.keys())
    vals = [float(v) for v in values]
    if len(vals) != len(keys):
        raise ValueError(f"{what}: {len(vals)} values for a horizon of {len(keys)} steps")
    for k, v in zip(keys, vals, strict=False):
        if v != v:  # NaN never reaches the solver
            raise ValueError(f"{what}: NaN at step {k[-1]}")
        if lo is not None:
            v = max(v, lo)
        if hi is not None:
            v = min(v, hi)
        par[k] = v
