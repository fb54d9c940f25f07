"""The receding-horizon controller: one persistent model, parameters updated in place.

The model is built ONCE (``mode="operation"``, sizes fixed, soft balances with penalised slack so a
plan always exists). Each :meth:`Controller.step` only writes Param values through the
technologies' ``update_data``/``take_state`` (forecasts, prices, each device's measured state) and
re-solves the same model with a time limit through :class:`ems.model.solve.SolverSession` (Pyomo's
persistent HiGHS: Param changes become coefficient/bound updates, no re-translation). Setpoints
come from the first step of the plan; on solver failure, timeout without an incumbent, or stale
telemetry for a device, the rule-based fallback (:mod:`ems.operation.fallback`) decides instead and
an alert is raised. Pure: no network, no database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.errors import SolveError
from ems.model.builder import BuiltModel, build_model, relax_operational_integers
from ems.model.solve import SolveRecord, SolverSession
from ems.model.timegrid import TimeGrid
from ems.operation.assembly import OperationSetup
from ems.operation.fallback import hub_rules
from ems.operation.warmstart import PlanShifter
from ems.techs.base import DeviceKey, RuleState

log = logging.getLogger(__name__)

Source = Literal["plan", "fallback"]


@dataclass
class Setpoint:
    hub: str
    kind: str  # the MQTT device kind (see ems.techs.registry)
    device: str
    values: dict[str, Any]  # the fields of the kind's setpoint schema (ems.telemetry.schemas)
    valid_until: pd.Timestamp
    source: Source = "plan"

    @property
    def key(self) -> DeviceKey:
        return (self.hub, self.kind, self.device)


@dataclass
class StepInput:
    """Everything one step needs: forecasts over the horizon and the estimated state now."""

    start: pd.Timestamp  # UTC start of horizon step 0 (a quarter hour)
    load_kw: dict[str, np.ndarray]  # hub -> forecast
    pv_yield: dict[str, np.ndarray]  # yield column -> kW/kWp forecast
    price_buy: np.ndarray  # €/kWh
    price_sell: np.ndarray
    # the measured state of each device at the horizon start, in the form its technology chose
    # (a battery's SoC fraction, a charger's EV session, a cluster's batch jobs): written by the
    # technology's observe, read back by its take_state and its fallback rule
    device_state: dict[DeviceKey, Any] = field(default_factory=dict)
    stale: dict[DeviceKey, float] = field(
        default_factory=dict
    )  # device -> age (s) of its last telemetry
    net_now_kw: dict[str, float] = field(
        default_factory=dict
    )  # hub -> measured load − PV (fallback)
    # hub -> the stale inputs ("hub/kind/id") that leave its measured net load unknown: the
    # fallback then holds the hub's battery at 0 kW instead of computing from them
    net_unknown: dict[str, list[str]] = field(default_factory=dict)
    time_limit_s: float | None = None
    # multi-energy: forecasts of the other data columns the techs read (thermal demands, outdoor
    # temperature, solar-thermal kW/m²), gas price (None: the scenario's)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    gas_eur_per_kwh: float | None = None


@dataclass
class StepResult:
    start: pd.Timestamp
    setpoints: list[Setpoint]
    plan: (
        pd.DataFrame
    )  # one row per horizon step, columns "<hub>.<quantity>_kw" and community totals
    record: SolveRecord | None
    mode: Literal["optimal", "feasible", "fallback"]
    alerts: list[str]
    timings_s: dict[str, float]
    # energy the plan leaves undelivered: quantity (Technology.short_quantity) -> device -> kWh
    short_kwh: dict[str, dict[Any, float]] = field(default_factory=dict)


class Controller:
    """Builds the operation model once; :meth:`step` updates Params and re-solves."""

    def __init__(
        self,
        setup: OperationSetup,
        *,
        n_steps: int = 192,
        dt_h: float = 0.25,
        time_limit_s: float = 5.0,
        mip_rel_gap: float = 1e-4,
        threads: int = 1,
        slack_penalty_eur_per_kwh: float = 5.0,
        valid_steps: float = 2.0,
        warm_start: bool = True,
        mip_abs_gap_eur: float = 0.05,
        integer_steps: int | None = None,
        relaxation_cuts: Literal["off", "tail", "all"] = "off",
        highs_options: dict[str, Any] | None = None,
    ) -> None:
        self.setup = setup
        self.warm_start = warm_start  # start each solve from the previous plan shifted by one step
        self.n_steps, self.dt_h = n_steps, dt_h
        self.time_limit_s = time_limit_s
        self.valid_steps = valid_steps
        self.grid = TimeGrid(
            periods=("h",), n_steps=n_steps, dt_h=dt_h, weight={"h": 1.0}, cyclic=False
        )
        index = pd.MultiIndex.from_tuples(self.grid.index(), names=["period", "step"])
        data = pd.DataFrame(0.0, index=index, columns=setup.build_columns())
        for col, value in setup.build_values().items():
            data[col] = value
        t0 = time.perf_counter()
        self.built: BuiltModel = build_model(
            setup.techs,
            self.grid,
            data,
            mode="operation",
            interest_rate=setup.scenario.finance.interest_rate,
            limits=setup.limits,
            slack_penalty_eur_per_kwh=slack_penalty_eur_per_kwh,
        )
        # relaxed tail: integer decisions only in the first `integer_steps` steps (a relaxation
        # of the full problem; the setpoints come from step 0, which stays integer)
        self.integer_steps = (
            n_steps if integer_steps is None else max(1, min(integer_steps, n_steps))
        )
        self.relaxed_vars = (
            relax_operational_integers(self.built, from_step=self.integer_steps)
            if self.integer_steps < n_steps
            else 0
        )
        self.cut_rows = self._keep_relaxation_cuts(relaxation_cuts)
        self.build_s = time.perf_counter() - t0
        self.steps_done = 0
        self.last_planned: pd.Timestamp | None = (
            None  # start of the last step with a plan (warm start)
        )
        self._shifter: PlanShifter | None = None
        self._var_list: list[Any] | None = None
        self.keys = self.grid.index()
        self.closed_exports = self._close_impossible_exports()
        self.session = SolverSession(
            self.built.model,
            mip_rel_gap=mip_rel_gap,
            time_limit_s=time_limit_s,
            threads=threads,
            extra_options={
                "mip_heuristic_effort": 0.3,
                "mip_abs_gap": mip_abs_gap_eur,
                **(highs_options or {}),
            },
        )

    def _keep_relaxation_cuts(self, where: str) -> int:
        """The technologies' valid inequalities on relaxed integers (the CHP cuts) stay active on
        the relaxed steps (``tail``), on every step (``all``) or nowhere (``off``); the rest are
        deactivated once, before the solver sees the model. Returns the rows kept."""
        kept = 0
        for t in self.setup.techs:
            for con in t.relaxation_cuts():
                for idx, row in con.items():
                    on = where == "all" or (where == "tail" and idx[-1] >= self.integer_steps)
                    if on:
                        kept += 1
                    else:
                        row.deactivate()
        return kept

    def _close_impossible_exports(self) -> list[str]:
        """Hubs with nothing that can supply electricity (no PV, no battery, no V2G, no
        generator: :meth:`~ems.techs.base.Technology.can_supply_electricity`) cannot export:
        bound their export to 0 once, from configuration. Exact, and it removes their
        import/export exclusivity binaries in presolve (3–5× faster steps)."""
        closed = []
        for hub in self.setup.hubs:
            here = [t for t in self.setup.techs if t.hub == hub]
            if not any(t.can_supply_electricity() for t in here):
                if any([t.close_export(self.keys) for t in here]):
                    closed.append(hub)
        return closed

    @property
    def model(self) -> pyo.ConcreteModel:
        return self.built.model

    def component_count(self) -> int:
        """Number of component data objects (vars, constraints, params): constant across steps."""
        return sum(1 for _ in self.model.component_data_objects(descend_into=True))

    # ------------------------------------------------------------------ the step
    def step(self, inp: StepInput) -> StepResult:
        timings: dict[str, float] = {}
        alerts: list[str] = []
        t0 = time.perf_counter()
        self.update(inp)
        timings["update"] = time.perf_counter() - t0
        record: SolveRecord | None = None
        solved = False
        t1 = time.perf_counter()
        self.session.time_limit_s = (
            inp.time_limit_s if inp.time_limit_s is not None else self.time_limit_s
        )
        warm = self._prepare_warm_start(inp.start)
        try:
            record = self.session.solve(
                f"step {inp.start:%Y-%m-%d %H:%M}", require_solution=False, warm_start=warm
            )
            solved = record.status in ("optimal", "feasible")
            if not solved:
                alerts.append(
                    f"solver: no plan ({record.termination}, {record.time_s:.2f} s) → rule-based fallback"
                )
        except SolveError as exc:
            alerts.append(f"solver: {exc} → rule-based fallback")
        except Exception as exc:  # the daemon never dies on a solver problem
            log.exception("solver crashed")
            alerts.append(f"solver crashed: {type(exc).__name__}: {exc} → rule-based fallback")
        timings["solve"] = time.perf_counter() - t1
        if self.steps_done == 0 and solved:
            self.session.freeze_structure()
        self.steps_done += 1
        t2 = time.perf_counter()
        valid_until = inp.start + pd.Timedelta(hours=self.valid_steps * self.dt_h)
        rules = {sp.key: sp for sp in self.fallback_setpoints(inp, valid_until)}
        if solved:
            setpoints = self.plan_setpoints(valid_until)
            for i, sp in enumerate(setpoints):
                if sp.key in inp.stale:
                    setpoints[i] = rules[sp.key]
                    alerts.append(
                        f"stale telemetry {'/'.join(sp.key)} ({inp.stale[sp.key]:.0f} s old) → safe setpoint"
                    )
            plan = self.plan_frame(inp.start)
            alerts += self.plan_alerts()
        else:
            setpoints = list(rules.values())
            plan = pd.DataFrame()
        timings["extract"] = time.perf_counter() - t2
        mode: Any = (
            "fallback"
            if not solved
            else ("optimal" if record and record.status == "optimal" else "feasible")
        )
        res = StepResult(inp.start, setpoints, plan, record, mode, alerts, timings)
        if solved:
            for t in self.setup.operated():
                t.after_solve(res, alerts)
            self.last_planned = inp.start
        else:
            self.last_planned = None
        return res

    def _all_vars(self) -> list[Any]:
        """Every variable of the model in its fixed order (listed once: the structure never
        changes in operation mode)."""
        if self._var_list is None:
            self._var_list = list(self.model.component_data_objects(pyo.Var, descend_into=True))
        return self._var_list

    def solution_values(self) -> list[float | None]:
        """Every variable's value in the model's fixed order (the last plan, for persistence)."""
        return [v.value for v in self._all_vars()]

    def restore_solution(self, start: pd.Timestamp, values: list[float | None]) -> bool:
        """Put a persisted plan back into the model (a restart resumes with its warm start);
        False when the model has a different number of variables (the site changed)."""
        variables = self._all_vars()
        if len(variables) != len(values):
            return False
        for var, value in zip(variables, values, strict=True):
            var.set_value(value, skip_validation=True)
        self.last_planned = start
        return True

    def _prepare_warm_start(self, start: pd.Timestamp) -> bool:
        """Warm start from the last plan, shifted by the steps elapsed since it was made (0 for an
        on-demand step in the same quarter hour). No warm start after a failed step or when the
        last plan is a horizon or more away. The shift happens here, just before the solve, so the
        model holds the current plan between steps (for plan_frame and anyone reading it)."""
        if not self.warm_start or self.last_planned is None:
            return False
        k = round((start - self.last_planned).total_seconds() / 3600 / self.dt_h)
        if k < 0 or k >= self.n_steps:
            return False
        if k:
            if self._shifter is None:
                self._shifter = PlanShifter(self.model)
            self._shifter.shift(k)
        return True

    def frame(self, inp: StepInput) -> dict[str, np.ndarray]:
        """The step's data as one frame: exactly one horizon of finite values for every column an
        operated technology reads (the electric load forecast per hub goes to the hub's load
        column, the PV yields and prices to theirs)."""
        s, n = self.setup, self.n_steps
        raw: dict[str, tuple[Any, str]] = {c: (v, f"columns[{c}]") for c, v in inp.columns.items()}
        raw.update({c: (v, f"pv_yield[{c}]") for c, v in inp.pv_yield.items()})
        raw.update({s.load_column(h): (v, f"load_kw[{h}]") for h, v in inp.load_kw.items()})
        raw["price_buy_eur_per_kwh"] = (inp.price_buy, "price_buy")
        raw["price_sell_eur_per_kwh"] = (inp.price_sell, "price_sell")
        out: dict[str, np.ndarray] = {}
        for c in s.data_columns():
            values, what = raw.get(c, (None, f"columns[{c}]"))
            out[c] = _fit(values, n, what)
        return out

    def update(self, inp: StepInput) -> None:
        """Write the step's data and measured state into the model's Params (values only, never
        structure): each operated technology takes the columns it declared and its state."""
        frame = self.frame(inp)
        for t in self.setup.operated():
            t.update_data(frame)
            t.take_state(inp)

    # ------------------------------------------------------------------ outputs
    def plan_setpoints(self, valid_until: pd.Timestamp) -> list[Setpoint]:
        k0 = self.keys[0]
        return [
            Setpoint(h, k, d, v, valid_until)
            for t in self.setup.installed()
            for h, k, d, v in t.setpoints(k0)
        ]

    def rule_state(self, hub: str, inp: StepInput | None, first: dict[str, float]) -> RuleState:
        """The rule's starting point at a hub: nothing covered yet, the measured net load (or the
        technologies' forecast of it)."""
        techs = [t for t in self.setup.operated() if t.hub == hub]
        st = RuleState(
            hub,
            first=first,
            hub_kinds=frozenset(t.kind for t in techs if t.installed()),
            inp=inp,
            dt_h=self.dt_h,
        )
        net = None if inp is None else inp.net_now_kw.get(hub)
        st.net_el_kw = net if net is not None else sum(t.forecast_net_kw(st) for t in techs)
        return st

    def fallback_setpoints(self, inp: StepInput, valid_until: pd.Timestamp) -> list[Setpoint]:
        """The rule-based setpoints of every device (:func:`hub_rules` per hub)."""
        try:
            frame = self.frame(inp)
        except ValueError:
            frame = {}
        first = {c: float(v[0]) for c, v in frame.items()}
        out: list[Setpoint] = []
        for hub in self.setup.hubs:
            st = self.rule_state(hub, inp, first)
            for h, k, d, v in hub_rules(self.setup.operated(), st):
                out.append(Setpoint(h, k, d, v, valid_until, "fallback"))
        return out

    def plan_alerts(self, threshold_kw: float = 1.0) -> list[str]:
        """Alerts for a plan whose first step leaves a thermal demand unserved or dissipates heat
        (slack of the soft balances: the plant cannot do what is asked)."""
        m, k0 = self.model, self.keys[0]
        out: list[str] = []
        if not hasattr(m, "unmet_kw"):
            return out
        for hub, carrier in m.B:
            if carrier == "electricity":
                continue
            unmet = pyo.value(m.unmet_kw[hub, carrier, k0])
            dump = pyo.value(m.dump_kw[hub, carrier, k0])
            if unmet > threshold_kw:
                out.append(f"{hub}: {carrier} demand not covered by {unmet:.1f} kW in the plan")
            if dump > threshold_kw:
                out.append(
                    f"{hub}: the plan dissipates {dump:.1f} kW of {carrier.replace('_', ' ')}"
                )
        return out

    def plan_frame(self, start: pd.Timestamp) -> pd.DataFrame:
        """The plan over the horizon: every technology's columns (equal names add up: the hub's
        PV types, CHP models…) and the balances' slack per hub and carrier (kW)."""
        keys, m = self.keys, self.model
        cols: dict[str, np.ndarray] = {}
        for t in self.setup.operated():
            for name, v in t.plan_columns(keys).items():
                cols[name] = cols[name] + v if name in cols else v
        if hasattr(m, "unmet_kw"):
            for hub, carrier in m.B:
                pre = f"{hub}." if carrier == "electricity" else f"{hub}.{carrier}_"
                cols[f"{pre}unmet_kw"] = _values(m.unmet_kw, keys, (hub, carrier))
                cols[f"{pre}dump_kw"] = _values(m.dump_kw, keys, (hub, carrier))
        idx = pd.date_range(start, periods=len(keys), freq=pd.Timedelta(hours=self.dt_h))
        return pd.DataFrame(cols, index=idx)


def _values(comp: Any, keys: list[tuple[str, int]], prefix: tuple = ()) -> np.ndarray:
    return np.array([pyo.value(comp[(*prefix, *k)]) for k in keys], dtype=float)


def _fit(values: Any, n: int, what: str) -> np.ndarray:
    """Exactly ``n`` finite values: pad a short forecast with its last value (the horizon length
    never changes, ARCHITECTURE §6.4), never pass NaN to the solver."""
    if values is None:
        raise ValueError(f"{what}: no forecast")
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError(f"{what}: empty forecast")
    if arr.size < n:
        arr = np.concatenate([arr, np.full(n - arr.size, arr[-1])])
    arr = arr[:n]
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what}: NaN or infinite values in the forecast")
    return arr
