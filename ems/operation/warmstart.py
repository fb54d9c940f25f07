"""Warm start for the receding horizon: the previous plan shifted by one step.

After a step's plan is read, every time-indexed variable takes the value it had one step later
(``x[..., t] ← x[..., t+1]``; the last step keeps its value). The next solve hands these values
to HiGHS as a starting solution (``SolverSession.solve(warm_start=True)``), so the MIP search
starts from a plan that is usually feasible or nearly so.
"""

from __future__ import annotations

import pyomo.environ as pyo


def shift_plan(model: pyo.ConcreteModel, steps: int = 1) -> int:
    """Shift the values of every variable indexed by (…, step) by ``steps``; returns how many
    variable values were moved."""
    moved = 0
    for var in model.component_objects(pyo.Var, active=True, descend_into=True):
        if not var.is_indexed():
            continue
        for idx in sorted(var.keys(), key=_sort_key):
            if not (isinstance(idx, tuple) and idx and isinstance(idx[-1], int)):
                continue
            nxt = idx[:-1] + (idx[-1] + steps,)
            if nxt in var:
                value = var[nxt].value
                if value is not None:
                    var[idx].set_value(value, skip_validation=True)
                    moved += 1
    return moved


def _sort_key(idx: object) -> tuple:
    return tuple(str(x) if not isinstance(x, int) else f"{x:012d}" for x in idx) if isinstance(idx, tuple) else (str(idx),)
