"""Benders decomposition of the relaxed sizing pass over typical days (issue 17).

With the sizes fixed, the relaxed sizing problem (every per-step integer continuous) splits into
one LP per typical day (storage is cyclic within a day). The sizes (≈ 50 integers) are the only
link between days, so the sizing pass is solved as

    min  c·s + Σ_d θ_d + K      s.t.  size-only rows of the model,  s integer,
         θ_d ≥ θ_d(s̄) + g_d(s̄)·(s − s̄)     for every evaluated s̄ (optimality cuts),

where θ_d(s̄) is the operating part of day d's LP at sizes s̄ and g_d its subgradient: the
reduced costs of the size columns (held at s̄ by their bounds) minus their objective
coefficients. The LP's value function is convex in s (sizes enter only right-hand sides and
bounds), so every cut is a valid under-estimator and the master's dual bound is a valid lower
bound of the relaxed sizing problem, hence of the full problem.

Two phases: (1) Kelley's cutting planes on the master's LP relaxation with in-out stabilisation
(the separation point is the midpoint between the master's answer and a core point); (2) the
integer master, re-solved after each round of cuts at its integer answer, until the gap between
the best evaluated integer sizes (upper bound) and the master's dual bound (lower bound) is
within the tolerance. Everything is deterministic: fixed iteration budgets (a work limit, not a
clock), HiGHS with a fixed thread count and seed; the wall-clock limit is only a safety net and
the result says when it was hit.

Strengthened cuts (issue 17): the LP cuts bound the *relaxed* days, whose units on are
continuous, so the master can never rise above the relaxed sizing optimum. For a day d and any
g (here the LP subgradient at s̄), every integer plan x of day d at any sizes s satisfies

    op_d(x) − g·s ≥ L_d := min { op_d(x') − g·s' : (s', x') a plan of day d with its units on
                                 and its sizes integer, the other per-step integers relaxed },

so θ_d ≥ L_d + g·s is valid for the integer day value at every size vector (the cut of Zou,
Ahmed & Sun's SDDiP, "strengthened Benders cut"); any dual bound of that day MILP can stand for
L_d. It is parallel to the LP cut at s̄ and higher by what integrality costs the day there.

Per engine configuration: with the sizes that carry per-step commitment (the CHP unit counts,
``SizeHandle.commitment``) that are non-zero at s̄ held at their values κ there, L_d(κ) ≥ L_d is
a valid bound for the sizes with those engines only (more may be added), and much tighter
(the minimisation can no longer trade the engines of s̄ for others): in the chapter-6 mixed
case 1,535 of a day's 1,747 € LP→MILP gap instead of a few hundred. The master applies such a
lift only where the held sizes take the values κ (:meth:`Master.add_cut`, one-hot columns);
elsewhere the LP cut stands.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from ems.errors import SolveError
from ems.model import highs_direct
from ems.model.builder import BuiltModel
from ems.model.solve import _process_threads

INF = highspy.kHighsInf


@dataclass
class BendersOptions:
    gap: float = 0.001  # stop when (best integer − master bound) / best integer ≤ gap
    lp_gap: float = 0.0005  # phase 1 stops at this gap of the master's LP relaxation …
    max_lp_rounds: int = 60  # … or after this many rounds (work limit)
    max_int_rounds: int = 40  # phase 2 work limit: integer master solves
    master_gap: float = 1e-5  # relative gap of each integer master solve
    master_max_nodes: int = 20_000  # deterministic work limit of one master solve
    time_limit_s: float = 1800.0  # safety net only: reported when hit
    threads: int = 1
    seed: int = 0


@dataclass
class BendersResult:
    sizes: dict[str, float]  # size variable name -> value (best integer sizes)
    upper_eur: float  # relaxed sizing objective at those sizes
    lower_eur: float  # valid lower bound (master's dual bound)
    lp_bound_eur: float  # bound of phase 1 (master LP relaxation)
    stop: str  # "gap", "work limit", "time limit (safety net)"
    rounds_lp: int
    rounds_int: int
    cuts: int
    time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    run: BendersRun | None = field(default=None, repr=False)  # to continue (strengthened cuts)

    @property
    def gap(self) -> float:
        return (self.upper_eur - self.lower_eur) / max(abs(self.upper_eur), 1e-9)


@dataclass
class StrengthenOptions:
    """One strengthened-cut day MILP: which per-step integers stay integer (the rest is relaxed,
    which keeps L_d a valid bound), its gap and node limit (deterministic work limit)."""

    keep: tuple[str, ...] = ("u_on",)
    gap: float = 1e-4
    max_nodes: int = 2000
    time_limit_s: float = 600.0  # safety net only
    seed: int = 0


def strengthened_bound(
    day: BuiltModel,
    size_names: list[str],
    g: np.ndarray,
    opts: StrengthenOptions,
    held: dict[str, float] | None = None,
) -> dict[str, Any]:
    """L_d of a strengthened cut θ_d ≥ L_d + g·s: the dual bound of min op_d − g·s over the
    day's plans with the sizes free within their bounds and integer, the per-step integers named
    in ``opts.keep`` integer and every other one relaxed. ``day`` is an unrelaxed day model (it
    is relaxed here). Returns the bound, the best plan's value, the B&B nodes, whether the safety
    net stopped it, and the best plan's sizes (where this day's integer plans are cheapest at
    the prices −g: a candidate where the cut is tight).

    ``held``: sizes held at these values (a configuration, see :meth:`Master.add_cut`); the
    bound is then valid for the sizes with those values only."""
    from ems.model.builder import relax_operational_integers

    relax_operational_integers(day, keep=opts.keep)
    if held:
        by_name = {v.name: v for v in day.model.component_data_objects(pyo.Var)}
        for name, value in held.items():
            by_name[name].setlb(value)
            by_name[name].setub(value)
    direct = highs_direct.load(day.model)
    h: highspy.Highs = direct.h
    for name, value in (
        ("output_flag", False),
        ("threads", _process_threads(1)),  # one scheduler per process: its first count
        ("random_seed", opts.seed),
        ("mip_rel_gap", opts.gap),
        ("mip_max_nodes", opts.max_nodes),
        ("time_limit", opts.time_limit_s),
    ):
        h.setOptionValue(name, value)
    col_of = direct.col_of
    by_name = {v.name: v for v in day.model.component_data_objects(pyo.Var, descend_into=True)}
    cols = np.array([col_of[id(by_name[n])] for n in size_names], dtype=np.int32)
    # the sizes are priced by −g instead of their capex; the objective's constant is not θ's
    h.changeColsCost(len(cols), cols, -np.asarray(g, dtype=np.float64))
    offset = h.getLp().offset_
    if h.run() == highspy.HighsStatus.kError:
        raise SolveError("strengthened cut: HiGHS returned an error")
    info = h.getInfo()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        raise SolveError("strengthened cut: the day has no plan at any sizes")
    x = np.array(h.getSolution().col_value, dtype=np.float64)
    primal = float(info.objective_function_value)
    dual = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else -INF
    if status == highspy.HighsModelStatus.kOptimal:
        # optimal = within the gap tolerances of the best plan (HiGHS may leave mip_dual_bound
        # unset when presolve solves the MILP): that is a valid bound too
        dual = max(dual, primal - max(opts.gap * abs(primal), 1e-6) - 1e-9 * abs(primal))
    return {
        "bound": dual - offset,
        "primal": primal - offset,
        "nodes": float(info.mip_node_count),
        "time_limit": float(status == highspy.HighsModelStatus.kTimeLimit),
        "sizes": [float(round(v)) if abs(v - round(v)) < 1e-6 else float(v) for v in x[cols]],
    }


def _highs(threads: int, seed: int) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", _process_threads(threads))
    h.setOptionValue("random_seed", seed)
    return h


def linear_objective(m: pyo.ConcreteModel) -> tuple[dict[int, float], float]:
    """The objective as {id(var): coefficient} and a constant (the objective is linear)."""
    repn = generate_standard_repn(m.obj.expr, compute_values=True, quadratic=False)
    if repn.nonlinear_expr is not None:
        raise SolveError("Benders sizing: the objective is not linear")
    coef: dict[int, float] = {}
    for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        coef[id(v)] = coef.get(id(v), 0.0) + float(c)
    return coef, float(repn.constant)


class DayLP:
    """One typical day's relaxed LP in HiGHS; the size columns are held by their bounds."""

    def __init__(
        self, day: BuiltModel, size_names: list[str], *, threads: int = 1, seed: int = 0
    ) -> None:
        self.built = day
        m = day.model
        for v in m.component_data_objects(pyo.Var, descend_into=True):
            if v.is_integer() or v.is_binary():
                if v.name not in size_names:
                    raise SolveError(f"Benders day LP: {v.name} is still integer")
        direct = highs_direct.load(m)  # the LP Pyomo's persistent interface builds, faster
        self.h: highspy.Highs = direct.h
        self.h.setOptionValue("output_flag", False)
        self.h.setOptionValue("threads", _process_threads(threads))
        self.h.setOptionValue("random_seed", seed)
        col_of = direct.col_of
        by_name = {
            v.name: v for v in m.component_data_objects(pyo.Var, descend_into=True) if not v.fixed
        }
        self.size_cols = np.array([col_of[id(by_name[n])] for n in size_names], dtype=np.int32)
        # integrality of the sizes is irrelevant here (bounds hold them): make the LP an LP
        n_col = self.h.getNumCol()
        self.h.changeColsIntegrality(
            n_col, np.arange(n_col, dtype=np.int32), np.zeros(n_col, dtype=np.uint8)
        )
        self.cost = np.array(self.h.getLp().col_cost_, dtype=np.float64)
        self.is_size = np.zeros(n_col, dtype=bool)
        self.is_size[self.size_cols] = True
        self._vars = [None] * n_col
        for v in by_name.values():
            c = col_of.get(id(v))
            if c is not None:
                self._vars[c] = v
        self.x: np.ndarray | None = None

    def evaluate(self, s: np.ndarray) -> tuple[float, np.ndarray]:
        """Operating part θ(s) and its subgradient with respect to the sizes."""
        k = len(self.size_cols)
        self.h.changeColsBounds(k, self.size_cols, s, s)
        self.h.run()
        status = self.h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise SolveError(
                f"Benders day LP: {self.h.modelStatusToString(status)} at trial sizes "
                "(a relaxed day should be feasible for any sizes within their bounds)"
            )
        sol = self.h.getSolution()
        x = np.array(sol.col_value, dtype=np.float64)
        rc = np.array(sol.col_dual, dtype=np.float64)
        self.x = x
        theta = float(self.cost[~self.is_size] @ x[~self.is_size])
        g = rc[self.size_cols] - self.cost[self.size_cols]
        return theta, g

    def load(self) -> None:
        """Write the last LP solution into the day model's variables."""
        if self.x is None:
            return
        for v, val in zip(self._vars, self.x, strict=True):
            if v is not None and not v.fixed:
                v.set_value(float(val), skip_validation=True)


