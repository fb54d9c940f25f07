"""A design study: AS-IS baseline, sizing MILP, KPIs, outputs.

``run_study`` is what ``ems design`` calls. The AS-IS case is the same model with every size held
at its existing value (so the same accounting computes its cost and CO2, SPEC §3).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo

from adapters.config_io import load_scenario
from design import decomposition as dc
from design import diagnose
from design.data import StudyData, prepare
from design.kpis import compute_kpis
from design.sizing_options import apply_continuous_sizes, exclusive_stores_for_verification
from ems.config.schema import Catalogue, Scenario
from ems.errors import ConfigError, SolveError
from ems.model import highs_direct
from ems.model import results as res
from ems.model.assembly import grid_exclusivity_needed, techs_from_scenario
from ems.model.builder import BuiltModel, ObjectiveSpec, build_model, relax_operational_integers
from ems.model.solve import ModelSize, SolveRecord, SolverSession
from ems.model.timegrid import TimeGrid
from ems.techs.registry import REGISTRY


@dataclass
class CaseRun:
    built: BuiltModel
    record: SolveRecord
    costs: dict[str, float]
    kpis: dict[str, Any]


@dataclass
class StudyResult:
    scenario: Scenario
    catalogue: Catalogue
    study: StudyData
    asis: CaseRun
    design: CaseRun
    notes: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    sizing_history: list[dict[str, float]] | None = None  # Benders: bounds per round, time


def yield_columns(s: Scenario, cat: Catalogue) -> list[str]:
    """The profile columns the scenario's technologies read beyond demand and prices (each
    technology declares its own: ``Technology.design_columns``)."""
    return sorted({c for r in REGISTRY for h in s.hubs for c in r.tech.design_columns(h, cat)})


def run_study(
    scenario_path: str | Path,
    *,
    tee: bool = False,
    log: Callable[[str], None] = lambda _m: None,
    time_limit_s: float | None = None,
    mip_rel_gap: float | None = None,
) -> StudyResult:
    s, cat = load_scenario(scenario_path)
    log(f"scenario {s.name}: {s.community} community, {len(s.hubs)} hubs")
    study = prepare(s, yield_columns(s, cat))
    g = study.grid
    log(
        f"time: {len(g.periods)} typical days × {g.n_steps} steps of {g.dt_h} h "
        f"({g.days_represented:.0f} days/year)"
    )
    solver = s.solver
    gap = solver.mip_rel_gap if mip_rel_gap is None else mip_rel_gap
    limit = solver.time_limit_s if time_limit_s is None else time_limit_s

    # AS-IS: same builder, sizes at their existing values; the same exclusivity rule (without it
    # a community with an incentive could "share" energy by importing and exporting at once)
    exclusive = grid_exclusivity_needed(s, study.sale_can_exceed_purchase)
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}
    notes: list[str] = []

    def build_asis(slack: float | None = None) -> BuiltModel:
        techs, limits = techs_from_scenario(
            s, cat, exclusive_grid=exclusive, asis=True, peaks=peaks
        )
        return build_model(
            techs,
            g,
            study.data,
            asis=True,
            interest_rate=s.finance.interest_rate,
            limits=limits,
            slack_penalty_eur_per_kwh=slack,
        )

    session = {"mip_rel_gap": gap, "time_limit_s": limit, "threads": solver.threads}
    log("solving the AS-IS case…")
    asis = build_asis()
    # solved once: straight to HiGHS (the LP and options SolverSession would pass, bit for bit)
    rec_asis = highs_direct.solve_model(asis.model, "AS-IS", **session)
    if diagnose.is_infeasible(rec_asis):
        # the present plant breaks its contract: say where, and size anyway (issue 13 point 7)
        asis, rec_asis, short = diagnose.solve_with_slack(build_asis, "AS-IS with slack", **session)
        notes.append(
            "AS-IS infeasible (its figures below include the slack, unpriced): "
            + diagnose.summary(short)
        )
        log("AS-IS infeasible: " + diagnose.summary(short))
    elif rec_asis.objective is None:
        raise SolveError(f"AS-IS: no solution, {rec_asis.termination}")
    log(rec_asis.line())
    asis_costs = res.cost_breakdown(asis)
    asis_run = CaseRun(asis, rec_asis, asis_costs, compute_kpis(asis, asis_costs))

    obj = ObjectiveSpec(
        kind=s.objective.kind,
        co2_price_eur_per_t=s.objective.co2_price_eur_per_t,
        alpha=s.objective.alpha,
        cost_asis_eur=asis_costs["total"],
        co2_asis_t=asis_costs["co2_t"],
    )

    def build_design(slack: float | None = None) -> BuiltModel:
        techs, limits = techs_from_scenario(s, cat, exclusive_grid=exclusive, peaks=peaks)
        b = build_model(
            techs,
            g,
            study.data,
            interest_rate=s.finance.interest_rate,
            limits=limits,
            objective=obj,
            slack_penalty_eur_per_kwh=slack,
        )
        apply_continuous_sizes(s, b)  # `integer: false` per size
        return b

    built = build_design()
    relaxed = 0
    history = None
    verification = None
    if solver.sizing in ("relaxed_commitment", "benders"):
        if solver.sizing == "benders" and solver.sizing_keep_integer:
            raise ConfigError(
                s.source_file or "scenario",
                "solver.sizing_keep_integer",
                "benders needs every per-step integer relaxed (its day subproblems are LPs)",
            )
        relaxed = relax_operational_integers(built, keep=tuple(solver.sizing_keep_integer))
        kept = (
            f"; kept integer: {', '.join(solver.sizing_keep_integer)}"
            if solver.sizing_keep_integer
            else ""
        )
        notes.append(
            f"sizing pass: {relaxed} per-step integer/binary variables relaxed (units on, HP modes, "
            f"exchange binaries){kept}"
        )
    if solver.sizing == "benders":
        log(
            "solving the sizing pass by Benders decomposition over the typical days (HiGHS; "
            f"stops on the gap {gap:g} or after {solver.max_rounds} rounds, safety net {limit:g} s)…"
        )
        rec, benders = benders_sizing(
            s, cat, study, built, obj, exclusive, peaks, gap=gap, time_limit_s=limit, log=log
        )
        notes.append(dc.summary(benders))
        history = benders.history
        if solver.strengthen_rounds > 0 and verify_wanted(solver):
            log(rec.line())
            rec, verification = _strengthened(
                s, cat, study, built, rec, benders, obj, exclusive, peaks, gap, limit, log
            )
            notes.append(
                f"sizing bound raised by {benders.run.strengthened} strengthened cuts (units on "
                f"integer per day): {rec.bound:,.2f}; best of {verification['candidates']} "
                "verified candidate sizes kept"
            )
    else:
        log(f"solving the sizing MILP (HiGHS, time limit {limit:g} s)…")
        rec = SolverSession(
            built.model, mip_rel_gap=gap, time_limit_s=limit, threads=solver.threads, tee=tee
        ).solve(
            "design (sizing pass, relaxed commitment)" if relaxed else "design",
            require_solution=False,
        )
    if rec.objective is None:
        raise SolveError(_no_design_message(rec, build_design, session))
    log(rec.line())
    if verification is None and verify_wanted(solver):
        verification = verify_by_day(
            s,
            cat,
            study,
            built,
            rec,
            obj,
            exclusive,
            peaks,
            gap=solver.verify_gap if gap > 0 else 0.0,
            time_limit_s=limit,
            threads=solver.threads,
            log=log,
        )
    costs = res.cost_breakdown(built)
    design_run = CaseRun(built, rec, costs, compute_kpis(built, costs, asis_costs))
    if exclusive:
        notes.append(
            "import/export exclusivity binaries on: simultaneous import and export could pay "
            "(shared-energy incentive or sale price ≥ purchase price)"
        )
    return StudyResult(s, cat, study, asis_run, design_run, notes, verification, history)


def verify_wanted(solver: Any) -> bool:
    """The per-day verification: ``solver.verify_by_day``, by default on with a relaxed pass."""
    if solver.verify_by_day is not None:
        return bool(solver.verify_by_day)
    return solver.sizing in ("relaxed_commitment", "benders")


def _strengthened(
    s: Scenario,
    cat: Catalogue,
    study: StudyData,
    built: BuiltModel,
    rec: SolveRecord,
    benders: dc.BendersResult,
    obj: ObjectiveSpec,
    exclusive: bool,
    peaks: dict[str, float],
    gap: float,
    limit: float,
    log: Callable[[str], None],
) -> tuple[SolveRecord, dict[str, Any]]:
    """Strengthened cuts + verification of candidates (:func:`strengthen_and_verify`); the
    record's bound becomes the raised bound, its sizes the best verified candidate's."""
    t0 = time.perf_counter()
    run = benders.run
    assert run is not None
    lower, st = strengthen_and_verify(
        s,
        cat,
        study,
        built,
        benders,
        obj,
        exclusive,
        peaks,
        verify_gap=s.solver.verify_gap if gap > 0 else 0.0,
        time_limit_s=limit,
        log=log,
    )
    best = st.best
    assert best is not None
    run.load(built, best.sizes)
    relaxed_objective = float(pyo.value(built.model.obj))
    elapsed = time.perf_counter() - t0
    safety_net = run.stop == "time limit (safety net)" or bool(st.days_at_limit)
    rec = SolveRecord(
        status=rec.status,
        termination="maxTimeLimit" if safety_net else rec.termination,
        objective=relaxed_objective,
        bound=lower,
        gap=rec.gap,  # the relaxed pass's own gap; the proven gap is the verification's
        time_s=rec.time_s,
        size=rec.size,
        label=rec.label + f" + {run.strengthened} strengthened cuts",
    )
    v = _verification_summary(
        built, rec, relaxed_objective, best.outcomes, elapsed, st.workers, log
    )
    v["candidates"] = len(st.verified)
    v["verified_at_s"] = best.t
    return rec, v


def _no_design_message(
    rec: SolveRecord, build: Callable[[float | None], BuiltModel], session: dict[str, Any]
) -> str:
    """One line: the solver status and, when infeasible, where a slack re-solve needs slack."""
    msg = f"design: no solution, {rec.termination}"
    if not diagnose.is_infeasible(rec):
        return msg
    _built, _rec, short = diagnose.solve_with_slack(build, "design with slack", **session)
    return f"{msg}: {diagnose.summary(short)}"


def day_grid(g: TimeGrid, p: str) -> TimeGrid:
    """The one-day grid of typical day ``p`` (same weight, kind and cyclic rule)."""
    return TimeGrid(
        (p,),
        g.n_steps,
        g.dt_h,
        {p: g.weight[p]},
        cyclic=g.cyclic,
        kind={p: g.kind.get(p, "weekday")},
    )


@dataclass(frozen=True, eq=False)
class DayProblem:
    """What every typical day's model is built from; picklable, so one object travels to the
    worker processes of the verification and of the strengthened cuts."""

    s: Scenario
    cat: Catalogue
    study: StudyData
    obj: ObjectiveSpec
    exclusive: bool
    peaks: dict[str, float]

    def build(self, p: str, *, verification: bool = False) -> BuiltModel:
        """The design model of typical day ``p`` (the full model's day-``p`` part, sizes free);
        for the verification with the stores' per-step exclusivity
        (``exclusive_stores_for_verification``)."""
        s = self.s
        techs, limits = techs_from_scenario(
            s, self.cat, exclusive_grid=self.exclusive, peaks=self.peaks
        )
        if verification:
            exclusive_stores_for_verification(techs)
        day = build_model(
            techs,
            day_grid(self.study.grid, p),
            self.study.data.loc[[p]],
            interest_rate=s.finance.interest_rate,
            limits=limits,
            objective=self.obj,
        )
        apply_continuous_sizes(s, day)  # `integer: false` per size, as in the full model
        return day


def build_day(
    s: Scenario,
    cat: Catalogue,
    study: StudyData,
    p: str,
    obj: ObjectiveSpec,
    exclusive: bool,
    peaks: dict[str, float],
    *,
    verification: bool = False,
) -> BuiltModel:
    """:meth:`DayProblem.build` of day ``p``."""
    return DayProblem(s, cat, study, obj, exclusive, peaks).build(p, verification=verification)


_TERMINATION = {
    "gap": "convergenceCriteriaSatisfied",
    "work limit": "iterationLimit",
    "time limit (safety net)": "maxTimeLimit",
}


def benders_sizing(
    s: Scenario,
    cat: Catalogue,
    study: StudyData,
    built: BuiltModel,
    obj: ObjectiveSpec,
    exclusive: bool,
    peaks: dict[str, float],
    *,
    gap: float,
    time_limit_s: float,
    log: Callable[[str], None],
) -> tuple[SolveRecord, dc.BendersResult]:
    """The relaxed sizing pass by Benders decomposition over the typical days
    (:mod:`design.decomposition`); ``built`` (per-step integers relaxed) receives the best sizes
    and their relaxed day plans. Stops on the gap or after ``solver.max_rounds`` integer master
    solves; ``time_limit_s`` is only a safety net."""
    size = ModelSize.of(built.model)
    problem = DayProblem(s, cat, study, obj, exclusive, peaks)
    days = []
    for p in study.grid.periods:
        day = problem.build(p)
        relax_operational_integers(day)
        days.append(day)
    opts = dc.BendersOptions(
        gap=gap,
        max_int_rounds=s.solver.max_rounds,
        time_limit_s=time_limit_s,
        threads=s.solver.threads,
    )
    r = dc.solve_benders(built, days, opts, log=log)
    rec = SolveRecord(
        status="optimal" if r.stop == "gap" else "feasible",
        termination=_TERMINATION[r.stop],
        objective=r.upper_eur,
        bound=r.lower_eur,
        gap=r.gap,
        time_s=r.time_s,
        size=size,
        label=f"design (sizing pass, Benders over {len(days)} typical days, "
        f"{r.rounds_lp} LP + {r.rounds_int} integer rounds, {r.cuts} cuts)",
    )
    return rec, r


def _verify_day(
    problem: DayProblem,
    p: str,
    size_values: dict[str, float],
    gap: float,
    time_limit_s: float,
    threads: int,
) -> tuple[dict[str, Any], dict[str, dict[Any, float]]]:
    """One verification day (sizes fixed, full integrality): its record and its plan as
    {variable component name: {index: value}}. Runs in a worker process when days are spread
    over the cores."""
    day = problem.build(p, verification=True)
    for h in day.ctx.sizes.values():
        if h.is_variable:
            value = size_values[h.units.name]
            h.units.fix(round(value) if h.units.is_integer() else value)
    # straight to HiGHS: the LP and options SolverSession would pass, without Pyomo's
    # persistent bookkeeping (highs_direct: same LP bit for bit, so the same plan)
    rec_d = highs_direct.solve_model(
        day.model,
        f"verify {p}",
        mip_rel_gap=gap,
        time_limit_s=time_limit_s,
        threads=threads,
        extra_options={"mip_max_nodes": VERIFY_MAX_NODES, "random_seed": 0},
    )
    if rec_d.objective is None:
        raise SolveError(f"verify {p}: no solution, {rec_d.termination}")
    plan: dict[str, dict[Any, float]] = {}
    for comp in day.model.component_objects(pyo.Var, descend_into=True):
        vals = {idx: comp[idx].value for idx in comp if not comp[idx].fixed}
        plan[comp.name] = {i: v for i, v in vals.items() if v is not None}
    record = {
        "day": p,
        "status": rec_d.status,
        "termination": rec_d.termination,
        "objective": rec_d.objective,
        "bound": rec_d.bound,
        "gap": rec_d.gap,
        "time_s": rec_d.time_s,
        "size": rec_d.size.__dict__,
    }
    return record, plan


VERIFY_MAX_NODES = 5000  # deterministic work limit of one verification day (B&B nodes)


def verify_by_day(
    s: Scenario,
    cat: Catalogue,
    study: StudyData,
    built: BuiltModel,
    sizing: SolveRecord,
    obj: ObjectiveSpec,
    exclusive: bool,
    peaks: dict[str, float],
    *,
    gap: float,
    time_limit_s: float,
    threads: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Re-solve the dispatch with the sizes fixed and full integrality, typical day by typical day
    (with sizes fixed the days are independent: storage is cyclic within a day), then load the
    verified dispatch into ``built`` so every result and KPI describes a feasible integer plan.

    With ``threads`` ≥ 2 the days are spread over that many worker processes (one HiGHS thread
    each); every day stops on its gap or a node limit (deterministic), ``time_limit_s`` per day is
    only a safety net. The sizing pass's bound is a valid lower bound of the full problem and the
    verified plan an upper bound, so (UB − LB)/UB is a proven gap.
    """
    relaxed_objective = float(pyo.value(built.model.obj))
    size_values = _size_values(built)
    t0 = time.perf_counter()
    workers = max(1, min(threads, len(study.grid.periods)))
    problem = DayProblem(s, cat, study, obj, exclusive, peaks)
    args = _verify_args(problem, size_values, gap, time_limit_s, threads, workers)
    if workers > 1:
        with _pool(workers) as pool:
            outcomes = list(pool.map(_verify_day, *zip(*args, strict=True)))
    else:
        outcomes = [_verify_day(*a) for a in args]
    return _verification_summary(
        built, sizing, relaxed_objective, outcomes, time.perf_counter() - t0, workers, log
    )


def _size_values(built: BuiltModel) -> dict[str, float]:
    return {
        h.units.name: float(pyo.value(h.units)) for h in built.ctx.sizes.values() if h.is_variable
    }


class _InProcess(Executor):
    """Runs each submitted call at once in this process (one worker: no process to spawn)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        f: Future = Future()
        f.set_result(fn(*args, **kwargs))
        return f


def _pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")  # HiGHS threads already run in this process
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def _verify_args(
    problem: DayProblem,
    size_values: dict[str, float],
    gap: float,
    time_limit_s: float,
    threads: int,
    workers: int,
) -> list[tuple[Any, ...]]:
    day_threads = 1 if workers > 1 else threads
    return [
        (problem, p, size_values, gap, time_limit_s, day_threads)
        for p in problem.study.grid.periods
    ]


def _load_plans(built: BuiltModel, outcomes: list[tuple[dict[str, Any], dict]]) -> float:
    """The verified day plans into ``built`` (its sizes already set); returns its objective."""
    m = built.model
    for _record, plan in outcomes:
        for name, values in plan.items():
            target = m.find_component(name)
            if target is None:
                continue
            for idx, val in values.items():
                if not target[idx].fixed:
                    target[idx].set_value(val, skip_validation=True)
    return float(pyo.value(m.obj))


def _verification_summary(
    built: BuiltModel,
    sizing: SolveRecord,
    relaxed_objective: float,
    outcomes: list[tuple[dict[str, Any], dict]],
    elapsed: float,
    workers: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Load the verified plans into ``built`` and describe them against the sizing bound."""
    verified = _load_plans(built, outcomes)
    days = [record for record, _plan in outcomes]
    worst_day_gap = max((d["gap"] or 0.0 for d in days), default=0.0)
    lb = sizing.bound if sizing.bound is not None else relaxed_objective
    safety = [d["day"] for d in days if d["termination"] == "maxTimeLimit"]
    out = {
        "sizing_objective": relaxed_objective,
        "sizing_bound": lb,
        "sizing_stop": sizing.termination,
        "verified_objective": verified,
        "difference_eur": verified - relaxed_objective,
        "difference_pct": 100.0
        * (verified - relaxed_objective)
        / max(abs(relaxed_objective), 1e-9),
        "proven_gap_pct": 100.0 * (verified - lb) / max(abs(verified), 1e-9),
        "worst_day_gap_pct": 100.0 * worst_day_gap,
        "days_at_time_limit": safety,
        "time_s": elapsed,
        "total_time_s": elapsed + sizing.time_s,
        "workers": workers,
        "days": days,
    }
    log(
        f"verification (sizes fixed, full integrality, {len(days)} days, {workers} processes): "
        f"objective {verified:,.2f} vs sizing {relaxed_objective:,.2f} "
        f"({out['difference_pct']:+.3f} %), proven gap {out['proven_gap_pct']:.3f} % against the "
        f"sizing bound {lb:,.2f}; {elapsed:.1f} s"
    )
    if sizing.termination == "maxTimeLimit" or safety:
        log(
            "warning: stopped by the wall-clock safety net (solver.time_limit_s), not by the gap "
            + (f"(verification days {', '.join(safety)})" if safety else "(sizing pass)")
            + f": this answer depends on the machine's load; it is worth its proven gap, "
            f"{out['proven_gap_pct']:.3f} %"
        )
    return out


# deterministic work limit of one strengthened-cut day MILP: the root's cuts give most of the
# lift (mixed case: 20 nodes lift 1,316 € where 500 lift 2,132 €, and lead the master to the
# same sizes at a third of the CPU; bench/design_physical.md, round 4)
STRENGTHEN_MAX_NODES = 20


def _strengthen_day(
    problem: DayProblem,
    p: str,
    size_names: list[str],
    g: list[float],
    opts: dc.StrengthenOptions,
    held: dict[str, float],
) -> dict[str, Any]:
    """L_d of day ``p``'s strengthened cut at subgradient ``g``, the sizes in ``held`` held at
    their values (worker process)."""
    day = problem.build(p)
    return dc.strengthened_bound(day, size_names, np.asarray(g, dtype=np.float64), opts, held)


@dataclass
class _Candidate:
    """Sizes whose integer plan was verified day by day."""

    sizes: np.ndarray
    outcomes: list[tuple[dict[str, Any], dict]]
    verified_eur: float
    t: float  # when its verification ended (s from the start of the sizing pass)


class _Strengthening:
    """Strengthened cuts at the master's answers and the verification of the promising ones,
    sharing one pool of worker processes (see :func:`strengthen_and_verify`)."""

    def __init__(self, problem: DayProblem, built, run, verify_gap, limit, log):
        self.problem = problem
        self.built, self.run, self.log = built, run, log
        self.verify_gap, self.limit = verify_gap, limit
        periods = problem.study.grid.periods
        self.workers = max(1, min(problem.s.solver.threads, len(periods)))
        # each day's MILP stops within half the target proven gap (its dual bound, not its
        # plan, makes the cut: a looser day gap weakens the cut, never its validity)
        day_gap = problem.s.solver.proven_gap / 2 or dc.StrengthenOptions.gap
        self.opts = dc.StrengthenOptions(
            max_nodes=STRENGTHEN_MAX_NODES, gap=day_gap, time_limit_s=limit
        )
        self.best: _Candidate | None = None
        self.verified: set[tuple[float, ...]] = set()
        self.days_at_limit: list[str] = []
        self.minimiser: np.ndarray | None = None  # the loosest day's SBC plan sizes

    def round(
        self,
        pool: Executor,
        s_bar: np.ndarray,
        verify: bool,
        cut: bool,
        *,
        lower: float = -float("inf"),
        target: float = -1.0,
    ) -> tuple[float, bool]:
        """Verify ``s_bar`` and/or add strengthened cuts there; returns the cuts' total lift and
        whether the verification alone proved ``target`` against ``lower`` (then no cut is
        computed: a decision on the verified plan only, so deterministic). The verification
        runs first, on every worker: its days are short (each stops on ``verify_gap``), and a
        plan that proves the target saves the round's cuts."""
        problem, periods = self.problem, self.problem.study.grid.periods
        names = self.run.size_names
        if verify:
            sizes = dict(zip(names, (float(x) for x in s_bar), strict=True))
            args = _verify_args(problem, sizes, self.verify_gap, self.limit, 1, 2)
            outcomes = [f.result() for f in [pool.submit(_verify_day, *a) for a in args]]
            self.verified.add(tuple(s_bar))
            self.run.load(self.built, s_bar)
            value = _load_plans(self.built, outcomes)
            t = time.perf_counter() - self.run.t0
            if self.best is None or value < self.best.verified_eur:
                self.best = _Candidate(s_bar.copy(), outcomes, value, t)
            self.log(f"verified candidate sizes: {value:,.2f} (best {self.best.verified_eur:,.2f})")
            best = self.best.verified_eur
            if (best - lower) / max(abs(best), 1e-9) <= target:
                return 0.0, True
        futs, gs = [], []
        if cut:
            gs = self.run.subgradients(s_bar)
            held = self.run.held(s_bar)
            futs = [
                pool.submit(_strengthen_day, problem, p, names, g.tolist(), self.opts, held)
                for p, (_theta, g) in zip(periods, gs, strict=True)
            ]
        lift, loosest = 0.0, -1.0
        for d, (f, (theta, g)) in enumerate(zip(futs, gs, strict=True)):
            r = f.result()
            if r["time_limit"]:
                self.days_at_limit.append(periods[d])
            day_lift = self.run.add_strengthened(d, r["bound"], theta, g, s_bar)
            lift += day_lift
            if day_lift > loosest:
                loosest, self.minimiser = (
                    day_lift,
                    np.clip(np.array(r["sizes"]), self.run.lb, self.run.ub),
                )
        return lift, False


def strengthen_and_verify(
    s: Scenario,
    cat: Catalogue,
    study: StudyData,
    built: BuiltModel,
    benders: dc.BendersResult,
    obj: ObjectiveSpec,
    exclusive: bool,
    peaks: dict[str, float],
    *,
    verify_gap: float,
    time_limit_s: float,
    log: Callable[[str], None],
) -> tuple[float, _Strengthening]:
    """Raise the relaxed sizing bound with strengthened cuts (:func:`dc.strengthened_bound`) and
    verify candidate sizes, until the proven gap (best verified plan − bound) / plan is within
    ``solver.proven_gap`` or after ``solver.strengthen_rounds`` rounds of cuts (work limits;
    ``time_limit_s`` is only a safety net).

    Round k: strengthened cuts for every day at the current sizes (and, when the master's
    estimate there is below the best verified plan, their verification, on the same worker
    processes); then integer master solves with LP cuts at their new answers. The next round
    works at the master's answer; when the master returns to sizes already cut, at the sizes of
    the loosest day's strengthened-cut plan instead (where that day's cut is tight); when those
    were cut too, nothing new can be learnt and the loop stops. Returns the lower bound and the
    state (best verified candidate, days whose MILP hit the safety net)."""
    run = benders.run
    assert run is not None
    solver = s.solver
    problem = DayProblem(s, cat, study, obj, exclusive, peaks)
    st = _Strengthening(problem, built, run, verify_gap, time_limit_s, log)
    lower = benders.lower_eur
    s_cur = np.array([benders.sizes[n] for n in run.size_names])
    estimate = -INF_EUR
    cut_at: set[tuple[float, ...]] = set()
    with _pool(st.workers) if st.workers > 1 else _InProcess() as pool:
        for k in range(solver.strengthen_rounds + 1):
            cut = k < solver.strengthen_rounds and tuple(s_cur) not in cut_at
            verify = tuple(s_cur) not in st.verified and (
                st.best is None or estimate < st.best.verified_eur
            )
            if not (cut or verify):
                break
            lift, proved = st.round(pool, s_cur, verify, cut, lower=lower, target=solver.proven_gap)
            if proved:  # the verified plan alone proves the gap: no more cuts needed
                best = st.best.verified_eur if st.best else INF_EUR
                log(
                    f"strengthening round {k + 1}: verified {best:,.2f} against the bound "
                    f"{lower:,.2f} proves {100 * (best - lower) / best:.3f} %"
                )
                break
            if cut:
                cut_at.add(tuple(s_cur))
            s_cur, estimate, lower = run.master_rounds(lower, solver.max_rounds)
            if tuple(s_cur) in cut_at and st.minimiser is not None:
                # the master keeps sizes already cut: try where the loosest day's cut is tight
                s_cur, estimate, st.minimiser = st.minimiser, -INF_EUR, None
            best = st.best.verified_eur if st.best else INF_EUR
            proven = (best - lower) / max(abs(best), 1e-9)
            log(
                f"strengthening round {k + 1}: cuts lift {lift:,.0f} €, bound {lower:,.2f}, "
                f"best verified {best:,.2f}, proven gap {100 * proven:.3f} %"
            )
            if proven <= solver.proven_gap or run.safety_net():
                break
    return lower, st


INF_EUR = float("inf")
