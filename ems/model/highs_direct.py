"""A Pyomo model handed to HiGHS directly, without Pyomo's persistent interface (issue 17).

``pyomo.contrib.solver.solvers.highs.Highs.set_instance`` spends most of its time on bookkeeping
for later incremental updates (per-constraint variable registration, one ``addVars`` and
``changeColsIntegrality`` call per constraint, mutable-parameter helpers). Models that are built
once and then only re-bounded through highspy (the Benders day LPs, the verification days) need
none of it. :func:`load` builds **the same HiGHS LP, bit for bit**: the same columns in the same
order (the order in which the persistent interface registers variables: by first appearance in
the active constraints, then in the objective, fixed variables included), the same bounds,
integrality, rows, coefficients, costs and offset, computed by the same Pyomo functions. So every
solve gives the same answer as through the persistent interface (``tests/design`` checks that the
two LPs are equal).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.numeric_types import value
from pyomo.contrib.solver.common.util import collect_vars_and_named_exprs, get_objective
from pyomo.core.expr.numvalue import is_constant
from pyomo.repn import generate_standard_repn

from ems.errors import SolveError

INF = highspy.kHighsInf


@dataclass
class DirectModel:
    """The HiGHS object and the map between its columns/rows and the Pyomo model."""

    h: highspy.Highs
    variables: list[Any]  # column j -> VarData
    col_of: dict[int, int]  # id(VarData) -> column
    constraints: list[Any]  # row i -> ConstraintData

    def load_vars(self) -> None:
        """The last solution's column values into the model's variables that are not fixed
        (as Pyomo's solution loader does)."""
        x = self.h.getSolution().col_value
        for v, val in zip(self.variables, x, strict=True):
            if not v.fixed:
                v.set_value(val, skip_validation=True)


def _bounds(v: Any) -> tuple[float, float, Any]:
    """Column bounds and type exactly as ``Highs._process_domain_and_bounds``."""
    lb, ub, step = v.domain.get_interval()
    if lb is None:
        lb = -INF
    if ub is None:
        ub = INF
    if step == 0:
        vtype = highspy.HighsVarType.kContinuous
    elif step == 1:
        vtype = highspy.HighsVarType.kInteger
    else:
        raise SolveError(f"{v.name}: unrecognised domain step {step}")
    if v.fixed:
        return v.value, v.value, vtype
    if v._lb is not None:
        lb = max(value(v._lb), lb)
    if v._ub is not None:
        ub = min(value(v._ub), ub)
    return lb, ub, vtype


def _columns(cons: list[Any], obj: Any) -> tuple[list[Any], dict[int, int]]:
    """Variables in the persistent interface's order: by first appearance in the constraints,
    then in the objective (fixed ones included: they become fixed columns)."""
    variables: list[Any] = []
    col_of: dict[int, int] = {}
    exprs = [c.expr for c in cons] + ([obj.expr] if obj is not None else [])
    for expr in exprs:
        _named, vs, _fixed, external = collect_vars_and_named_exprs(expr)
        if external:
            raise SolveError("HiGHS: external functions are not supported")
        for v in vs:
            if id(v) not in col_of:
                col_of[id(v)] = len(variables)
                variables.append(v)
    return variables, col_of


def _rows(cons: list[Any], col_of: dict[int, int]) -> tuple[list, list, list, list, list]:
    """Row bounds and row-wise coefficients as ``Highs._add_constraints`` computes them."""
    row_lo, row_hi, starts, index, coefs = [], [], [], [], []
    for con in cons:
        repn = generate_standard_repn(con.body, quadratic=False, compute_values=False)
        if repn.nonlinear_expr is not None:
            raise SolveError(f"HiGHS: {con.name} is not linear")
        starts.append(len(coefs))
        for coef, v in zip(repn.linear_coefs, repn.linear_vars, strict=True):
            c = value(coef)
            if not is_constant(coef) and c == 0:
                continue
            index.append(col_of[id(v)])
            coefs.append(c)
        lb = con.lower - repn.constant if con.has_lb() else -INF
        ub = con.upper - repn.constant if con.has_ub() else INF
        row_lo.append(value(lb))
        row_hi.append(value(ub))
    return row_lo, row_hi, starts, index, coefs


def _objective(obj: Any, col_of: dict[int, int]) -> tuple[Any, np.ndarray, float]:
    costs = np.zeros(len(col_of), dtype=np.double)
    if obj is None:
        return highspy.ObjSense.kMinimize, costs, 0
    sense = highspy.ObjSense.kMaximize if obj.sense == pyo.maximize else highspy.ObjSense.kMinimize
    repn = generate_standard_repn(obj.expr, quadratic=True, compute_values=False)
    if repn.nonlinear_expr is not None or repn.quadratic_vars:
        raise SolveError("HiGHS direct: the objective is not linear")
    for coef, v in zip(repn.linear_coefs, repn.linear_vars, strict=True):
        costs[col_of[id(v)]] = value(coef)
    return sense, costs, value(repn.constant)


def load(model: pyo.ConcreteModel) -> DirectModel:
    """A new ``highspy.Highs`` holding ``model`` (linear constraints, linear objective), the same
    LP as ``Highs().set_instance(model)`` of Pyomo's persistent interface builds."""
    cons = list(model.component_data_objects(pyo.Constraint, descend_into=True, active=True))
    obj = get_objective(model)
    variables, col_of = _columns(cons, obj)
    lower, upper, vtypes = (
        zip(*(_bounds(v) for v in variables), strict=True) if variables else ((), (), ())
    )
    row_lo, row_hi, starts, index, coefs = _rows(cons, col_of)
    sense, costs, offset = _objective(obj, col_of)
    n = len(variables)
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)  # no banner: callers set their own log options
    h.addVars(n, np.array(lower, dtype=np.double), np.array(upper, dtype=np.double))
    h.changeColsIntegrality(n, np.arange(n), np.array(vtypes))
    h.addRows(
        len(row_lo),
        np.array(row_lo, dtype=np.double),
        np.array(row_hi, dtype=np.double),
        len(coefs),
        np.array(starts),
        np.array(index),
        np.array(coefs, dtype=np.double),
    )
    h.changeObjectiveSense(sense)
    h.changeColsCost(n, np.arange(n), costs)
    h.changeObjectiveOffset(offset)
    return DirectModel(h, variables, col_of, cons)