@dataclass
class Master:
    """Sizes + one cost estimate per day; optimality cuts are added as rows."""

    h: highspy.Highs
    n_size: int
    n_day: int
    constant: float
    integer: np.ndarray
    cuts: int = 0
    config: list[int] = field(default_factory=list)  # sizes whose values condition lifted cuts
    one_hot: dict[tuple[int, int], int] = field(default_factory=dict)  # (size, value) -> column

    def add_cut(
        self,
        d: int,
        theta: float,
        g: np.ndarray,
        s_bar: np.ndarray,
        lift: float = 0.0,
        held: list[int] | None = None,
    ) -> None:
        """θ_d ≥ θ(s̄) + g·(s − s̄) (an optimality cut), lifted by ``lift`` where the sizes
        ``held`` (indices among the configuration sizes) take their values at s̄ — a
        strengthened cut whose day MILP held those sizes, valid for those values only:

            θ_d ≥ θ(s̄) + g·(s − s̄) + lift·(1 − #{i in held : s_i ≠ s̄_i}).

        With one or more held sizes elsewhere the lift term is ≤ 0 and the row is implied by
        the plain cut (valid everywhere); "s_i ≠ s̄_i" is 1 − y[i, s̄_i] with the one-hot columns
        y[i, v] (s_i = Σ_v v·y[i, v], Σ_v y[i, v] = 1). With nothing held the lift holds
        everywhere (the strengthened cut of Zou, Ahmed & Sun)."""
        nz = np.flatnonzero(np.abs(g) > 1e-9)
        idx = np.concatenate([nz, [self.n_size + d]]).astype(np.int32)
        val = np.concatenate([-g[nz], [1.0]])
        rhs = float(theta - g @ s_bar)
        if lift > 0:
            if held:
                self._one_hot_columns()
                y = [self.one_hot[(i, int(round(s_bar[i])))] for i in held]
                idx = np.concatenate([idx, y]).astype(np.int32)
                val = np.concatenate([val, np.full(len(y), -lift)])
                rhs += lift * (1 - len(y))
            else:
                rhs += lift
        self.h.addRow(rhs, INF, len(idx), idx, val)
        self.cuts += 1

    def _one_hot_columns(self) -> None:
        """y[i, v] for every configuration size i and value v (added once, when the first lifted
        cut needs them; the master's optimum over the sizes does not change)."""
        if self.one_hot:
            return
        lp = self.h.getLp()
        for i in self.config:
            lo, hi = int(round(lp.col_lower_[i])), int(round(lp.col_upper_[i]))
            k = hi - lo + 1
            base = self.h.getNumCol()
            cols = np.arange(base, base + k, dtype=np.int32)
            self.h.addVars(k, np.zeros(k), np.ones(k))
            self.h.changeColsIntegrality(k, cols, np.ones(k, dtype=np.uint8))
            self.h.addRow(1.0, 1.0, k, cols, np.ones(k))  # one value
            values = np.arange(lo, hi + 1, dtype=np.float64)
            self.h.addRow(  # s_i = Σ_v v·y[i, v]
                0.0,
                0.0,
                k + 1,
                np.concatenate([[i], cols]).astype(np.int32),
                np.concatenate([[1.0], -values]),
            )
            for v, c in zip(range(lo, hi + 1), cols, strict=True):
                self.one_hot[(i, v)] = int(c)

    def solve(self, relax: bool, *, gap: float, max_nodes: int) -> tuple[np.ndarray, float, float]:
        """Returns (sizes, objective, dual bound), the constant included."""
        self.h.setOptionValue("solve_relaxation", relax)
        self.h.setOptionValue("mip_rel_gap", gap)
        self.h.setOptionValue("mip_max_nodes", max_nodes)
        self.h.run()
        st = self.h.getModelStatus()
        if st not in (
            highspy.HighsModelStatus.kOptimal,
            highspy.HighsModelStatus.kSolutionLimit,
            highspy.HighsModelStatus.kIterationLimit,
        ):
            raise SolveError(f"Benders master: {self.h.modelStatusToString(st)}")
        x = np.array(self.h.getSolution().col_value, dtype=np.float64)
        info = self.h.getInfo()
        obj = info.objective_function_value + self.constant
        if relax:
            bound = obj
        else:
            bound = info.mip_dual_bound + self.constant
        s = x[: self.n_size]
        if not relax:
            s = np.where(self.integer, np.round(s), s)
        return s, obj, bound


