"""Warm start for the receding horizon: the previous plan shifted by the elapsed steps.

Before a step's solve, every time-indexed variable takes the value it had ``k`` steps later in
the last plan (``x[..., t] ← x[..., t+k]``; the last ``k`` steps keep their values), ``k`` being
the steps elapsed since that plan. The solve hands these values to HiGHS as a starting solution
(``SolverSession.solve(warm_start=True)``), so the MIP search starts from a plan that is usually
feasible or nearly so.
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo


class PlanShifter:
    """The time-indexed variables of a model grouped once by everything but their last index
    (the step), each group in step order, so a shift is a slice assignment per group."""

    def __init__(self, model: pyo.ConcreteModel) -> None:
        groups: dict[tuple[int, tuple], list[tuple[int, Any]]] = {}
        for var in model.component_objects(pyo.Var, active=True, descend_into=True):
            if not var.is_indexed():
                continue
            for idx, data in var.items():
                if isinstance(idx, tuple) and idx and isinstance(idx[-1], int):
                    groups.setdefault((id(var), idx[:-1]), []).append((idx[-1], data))
        self.groups: list[list[Any]] = []
        for members in groups.values():
            members.sort(key=lambda m: m[0])
            steps = [t for t, _ in members]
            if steps == list(range(steps[0], steps[0] + len(steps))):  # contiguous steps only
                self.groups.append([d for _, d in members])

    def shift(self, steps: int = 1) -> int:
        """Move every value ``steps`` steps earlier; returns how many values were moved."""
        if steps <= 0:
            return 0
        moved = 0
        for group in self.groups:
            values = [d.value for d in group[steps:]]
            for data, value in zip(group, values, strict=False):
                if value is not None:
                    data.set_value(value, skip_validation=True)
                    moved += 1
        return moved


def shift_plan(model: pyo.ConcreteModel, steps: int = 1) -> int:
    """Shift the values of every variable indexed by (…, step) by ``steps``; returns how many
    variable values were moved (one-off use; the controller keeps a :class:`PlanShifter`)."""
    return PlanShifter(model).shift(steps)
