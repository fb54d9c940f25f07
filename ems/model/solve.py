"""Solving with HiGHS (through Pyomo's persistent ``highs`` interface): the only solver-aware module.

Every solve returns a :class:`SolveRecord`: status, objective, best bound, gap, time and model
size, so callers can report them (SPEC §3 "Formulation quality").
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

from ems.errors import SolveError


@dataclass
class ModelSize:
    binaries: int
    integers: int
    continuous: int
    constraints: int

    @classmethod
    def of(cls, m: pyo.ConcreteModel) -> ModelSize:
        b = i = c = 0
        for v in m.component_data_objects(pyo.Var, active=True, descend_into=True):
            if v.fixed:
                continue
            if v.is_binary():
                b += 1
            elif v.is_integer():
                i += 1
            else:
                c += 1
        n = sum(1 for _ in m.component_data_objects(pyo.Constraint, active=True, descend_into=True))
        return cls(b, i, c, n)


@dataclass
class SolveRecord:
    status: str
    termination: str
    objective: float | None
    bound: float | None
    gap: float | None
    time_s: float
    size: ModelSize
    label: str = ""
    warm_start: str = ""  # "" (cold), "accepted" or "rejected (…)" by HiGHS
    # branch-and-bound nodes HiGHS explored (None: not reported); with one thread the same on
    # any machine, unlike time_s: the work measure of a deterministic stopping rule
    nodes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        fmt = lambda x: "n/a" if x is None else f"{x:,.2f}"  # noqa: E731
        gap = "n/a" if self.gap is None else f"{100 * self.gap:.3f} %"
        s = self.size
        line = (
            f"{self.label or 'solve'}: {self.status} ({self.termination}), "
            f"objective {fmt(self.objective)}, bound {fmt(self.bound)}, gap {gap}, "
            f"{self.time_s:.1f} s; {s.binaries} binaries, {s.integers} integers, "
            f"{s.continuous} continuous, {s.constraints} constraints"
        )
        if self.hit_time_limit:
            line += (
                f" — STOPPED BY THE WALL-CLOCK SAFETY NET (time limit), not by the gap: the "
                f"answer depends on the machine's load and is worth its gap, {gap}"
            )
        return line

    @property
    def hit_time_limit(self) -> bool:
        return self.termination == "maxTimeLimit"


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    if objective is None or bound is None:
        return None
    return abs(objective - bound) / max(abs(objective), 1e-9)


_PROCESS_THREADS: int | None = None


def _process_threads(requested: int) -> int:
    """HiGHS starts one task scheduler per process, sized by the first run's ``threads``; a later
    run asking for another count fails ("unknown" status, no solution). So the first count
    requested in a process is used by every session of that process."""
    global _PROCESS_THREADS
    if _PROCESS_THREADS is None:
        _PROCESS_THREADS = requested
    elif requested != _PROCESS_THREADS:
        logging.getLogger(__name__).info(
            "HiGHS threads %d requested; this process runs with %d", requested, _PROCESS_THREADS
        )
    return _PROCESS_THREADS


def _warm_highs_class() -> type:
    """Pyomo's persistent HiGHS with a MIP start: right before ``run()`` (after Pyomo has pushed
    the parameter updates, which would clear a start given earlier) the current values of the
    model's variables are passed to HiGHS with ``setSolution`` (a partial start: variables
    without a value are left to HiGHS to complete)."""
    import highspy
    import numpy as np
    from pyomo.contrib.solver.solvers.highs import Highs
    from pyomo.core.staleflag import StaleFlagManager

    class WarmStartHighs(Highs):  # type: ignore[misc, valid-type]
        warm_start_vars: list[Any] | None = None
        _ws_key: tuple[int, int] | None = (
            None  # (warm_start_vars, number of columns) the map below is for
        )
        _ws_map: tuple[list[Any], Any] = ([], None)  # variables in HiGHS and their columns
        start_status: str = ""  # of the last solve: "", "accepted" or "rejected (…)"
        compiled_updates: bool = False  # set once the structure is frozen (operation mode)
        _compiled: Any = None  # param_update.CompiledUpdate for the current instance, or False

        _load_key: int | None = None  # number of mapped variables the load list is for
        _load_map: tuple[list[Any], Any] = ([], None)

        def set_instance(self, model):  # noqa: ANN001, ANN202 - pyomo's signature
            self._compiled = None  # a new HiGHS model: compile again
            self._load_key = None
            return super().set_instance(model)

        def update_parameters(self):  # noqa: ANN202 - pyomo's signature
            """Pyomo's update, or with the structure frozen its compiled equivalent (the same
            numbers in one pass: :mod:`ems.model.param_update`)."""
            if not self.compiled_updates or self._compiled is False:
                return super().update_parameters()
            from ems.model.param_update import CompiledUpdate, NotCompilable

            if self._compiled is None:
                try:
                    self._compiled = CompiledUpdate(self)
                except NotCompilable:
                    self._compiled = False
                    return super().update_parameters()
            self._sol = None
            if self._last_results_object is not None:
                self._last_results_object.solution_loader.invalidate()
            self._compiled.push(self._solver_model)
            return None

        def load_primals(self) -> None:
            """Load the last solution's values into the variables HiGHS holds (what Pyomo's
            ``load_vars`` does), from a variable→column list built once per HiGHS model: with
            the structure frozen the per-step map Pyomo builds is the same every time."""
            sol = self._sol
            if sol is None or not sol.value_valid:
                raise SolveError("no primal solution to load")
            key = len(self._pyomo_var_to_solver_var_map)
            if self._load_key != key:
                col_of = self._pyomo_var_to_solver_var_map
                pairs = [  # the variables Pyomo's load_vars loads: used by a row, SOS or objective
                    (self._vars[v_id][0], col_of[v_id])
                    for v_id, (cons, sos, obj) in self._referenced_variables.items()
                    if cons or sos or obj is not None
                ]
                self._load_map = (
                    [v for v, _ in pairs],
                    np.array([c for _, c in pairs], dtype=np.int64),
                )
                self._load_key = key
            variables, cols = self._load_map
            values = np.asarray(sol.col_value, dtype=np.float64)[cols].tolist()
            for var, value in zip(variables, values, strict=True):
                var.set_value(value, skip_validation=True)
            StaleFlagManager.mark_all_as_stale(delayed=True)

        def _solve(self):  # noqa: ANN202 - pyomo's signature
            if self.warm_start_vars:
                col_of = self._pyomo_var_to_solver_var_map
                key = (id(self.warm_start_vars), len(col_of))
                if key != self._ws_key:  # operation mode: built once, reused every step
                    mapped = sorted(
                        (v for v in self.warm_start_vars if id(v) in col_of),
                        key=lambda v: col_of[id(v)],
                    )
                    self._ws_map = (
                        mapped,
                        np.array([col_of[id(v)] for v in mapped], dtype=np.int32),
                    )  # ascending
                    self._ws_key = key
                mapped, cols = self._ws_map
                vals = np.array(
                    [np.nan if v.value is None else v.value for v in mapped], dtype=np.float64
                )
                known = ~np.isnan(vals)
                if known.any():
                    # HiGHS rejects the whole start if one value is outside its bounds (a −4e-7 from
                    # the last solve does it): clip to the bounds HiGHS has now
                    _st, _n, _cost, lower, upper, _nz = self._solver_model.getCols(len(cols), cols)
                    vals = np.clip(vals, lower, upper)
                    status = self._solver_model.setSolution(
                        int(known.sum()), cols[known], vals[known]
                    )
                    self.start_status = (
                        "accepted" if status == highspy.HighsStatus.kOk else f"rejected ({status})"
                    )
            else:
                self.start_status = ""
            return super()._solve()

    return WarmStartHighs


class SolverSession:
    """A HiGHS session bound to one model; re-solves after parameter updates reuse it."""

    def __init__(
        self,
        model: pyo.ConcreteModel,
        *,
        mip_rel_gap: float = 0.005,
        time_limit_s: float = 600.0,
        threads: int = 2,
        tee: bool = False,
        extra_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.options: dict[str, Any] = {
            "mip_rel_gap": mip_rel_gap,
            "threads": _process_threads(threads),
            **(extra_options or {}),
        }
        self.time_limit_s = time_limit_s
        self.tee = tee
        self.solver = _warm_highs_class()()
        self._frozen_size: ModelSize | None = None
        if not self.solver.available():
            raise SolveError("HiGHS (highspy) is not available: pip install highspy")

    def freeze_structure(self) -> None:
        """Operation mode: the model's structure never changes after the first solve, so skip
        Pyomo's scan for new or removed components; Param values are still pushed to HiGHS
        (ARCHITECTURE §6.6). Variable bounds and constraint expressions must not change after
        this either: operation mode changes Param values only."""
        self._frozen_size = ModelSize.of(self.model)  # the structure is fixed from now on
        self.solver.compiled_updates = True  # Param values pushed by one compiled pass
        cfg = getattr(self.solver, "config", None)
        auto = getattr(cfg, "auto_updates", None)
        if auto is None:
            return
        for name in (
            "check_for_new_or_removed_constraints",
            "check_for_new_or_removed_vars",
            "check_for_new_or_removed_params",
            "check_for_new_objective",
            "update_named_expressions",
            "update_constraints",
            "update_vars",
        ):
            if hasattr(auto, name):
                setattr(auto, name, False)

    def _node_count(self) -> int | None:
        """Branch-and-bound nodes of the last solve, as HiGHS reports them (None: unavailable)."""
        try:
            n = int(self.solver._solver_model.getInfo().mip_node_count)
        except Exception:  # noqa: BLE001 - an informative figure, never a reason to fail
            return None
        return n if n >= 0 else None

    def solve(
        self, label: str = "", *, require_solution: bool = True, warm_start: bool = False
    ) -> SolveRecord:
        """Solve; with ``warm_start`` the variables' current values (e.g. the previous plan shifted
        by one step) are given to HiGHS as a starting solution."""
        if warm_start:
            if self.solver.warm_start_vars is None:
                self.solver.warm_start_vars = list(
                    self.model.component_data_objects(pyo.Var, active=True, descend_into=True)
                )
        else:
            self.solver.warm_start_vars = None
        size = self._frozen_size or ModelSize.of(self.model)
        t0 = time.perf_counter()
        try:
            res = self.solver.solve(
                self.model,
                tee=self.tee,
                load_solutions=False,
                raise_exception_on_nonoptimal_result=False,
                time_limit=self.time_limit_s,
                solver_options=self.options,
            )
        except Exception as exc:  # solver crash -> user-visible error, not a traceback
            raise SolveError(f"{label or 'solve'}: HiGHS failed: {exc}") from None
        elapsed = time.perf_counter() - t0
        has_solution = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
        nodes = self._node_count()
        if has_solution:
            if self._frozen_size is not None:  # operation mode: one pass over a fixed list
                self.solver.load_primals()
            else:
                res.solution_loader.load_vars()
        objective = res.incumbent_objective if has_solution else None
        bound = (
            res.objective_bound
            if res.objective_bound is not None and abs(res.objective_bound) < 1e30
            else None
        )
        if (
            res.termination_condition == TerminationCondition.convergenceCriteriaSatisfied
            and bound is None
        ):
            bound = objective
        record = SolveRecord(
            status=res.solution_status.name,
            termination=res.termination_condition.name,
            objective=objective,
            bound=bound,
            gap=relative_gap(objective, bound),
            time_s=elapsed,
            size=size,
            label=label,
            warm_start=self.solver.start_status if warm_start else "",
            nodes=nodes,
        )
        if require_solution and not has_solution:
            hint = (
                " (the scenario is infeasible: check contract power, EV needs and demand)"
                if res.termination_condition
                in (
                    TerminationCondition.provenInfeasible,
                    TerminationCondition.infeasibleOrUnbounded,
                )
                else ""
            )
            raise SolveError(
                f"{label or 'solve'}: no solution, {res.termination_condition.name}{hint}"
            )
        return record