def build_master(
    full: BuiltModel, size_names: list[str], n_day: int, *, threads: int, seed: int
) -> tuple[Master, np.ndarray, np.ndarray]:
    """The master from the full model: size columns with their bounds and integrality, the
    size-only rows, the sizes' objective coefficients; θ columns free (cuts bound them)."""
    m = full.model
    size_vars = {n: None for n in size_names}
    for v in m.component_data_objects(pyo.Var, descend_into=True):
        if v.name in size_vars:
            size_vars[v.name] = v
    col = {id(v): i for i, v in enumerate(size_vars.values())}
    coef, constant = linear_objective(m)
    c_size = np.array([coef.get(id(v), 0.0) for v in size_vars.values()])
    lb = np.array([v.lb if v.lb is not None else 0.0 for v in size_vars.values()])
    ub = np.array([v.ub if v.ub is not None else INF for v in size_vars.values()])
    integer = np.array([v.is_integer() or v.is_binary() for v in size_vars.values()])
    h = _highs(threads, seed)
    # no RINS/RENS sub-MIPs: the master's incumbent comes from its cuts, and its time goes into
    # proving the 1e-5 gap (a third of the master's CPU less; bench/design_physical.md)
    h.setOptionValue("mip_heuristic_run_rins", False)
    h.setOptionValue("mip_heuristic_run_rens", False)
    n = len(size_names)
    cost = np.concatenate([c_size, np.ones(n_day)])
    lower = np.concatenate([lb, np.full(n_day, -INF)])
    upper = np.concatenate([ub, np.full(n_day, INF)])
    h.addVars(n + n_day, lower, upper)
    h.changeColsCost(n + n_day, np.arange(n + n_day, dtype=np.int32), cost)
    h.changeColsIntegrality(
        n, np.arange(n, dtype=np.int32), np.where(integer, 1, 0).astype(np.uint8)
    )
    size_ids = set(col)
    for c in m.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        repn = generate_standard_repn(c.body, compute_values=True, quadratic=False)
        if not repn.linear_vars or any(id(v) not in size_ids for v in repn.linear_vars):
            continue
        if repn.nonlinear_expr is not None:
            continue
        idx = np.array([col[id(v)] for v in repn.linear_vars], dtype=np.int32)
        val = np.array(repn.linear_coefs, dtype=np.float64)
        lo = -INF if c.lower is None else float(pyo.value(c.lower)) - repn.constant
        hi = INF if c.upper is None else float(pyo.value(c.upper)) - repn.constant
        h.addRow(lo, hi, len(idx), idx, val)
    return Master(h, n, n_day, constant, integer), lb, ub