_TERMINATION = {
    "kOptimal": "convergenceCriteriaSatisfied",
    "kInfeasible": "provenInfeasible",
    "kUnboundedOrInfeasible": "infeasibleOrUnbounded",
    "kUnbounded": "unbounded",
    "kObjectiveBound": "objectiveLimit",
    "kObjectiveTarget": "objectiveLimit",
    "kTimeLimit": "maxTimeLimit",
    "kIterationLimit": "iterationLimit",
    "kSolutionLimit": "iterationLimit",
    "kLoadError": "error",
    "kModelError": "error",
    "kPresolveError": "error",
    "kSolveError": "error",
    "kPostsolveError": "error",
}


def solve(
    direct: DirectModel,
    label: str,
    size: Any,
    *,
    time_limit_s: float,
    options: dict[str, Any],
) -> Any:
    """Run HiGHS with the options :class:`ems.model.solve.SolverSession` would pass and return
    the same :class:`SolveRecord` (status and termination named as Pyomo names them); the
    solution is loaded into the model's free variables."""
    from ems.model.solve import SolveRecord, _process_threads, relative_gap

    h = direct.h
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", time_limit_s)
    for key, option in options.items():
        if key == "threads":  # one scheduler per process: another count makes run() fail
            option = _process_threads(int(option))
        h.setOptionValue(key, option)
    t0 = time.perf_counter()
    if h.run() == highspy.HighsStatus.kError:
        raise SolveError(f"{label}: HiGHS failed")
    elapsed = time.perf_counter() - t0
    status = h.getModelStatus()
    info = h.getInfo()
    termination = _TERMINATION.get(status.name, "unknown")
    has_solution = info.primal_solution_status == 2
    if status == highspy.HighsModelStatus.kOptimal:
        status_name = "optimal"
    else:
        status_name = "feasible" if has_solution else "noSolution"
    objective = info.objective_function_value if has_solution else None
    if info.mip_node_count == -1:
        bound = objective if has_solution and status_name == "optimal" else None
    else:
        bound = info.mip_dual_bound
    if bound is not None and abs(bound) >= 1e30:
        bound = None
    if termination == "convergenceCriteriaSatisfied" and bound is None:
        bound = objective
    if has_solution:
        direct.load_vars()
    nodes = int(info.mip_node_count)
    return SolveRecord(
        status=status_name,
        termination=termination,
        objective=objective,
        bound=bound,
        gap=relative_gap(objective, bound),
        time_s=elapsed,
        size=size,
        label=label,
        nodes=nodes if nodes >= 0 else None,
    )


def same_lp(a: highspy.Highs, b: highspy.Highs) -> list[str]:
    """The fields in which two HiGHS LPs differ (empty: the same LP, bit for bit)."""
    la, lb = a.getLp(), b.getLp()
    diff = []
    for f in (
        "num_col_",
        "num_row_",
        "col_cost_",
        "col_lower_",
        "col_upper_",
        "row_lower_",
        "row_upper_",
        "integrality_",
        "offset_",
        "sense_",
    ):
        x, y = getattr(la, f), getattr(lb, f)
        if isinstance(x, list | np.ndarray):
            if len(x) != len(y) or _bits(x) != _bits(y):
                diff.append(f)
        elif x != y:
            diff.append(f)
    ma, mb = la.a_matrix_, lb.a_matrix_
    if ma.format_ != mb.format_:
        diff.append("a_matrix_.format_")
    for f in ("start_", "index_", "value_"):
        if _bits(getattr(ma, f)) != _bits(getattr(mb, f)):
            diff.append(f"a_matrix_.{f}")
    return diff


def _bits(x: Any) -> bytes:
    a = np.asarray(x)
    if a.dtype == object:
        a = np.array([int(v) for v in a], dtype=np.int64)
    return a.tobytes()


def solve_model(
    model: pyo.ConcreteModel,
    label: str,
    *,
    mip_rel_gap: float,
    time_limit_s: float,
    threads: int,
    extra_options: dict[str, Any] | None = None,
) -> Any:
    """``SolverSession(model, ...).solve(label, require_solution=False)`` for a model solved once
    (no tee, no warm start): the same LP and options, so the same record and plan."""
    from ems.model.solve import ModelSize, _process_threads

    options = {"mip_rel_gap": mip_rel_gap, "threads": _process_threads(threads)}
    options.update(extra_options or {})
    return solve(
        load(model), label, ModelSize.of(model), time_limit_s=time_limit_s, options=options
    )
