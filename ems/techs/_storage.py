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


def add_rate_limits(
    ctx: BuildContext, blk: pyo.Block, p_in: Any, p_out: Any, c_rate_per_h: float, cap: Any
) -> None:
    """``blk.charge_limit`` and ``blk.discharge_limit``: charge and discharge power each
    ≤ C-rate × capacity ``cap`` (an expression of the size)."""
    blk.charge_limit = pyo.Constraint(ctx.T, rule=lambda b, p, t: p_in[p, t] <= c_rate_per_h * cap)
    blk.discharge_limit = pyo.Constraint(
        ctx.T, rule=lambda b, p, t: p_out[p, t] <= c_rate_per_h * cap
    )


def set_soc_initial(blk: pyo.Block, soc_initial: float, lo: float, hi: float, what: str) -> None:
    """Operation: the measured state of charge (fraction of capacity) at the start of the
    horizon into ``blk.soc_initial``, clamped to [lo, hi] (a reading outside must not make the
    plan infeasible); NaN is an error naming ``what``."""
    if soc_initial != soc_initial:
        raise ValueError(f"{what}.soc_initial: NaN")
    blk.soc_initial = min(max(float(soc_initial), lo), hi)
