"""The one model builder.

``build_model`` takes technology instances (from :mod:`ems.model.assembly`), a time grid and the
data, runs every technology's build phases on its own block, then closes the balances, the
shared limits (roof area) and the objective. Structure depends only on configuration; data
enters through mutable Params, so operation mode updates values in place and re-solves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyomo.environ as pyo

from ems.model.context import COST_CATEGORIES, BuildContext, Mode
from ems.model.timegrid import TimeGrid
from ems.techs.base import Technology

ObjectiveKind = Literal["economic", "environmental", "mixed", "weighted"]


@dataclass
class ObjectiveSpec:
    kind: ObjectiveKind = "economic"
    co2_price_eur_per_t: float = 0.0
    alpha: float = 0.5
    cost_asis_eur: float | None = None  # weighted objective (28): normalisers from the AS-IS case
    co2_asis_t: float | None = None


@dataclass
class BuiltModel:
    model: pyo.ConcreteModel
    ctx: BuildContext
    techs: list[Technology]
    objective: ObjectiveSpec
    slack_penalty_eur_per_kwh: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def tech(self, name: str) -> Technology:
        for t in self.techs:
            if t.name == name:
                return t
        raise KeyError(name)


def build_model(
    techs: list[Technology],
    grid: TimeGrid,
    data: pd.DataFrame,
    *,
    mode: Mode = "design",
    asis: bool = False,
    interest_rate: float = 0.05,
    limits: dict[tuple[str, str], float] | None = None,
    objective: ObjectiveSpec | None = None,
    slack_penalty_eur_per_kwh: float | None = None,
) -> BuiltModel:
    """Build the MILP. ``slack_penalty_eur_per_kwh`` adds unmet/dump slack to every balance
    (operation mode: a plan always exists); ``None`` keeps balances hard (design mode)."""
    m = pyo.ConcreteModel(name="cer-ems")
    m.P = pyo.Set(initialize=list(grid.periods), ordered=True)
    m.S = pyo.Set(initialize=list(grid.steps), ordered=True)
    m.T = pyo.Set(initialize=grid.index(), dimen=2, ordered=True)
    ctx = BuildContext(
        model=m,
        mode=mode,
        grid=grid,
        data=data,
        interest_rate=interest_rate,
        asis=asis,
        limits=dict(limits or {}),
    )
    for tech in techs:
        tech.build(ctx)

    # balances per hub and carrier: seed (13) electric, (15)-(19) thermal
    keys = sorted(ctx.balances)
    m.B = pyo.Set(initialize=keys, dimen=2, ordered=True)
    if slack_penalty_eur_per_kwh is not None:
        m.unmet_kw = pyo.Var(m.B, m.T, domain=pyo.NonNegativeReals)
        m.dump_kw = pyo.Var(m.B, m.T, domain=pyo.NonNegativeReals)
        ctx.add_cost(
            "penalty",
            sum(
                ctx.weight(p)
                * slack_penalty_eur_per_kwh
                * (m.unmet_kw[h, c, p, t] + m.dump_kw[h, c, p, t])
                for h, c in keys
                for p, t in grid.index()
            ),
        )

    def balance_rule(mdl: pyo.ConcreteModel, h: str, c: str, p: str, t: int) -> Any:
        expr = sum(term(p, t) for term in ctx.balances[(h, c)])
        if slack_penalty_eur_per_kwh is not None:
            expr = expr + mdl.unmet_kw[h, c, p, t] - mdl.dump_kw[h, c, p, t]
        return expr == 0

    m.balance = pyo.Constraint(m.B, m.T, rule=balance_rule)
    for tech in techs:  # what must see the balances' slack (operation: the CHP cuts)
        tech.add_late(ctx)

    # shared limited resources (roof area per hub, ...)
    lim_keys = [k for k in ctx.shared_uses if k in ctx.limits]
    m.L = pyo.Set(initialize=lim_keys, dimen=2, ordered=True)
    m.shared_limit = pyo.Constraint(
        m.L, rule=lambda mdl, a, b: sum(ctx.shared_uses[(a, b)]) <= ctx.limits[(a, b)]
    )

    # cost and CO2 expressions (annual in design, over the horizon in operation)
    for cat in COST_CATEGORIES:
        m.add_component(
            f"cost_{cat}",
            pyo.Expression(expr=sum(ctx.costs.get(cat, [])) if ctx.costs.get(cat) else 0.0),
        )
    m.cost_total = pyo.Expression(
        expr=m.cost_capex
        + m.cost_om
        + m.cost_energy
        - m.cost_revenue_sale
        - m.cost_revenue_incentive
        - m.cost_revenue_compute
    )
    m.co2_total_t = pyo.Expression(expr=sum(ctx.co2_t) if ctx.co2_t else 0.0)

    obj = objective or ObjectiveSpec()
    m.obj = pyo.Objective(expr=_objective_expr(m, obj), sense=pyo.minimize)
    return BuiltModel(m, ctx, techs, obj, slack_penalty_eur_per_kwh)


def _objective_expr(m: pyo.ConcreteModel, obj: ObjectiveSpec) -> Any:
    cost = m.cost_total + m.cost_penalty
    if obj.kind == "economic":  # (20)
        return cost
    if obj.kind == "environmental":  # (23); a tiny cost term breaks ties between equal-CO2 plans
        return m.co2_total_t + 1e-6 * cost
    if obj.kind == "mixed":  # (27)
        return cost + obj.co2_price_eur_per_t * m.co2_total_t
    if (
        obj.cost_asis_eur is None
        or obj.co2_asis_t is None
        or obj.cost_asis_eur <= 0
        or obj.co2_asis_t <= 0
    ):
        raise ValueError(
            "weighted objective needs positive AS-IS cost and CO2 (solve the AS-IS case first)"
        )
    # (28)
    # (28); at α = 0 a tiny cost term breaks ties between equal-CO2 plans, as for (23)
    alpha = max(obj.alpha, 1e-4)
    return alpha * cost / obj.cost_asis_eur + (1 - obj.alpha) * m.co2_total_t / obj.co2_asis_t


def size_var_names(built: BuiltModel) -> set[str]:
    """Names of the size variables (design decisions) of a built model."""
    return {h.units.name for h in built.ctx.sizes.values() if h.is_variable}


def relax_operational_integers(
    built: BuiltModel, keep: tuple[str, ...] = (), from_step: int = 0
) -> int:
    """Relax every integer/binary variable that is not a size (units on, HP modes, exchange and
    connection-side binaries per step) to a continuous variable within its bounds.

    With ``from_step`` > 0 only the per-step variables of steps ``t >= from_step`` are relaxed
    (operation mode's relaxed tail: integer decisions in the near horizon only); variables
    without a step index are then kept integer.

    The relaxed model's optimum (and any bound of it) is a valid lower bound of the full problem;
    with sizes fixed the per-step integers are restored by the verification pass (SPEC §3).
    Returns how many variables were relaxed.
    """
    sizes = size_var_names(built)
    n = 0
    for v in built.model.component_data_objects(pyo.Var, descend_into=True):
        if v.fixed or not (v.is_integer() or v.is_binary()) or v.name in sizes:
            continue
        parent = v.parent_component()
        if parent.name in sizes or parent.local_name in keep:
            continue
        if from_step > 0:
            idx = v.index()  # (…, period, step) for per-step variables
            per_step = isinstance(idx, tuple) and len(idx) >= 2 and idx[-2] in built.model.P
            if not per_step or not isinstance(idx[-1], int) or idx[-1] < from_step:
                continue
        lb, ub = v.bounds
        v.domain = pyo.Reals
        v.setlb(0.0 if lb is None else lb)
        v.setub(ub)
        n += 1
    return n
