"""Shared storage balance (battery now; thermal store, DHW tank later).

e[p,t] = e[p,t−1]·(1 − loss)^Δt + (η_ch·p_ch − p_dis/η_dis)·Δt, with e[p,−1] the last step of the
same period (cyclic typical day, design) or a measured initial state (operation).
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from ems.model.context import BuildContext


def add_storage_balance(
    ctx: BuildContext,
    blk: pyo.Block,
    *,
    e: Any,
    p_in: Any,
    p_out: Any,
    eta_in: float,
    eta_out: float,
    loss_per_h: float,
    e_initial: Any,
) -> None:
    """Add ``blk.energy_balance`` linking energy ``e`` to charge ``p_in`` and discharge ``p_out``."""
    dt = ctx.grid.dt_h
    keep = (1.0 - loss_per_h) ** dt
    last = ctx.grid.n_steps - 1

    def rule(b: pyo.Block, p: str, t: int) -> Any:
        if t > 0:
            before = e[p, t - 1]
        elif ctx.grid.cyclic:
            before = e[p, last]
        else:
            before = e_initial
        return e[p, t] == keep * before + (eta_in * p_in[p, t] - p_out[p, t] / eta_out) * dt

    blk.energy_balance = pyo.Constraint(ctx.T, rule=rule)