class BendersRun:
    """State of one Benders run: the master, the day LPs, the bounds and the history."""

    def __init__(
        self, full: BuiltModel, days: list[BuiltModel], opts: BendersOptions, log: Callable
    ) -> None:
        self.t0 = time.perf_counter()
        self.opts, self.log = opts, log
        self.size_names = sorted(
            h.units.name for h in full.ctx.sizes.values() if h.is_variable and not h.units.fixed
        )
        self.master, self.lb, self.ub = build_master(
            full, self.size_names, len(days), threads=opts.threads, seed=opts.seed
        )
        commitment = {h.units.name for h in full.ctx.sizes.values() if h.commitment}
        self.master.config = [i for i, n in enumerate(self.size_names) if n in commitment]
        self.lps = [DayLP(d, self.size_names, threads=opts.threads, seed=opts.seed) for d in days]
        self.c_size = np.array(self.master.h.getLp().col_cost_[: len(self.size_names)])
        # the day models' objective must split as the full one: same size coefficients
        for d in self.lps:
            if not np.allclose(d.cost[d.size_cols], self.c_size, rtol=1e-9, atol=1e-9):
                raise SolveError("Benders: a day model prices the sizes unlike the full model")
        self.history: list[dict[str, float]] = []
        self.stop = ""
        self.relaxed: dict[tuple[float, ...], float] = {}  # evaluated sizes -> relaxed value
        self.strengthened = 0

    def evaluate(self, s: np.ndarray) -> float:
        """The relaxed sizing objective at sizes ``s``; adds one cut per day."""
        total = self.master.constant + float(self.c_size @ s)
        for i, d in enumerate(self.lps):
            theta, g = d.evaluate(s)
            self.master.add_cut(i, theta, g, s)
            total += theta
        self.relaxed[tuple(s)] = total
        return total

    def subgradients(self, s: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Each day's LP value θ_d(s) and subgradient at ``s`` (the LP cuts there are added
        when ``s`` was not evaluated yet)."""
        new = tuple(s) not in self.relaxed
        if new:
            self.evaluate(s)
        out = []
        for d in self.lps:
            out.append(d.evaluate(s))
        return out

    def held_sizes(self, s_bar: np.ndarray) -> list[int]:
        """The configuration sizes a strengthened cut at ``s_bar`` holds: those non-zero there
        (the engines of s̄; the others stay free in its day MILP, so one cut covers every
        configuration that adds engines to s̄'s — as tight here: bench/design_physical.md)."""
        return [i for i in self.master.config if s_bar[i] > 0.5]

    def held(self, s_bar: np.ndarray) -> dict[str, float]:
        """:meth:`held_sizes` by name, with their values at ``s_bar``."""
        return {self.size_names[i]: float(s_bar[i]) for i in self.held_sizes(s_bar)}

    def add_strengthened(
        self, day: int, bound: float, theta: float, g: np.ndarray, s_bar: np.ndarray
    ) -> float:
        """The strengthened cut θ_d ≥ L_d + g·s of day ``day`` (``bound`` = L_d, a dual bound of
        :func:`strengthened_bound` at g with the configuration sizes held at their values at s̄,
        :meth:`held`), for the sizes with that configuration; never below the LP cut at s̄ (both
        are valid). Returns how much it lies above that LP cut."""
        lp_const = theta - float(g @ s_bar)
        lift = max(bound - lp_const, 0.0)
        if lift > 0:
            self.master.add_cut(day, theta, g, s_bar, lift=lift, held=self.held_sizes(s_bar))
            self.strengthened += 1
        return lift

    def master_rounds(self, lower: float, max_rounds: int) -> tuple[np.ndarray, float, float]:
        """Integer master solves after new cuts, with LP cuts at each new answer, until the
        master repeats an evaluated answer or ``max_rounds``; returns (its last answer, the
        master's estimate there, the lower bound)."""
        s_i, est = np.zeros(0), INF
        for _ in range(max_rounds):
            s_i, est, bound = self.master.solve(
                False, gap=self.opts.master_gap, max_nodes=self.opts.master_max_nodes
            )
            lower = max(lower, bound)
            self.history.append({"phase": 3, "lower": lower, "upper": est, "t": _t(self.t0)})
            if tuple(s_i) in self.relaxed or self.safety_net():
                break
            self.evaluate(s_i)
        return s_i, est, lower

    def over_time(self) -> bool:
        """The run has stopped (its gap, its work limit, or the safety net)."""
        if time.perf_counter() - self.t0 > self.opts.time_limit_s:
            self.stop = "time limit (safety net)"
        return bool(self.stop)

    def safety_net(self) -> bool:
        """The wall-clock safety net is hit (what may stop the rounds after the sizing pass
        ended on its gap)."""
        self.over_time()
        return self.stop == "time limit (safety net)"

    def phase_lp(self) -> tuple[np.ndarray, float, int]:
        """Kelley on the master's LP relaxation with in-out stabilisation from the existing
        sizes; returns the core point, the LP bound and the rounds."""
        core = self.lb.copy()
        best = self.evaluate(core)
        bound, rounds, alpha = -INF, 0, 0.5
        while rounds < self.opts.max_lp_rounds:
            s_m, _obj, bound = self.master.solve(True, gap=0.0, max_nodes=0)
            rounds += 1
            self.history.append({"phase": 1, "lower": bound, "upper": best, "t": _t(self.t0)})
            self.log(f"benders LP round {rounds}: bound {bound:,.0f}, best {best:,.0f}")
            if (best - bound) / max(abs(best), 1e-9) <= self.opts.lp_gap or self.over_time():
                break
            s_sep = alpha * s_m + (1 - alpha) * core
            val = self.evaluate(s_sep)
            if val < best:
                best, core = val, s_sep
            else:  # the midpoint did not improve: move towards the master's answer
                alpha = min(1.0, alpha + 0.1)
        return core, bound, rounds

    def phase_integer(self, lower: float) -> tuple[np.ndarray | None, float, float, int]:
        """Integer master rounds until the gap, the round budget or the safety net."""
        best_s: np.ndarray | None = None
        best = INF
        rounds = 0
        while not self.stop:
            if rounds >= self.opts.max_int_rounds:
                self.stop = "work limit"
                break
            if self.over_time():
                break
            s_i, _obj, bound = self.master.solve(
                False, gap=self.opts.master_gap, max_nodes=self.opts.master_max_nodes
            )
            lower = max(lower, bound)
            rounds += 1
            # sizes already evaluated: the master's estimate is exact there, no new cut
            val = best if best_s is not None and np.array_equal(s_i, best_s) else self.evaluate(s_i)
            if val < best:
                best, best_s = val, s_i
            gap = (best - lower) / max(abs(best), 1e-9)
            self.history.append({"phase": 2, "lower": lower, "upper": best, "t": _t(self.t0)})
            self.log(
                f"benders integer round {rounds}: bound {lower:,.0f}, best {best:,.0f}, "
                f"gap {100 * gap:.3f} %, {self.master.cuts} cuts"
            )
            if gap <= self.opts.gap:
                self.stop = "gap"
        return best_s, best, lower, rounds

    def load(self, full: BuiltModel, s: np.ndarray) -> dict[str, float]:
        """Sizes ``s`` and the days' LP plans at ``s`` into the full model."""
        for d in self.lps:
            d.evaluate(s)
        by_name = {v.name: v for v in full.model.component_data_objects(pyo.Var, descend_into=True)}
        sizes = {n: float(v) for n, v in zip(self.size_names, s, strict=True)}
        for n, v in sizes.items():
            by_name[n].set_value(v, skip_validation=True)
        for d in self.lps:
            d.load()
            for v in d.built.model.component_data_objects(pyo.Var, descend_into=True):
                target = by_name.get(v.name)
                if target is not None and v.value is not None and v.name not in sizes:
                    target.set_value(v.value, skip_validation=True)
        return sizes


def solve_benders(
    full: BuiltModel,
    days: list[BuiltModel],
    opts: BendersOptions,
    *,
    log: Callable[[str], None] = lambda _m: None,
) -> BendersResult:
    """Benders decomposition of the relaxed sizing problem ``full`` (per-step integers already
    relaxed) over its typical days; ``days`` are the same model built per day, relaxed the same
    way. Loads the best sizes and the days' LP plans into ``full``."""
    run = BendersRun(full, days, opts, log)
    core, lp_bound, rounds_lp = run.phase_lp()
    best_s, best, lower, rounds_int = run.phase_integer(lp_bound)
    if best_s is None:  # stopped before any integer master: the LP core rounded up
        best_s = np.where(run.master.integer, np.ceil(core - 1e-6), core)
        best_s = np.clip(best_s, run.lb, run.ub)
        best = run.evaluate(best_s)
    sizes = run.load(full, best_s)
    return BendersResult(
        sizes=sizes,
        upper_eur=best,
        lower_eur=lower,
        lp_bound_eur=lp_bound,
        stop=run.stop,
        rounds_lp=rounds_lp,
        rounds_int=rounds_int,
        cuts=run.master.cuts,
        time_s=_t(run.t0),
        history=run.history,
        run=run,
    )


def _t(t0: float) -> float:
    return time.perf_counter() - t0


def summary(r: BendersResult) -> str:
    return (
        f"Benders sizing: stopped on {r.stop} after {r.rounds_lp} LP + {r.rounds_int} integer "
        f"rounds ({r.cuts} cuts), best {r.upper_eur:,.2f}, bound {r.lower_eur:,.2f}, "
        f"gap {100 * r.gap:.3f} %, {r.time_s:.1f} s"
    )


def as_record_fields(r: BendersResult) -> dict[str, Any]:
    return {
        "objective": r.upper_eur,
        "bound": r.lower_eur,
        "gap": r.gap,
        "time_s": r.time_s,
        "stop": r.stop,
    }
