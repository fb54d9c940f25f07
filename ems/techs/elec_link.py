"""Physical electric exchange between the hubs of a physical community (seed §3.2.6, (3)–(7), (14)).

``LinkStation`` (one per hub): power taken from (P_from) and given to (P_to) the other hubs over
the private lossless network, (3)–(4) with binaries x_take, x_give per step:
(5) x_take + x_give ≤ 1 — a hub does not give and take at once;
(6) grid import ≤ C·(1 − x_give) — it does not pass grid energy to the other hubs;
(7) grid export ≤ C·(1 − x_take) — it does not pass the other hubs' energy to the grid.
Big-M values from data: C = contract power; P_max per hub from its possible local generation
(giving) and its possible consumption (taking). ``LinkNetwork``: Σ given = Σ taken (14).
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Technology
from ems.techs.grid import Grid

TAKE_LABEL = "from other hubs"
GIVE_LABEL = "to other hubs"


class LinkStation(Technology):
    kind = "link_station"

    def __init__(self, hub: str, grid: Grid, *, give_max_kw: float, take_max_kw: float) -> None:
        super().__init__(f"{hub}_link", hub)
        self.grid = grid
        self.give_max_kw, self.take_max_kw = give_max_kw, take_max_kw

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        G, Tk, C = self.give_max_kw, self.take_max_kw, self.grid.contract_kw
        blk.p_from_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, Tk))
        blk.p_to_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, G))
        blk.x_take = pyo.Var(ctx.T, domain=pyo.Binary)
        blk.x_give = pyo.Var(ctx.T, domain=pyo.Binary)
        blk.take_max = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_from_kw[p, t] <= Tk * b.x_take[p, t])  # (3)
        blk.give_max = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_to_kw[p, t] <= G * b.x_give[p, t])  # (4)
        blk.give_or_take = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.x_take[p, t] + b.x_give[p, t] <= 1)  # (5)
        g = self.grid
        blk.no_grid_pass = pyo.Constraint(ctx.T, rule=lambda b, p, t: g.import_kw(p, t) <= C * (1 - b.x_give[p, t]))  # (6)
        blk.no_pass_to_grid = pyo.Constraint(ctx.T, rule=lambda b, p, t: g.export_kw(p, t) <= C * (1 - b.x_take[p, t]))  # (7)
        self.port(ctx, "electricity", TAKE_LABEL, lambda p, t: blk.p_from_kw[p, t])
        self.port(ctx, "electricity", GIVE_LABEL, lambda p, t: -blk.p_to_kw[p, t])

    def from_kw(self, p: str, t: int) -> Any:
        assert self.block is not None
        return self.block.p_from_kw[p, t]

    def to_kw(self, p: str, t: int) -> Any:
        assert self.block is not None
        return self.block.p_to_kw[p, t]


class LinkNetwork(Technology):
    """Lossless private network (14): Σ_h given = Σ_h taken, every step."""

    kind = "link_network"

    def __init__(self, stations: list[LinkStation]) -> None:
        super().__init__("link_network", "community")
        self.stations = stations

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        blk.balance = pyo.Constraint(ctx.T, rule=lambda b, p, t: sum(s.to_kw(p, t) for s in self.stations)
                                     == sum(s.from_kw(p, t) for s in self.stations))
