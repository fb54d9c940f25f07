"""The receding-horizon controller: one persistent model, parameters updated in place.

The model is built ONCE (``mode="operation"``, sizes fixed, soft balances with penalised slack so a
plan always exists). Each :meth:`Controller.step` only writes Param values through the
technologies' ``update`` methods (forecasts, prices, initial SoC, EV sessions, AI jobs) and
re-solves the same model with a time limit through :class:`ems.model.solve.SolverSession` (Pyomo's
persistent HiGHS: Param changes become coefficient/bound updates, no re-translation). Setpoints
come from the first step of the plan; on solver failure, timeout without an incumbent, or stale
telemetry for a device, the rule-based fallback (:mod:`ems.operation.fallback`) decides instead and
an alert is raised. Pure: no network, no database.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.errors import SolveError
from ems.model.builder import BuiltModel, build_model
from ems.model.solve import SolveRecord, SolverSession
from ems.model.timegrid import TimeGrid
from ems.operation import fallback, thermal
from ems.operation.assembly import OperationSetup
from ems.operation.ev_points import EvSession
from ems.operation.warmstart import PlanShifter
from ems.techs.ai_cluster import BatchJob

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str, str]  # (hub, kind, device id) as in the MQTT topic
REPORT_KWH = 0.01  # a planned AI deadline miss or EV shortfall above this is an alert
Source = Literal["plan", "fallback"]


@dataclass
class Setpoint:
    hub: str
    kind: str  # battery | ev_charger | ai_cluster | chp | heat_pump | boiler | absorption_chiller | thermal_storage | dh_station | elec_link
    device: str
    values: dict[
        str, Any
    ]  # p_kw (battery, ev_charger), p_cap_kw (ai_cluster), ... (see ems.operation.thermal)
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
    battery_soc: dict[str, float] = field(default_factory=dict)  # hub -> fraction of capacity
    ev_sessions: dict[tuple[str, str], EvSession | None] = field(
        default_factory=dict
    )  # (hub, point) -> session
    ai_floor_kw: dict[str, float] = field(default_factory=dict)  # cluster id -> inference floor
    ai_jobs: dict[str, list[BatchJob]] = field(default_factory=dict)
    stale: dict[DeviceKey, float] = field(
        default_factory=dict
    )  # device -> age (s) of its last telemetry
    net_now_kw: dict[str, float] = field(
        default_factory=dict
    )  # hub -> measured load − PV (fallback)
    time_limit_s: float | None = None
    # multi-energy: forecasts of the other data columns the techs read (thermal demands, outdoor
    # temperature, solar-thermal kW/m²), stores' state of charge, gas price (None: the scenario's)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    store_soc: dict[tuple[str, str], float] = field(
        default_factory=dict
    )  # (hub, "puffer"|"bollitore") -> fraction
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
    ai_missed_kwh: dict[str, float] = field(default_factory=dict)
    ev_short_kwh: dict[tuple[str, str], float] = field(default_factory=dict)


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
        ev_safe_kw: float = 3.7,
        valid_steps: float = 2.0,
        warm_start: bool = True,
        mip_abs_gap_eur: float = 0.05,
    ) -> None:
        self.setup = setup
        self.warm_start = warm_start  # start each solve from the previous plan shifted by one step
        self.n_steps, self.dt_h = n_steps, dt_h
        self.time_limit_s = time_limit_s
        self.ev_safe_kw = ev_safe_kw
        self.valid_steps = valid_steps
        self.grid = TimeGrid(
            periods=("h",), n_steps=n_steps, dt_h=dt_h, weight={"h": 1.0}, cyclic=False
        )
        index = pd.MultiIndex.from_tuples(self.grid.index(), names=["period", "step"])
        data = pd.DataFrame(0.0, index=index, columns=setup.data_columns())
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
        self.build_s = time.perf_counter() - t0
        self.steps_done = 0
        self.last_planned: pd.Timestamp | None = (
            None  # start of the last step with a plan (warm start)
        )
        self._shifter: PlanShifter | None = None
        self.keys = self.grid.index()
        self.closed_exports = self._close_impossible_exports()
        self.session = SolverSession(
            self.built.model,
            mip_rel_gap=mip_rel_gap,
            time_limit_s=time_limit_s,
            threads=threads,
            extra_options={"mip_heuristic_effort": 0.3, "mip_abs_gap": mip_abs_gap_eur},
        )

    def _close_impossible_exports(self) -> list[str]:
        """Hubs with nothing that can supply electricity (no PV, no battery, no V2G, no
        generator) cannot export: bound their export to 0 once, from configuration. Exact, and it
        removes their import/export exclusivity binaries in presolve (3–5× faster steps)."""
        consumers = {
            "demand",
            "grid",
            "ai_cluster",
            "virtual_community",
            "heat_pump",
            "boiler",
            "absorption_chiller",
            "thermal_storage",
            "solar_thermal",
            "chp_heat_split",
            "dh_station",
            "dh_network",
            "link_network",
            "link_station",
        }  # a link taker cannot export what it takes, (7)
        closed = []
        for hub, grid in self.setup.grids.items():
            can_supply = False
            for t in self.setup.techs:
                if t.hub != hub or t.kind in consumers:
                    continue
                if t.kind == "pv":
                    can_supply |= (t.fixed_kwp or 0) > 0
                elif t.kind == "battery":
                    can_supply |= (t.fixed_modules or 0) > 0
                elif t.kind == "ev_charge_points":
                    can_supply |= any(c.mode == "v2g" for c in t.points)
                elif t.kind == "chp":
                    can_supply |= t.n is not None and t.n.value_units() > 0
                else:  # CHP, links, anything new: assume it can supply
                    can_supply = True
            if not can_supply:
                for k in self.keys:
                    grid.block.p_export_kw[k].setub(0.0)
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
            alerts += thermal.plan_alerts(self.setup, self.keys[0])
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
            for cid, ai in self.setup.ai_clusters.items():
                res.ai_missed_kwh[cid] = float(
                    sum(pyo.value(ai.block.missed_kwh[j]) for j in ai.block.J)
                )
                for job_id in ai.slot_of:
                    missed = ai.planned(job_id)[1]
                    if missed > REPORT_KWH:
                        alerts.append(
                            f"AI {cid}: job {job_id} cannot get {missed:.2f} kWh before its deadline"
                        )
            for hub, evp in self.setup.ev_points.items():
                for c in evp.block.C:
                    res.ev_short_kwh[(hub, c)] = float(pyo.value(evp.block.short_kwh[c]))
                    if res.ev_short_kwh[(hub, c)] > REPORT_KWH:
                        alerts.append(
                            f"EV at {hub}/{c}: {res.ev_short_kwh[(hub, c)]:.2f} kWh short of its request at departure"
                        )
            self.last_planned = inp.start
        else:
            self.last_planned = None
        return res

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

    def update(self, inp: StepInput) -> None:
        """Write the step's data into the model's Params (values only, never structure)."""
        s = self.setup
        n = self.n_steps
        for hub, dem in s.demands.items():
            dem.update(_fit(inp.load_kw.get(hub), n, f"load_kw[{hub}]"))
        for pvs in s.pvs.values():
            for pv in pvs:
                pv.update(
                    _fit(
                        inp.pv_yield.get(pv.spec.yield_column),
                        n,
                        f"pv_yield[{pv.spec.yield_column}]",
                    )
                )
        buy, sell = _fit(inp.price_buy, n, "price_buy"), _fit(inp.price_sell, n, "price_sell")
        for grid in s.grids.values():
            grid.update(buy, sell)
        for hub, bat in s.batteries.items():
            if hub in inp.battery_soc:
                bat.update(inp.battery_soc[hub])
        for hub, evp in s.ev_points.items():
            evp.update({c.point_id: inp.ev_sessions.get((hub, c.point_id)) for c in evp.points})
        for cid, ai in s.ai_clusters.items():
            ai.update(floor_kw=inp.ai_floor_kw.get(cid, ai.floor_kw), jobs=inp.ai_jobs.get(cid, []))
        thermal.update(s, inp, n, _fit)

    # ------------------------------------------------------------------ outputs
    def plan_setpoints(self, valid_until: pd.Timestamp) -> list[Setpoint]:
        s, k0 = self.setup, self.keys[0]
        out: list[Setpoint] = []
        for hub, bat in s.batteries.items():
            b = bat.block
            p = pyo.value(b.p_charge_kw[k0]) - pyo.value(b.p_discharge_kw[k0])
            out.append(Setpoint(hub, "battery", "bess", {"p_kw": _r(p)}, valid_until))
        for hub, evp in s.ev_points.items():
            for c in evp.points:
                out.append(
                    Setpoint(
                        hub,
                        "ev_charger",
                        c.point_id,
                        {"p_kw": _r(evp.setpoint_kw(c.point_id))},
                        valid_until,
                    )
                )
        for cid, ai in s.ai_clusters.items():
            # rounded up: a cap rounded down would leave a sliver of a just-in-time job past its deadline
            cap = min(math.ceil(pyo.value(ai.block.p_kw[k0]) * 1000 - 1e-6) / 1000, ai.rated_kw)
            out.append(Setpoint(ai.hub, "ai_cluster", cid, {"p_cap_kw": _r(cap)}, valid_until))
        out += [Setpoint(h, k, d, v, valid_until) for h, k, d, v in thermal.plan_setpoints(s, k0)]
        return out

    def fallback_setpoints(self, inp: StepInput, valid_until: pd.Timestamp) -> list[Setpoint]:
        s = self.setup
        out: list[Setpoint] = []
        ai_by_hub: dict[str, float] = {}
        for cid, ai in s.ai_clusters.items():
            floor = inp.ai_floor_kw.get(cid, ai.floor_kw)
            ai_by_hub[ai.hub] = ai_by_hub.get(ai.hub, 0.0) + floor
            out.append(
                Setpoint(
                    ai.hub,
                    "ai_cluster",
                    cid,
                    {"p_cap_kw": _r(fallback.ai_cap_kw(floor))},
                    valid_until,
                    "fallback",
                )
            )
        th_rules = thermal.fallback_setpoints(s, inp)
        th_el = thermal.electric_kw(th_rules)  # hub -> heat pumps − CHP (kW) under the rule
        ev_by_hub: dict[str, float] = {}
        for hub, evp in s.ev_points.items():
            for c in evp.points:
                sess = inp.ev_sessions.get((hub, c.point_id))
                p = (
                    fallback.ev_p_kw(sess.need_kwh, c.p_kw, self.ev_safe_kw, sess.p_vehicle_kw)
                    if sess
                    else 0.0
                )
                ev_by_hub[hub] = ev_by_hub.get(hub, 0.0) + p
                out.append(
                    Setpoint(
                        hub, "ev_charger", c.point_id, {"p_kw": _r(p)}, valid_until, "fallback"
                    )
                )
        for hub, bat in s.batteries.items():
            if hub in inp.net_now_kw:
                net = inp.net_now_kw[hub]
            else:
                load = _fit(inp.load_kw.get(hub), self.n_steps, "load")[0]
                pv = sum(
                    kwp * _fit(inp.pv_yield.get(col), self.n_steps, "pv")[0]
                    for col, kwp in s.pv_kwp(hub).items()
                )
                net = load - pv
            net += ev_by_hub.get(hub, 0.0) + ai_by_hub.get(hub, 0.0) + th_el.get(hub, 0.0)
            spec = bat.spec
            cap = bat.capacity.value() if bat.capacity is not None else 0.0
            soc = inp.battery_soc.get(hub, bat.soc_initial)
            p = fallback.battery_p_kw(
                net,
                soc,
                cap,
                spec.c_rate_per_h * cap,
                spec.soc_min,
                spec.soc_max,
                self.dt_h,
                spec.eta_charge,
                spec.eta_discharge,
            )
            out.append(Setpoint(hub, "battery", "bess", {"p_kw": _r(p)}, valid_until, "fallback"))
        out += [Setpoint(h, k, d, v, valid_until, "fallback") for h, k, d, v in th_rules]
        return out

    def plan_frame(self, start: pd.Timestamp) -> pd.DataFrame:
        """The plan over the horizon: per hub grid, PV, battery, EV, AI, load and slack (kW)."""
        s, keys = self.setup, self.keys
        m = self.model
        cols: dict[str, np.ndarray] = {}

        def vals(comp: Any, prefix: tuple = ()) -> np.ndarray:
            return np.array([pyo.value(comp[(*prefix, *k)]) for k in keys], dtype=float)

        for hub in s.hubs:
            if hub in s.grids:
                b = s.grids[hub].block
                cols[f"{hub}.import_kw"] = vals(b.p_import_kw)
                cols[f"{hub}.export_kw"] = vals(b.p_export_kw)
            if hub in s.demands:
                cols[f"{hub}.load_kw"] = vals(s.demands[hub].block.load_kw)
            if hub in s.pvs:
                cols[f"{hub}.pv_kw"] = sum(vals(pv.block.p_kw) for pv in s.pvs[hub])
            if hub in s.batteries:
                b = s.batteries[hub].block
                cols[f"{hub}.battery_kw"] = vals(b.p_charge_kw) - vals(b.p_discharge_kw)
                cols[f"{hub}.battery_kwh"] = vals(b.e_kwh)
            if hub in s.ev_points:
                evp = s.ev_points[hub]
                cols[f"{hub}.ev_kw"] = (
                    sum(vals(evp.block.p_charge_kw, (c,)) for c in evp.block.C)
                    if len(evp.block.C)
                    else np.zeros(len(keys))
                )
            ai = [a for a in s.ai_clusters.values() if a.hub == hub]
            if ai:
                cols[f"{hub}.ai_kw"] = sum(vals(a.block.p_kw) for a in ai)
            if hasattr(m, "unmet_kw") and (hub, "electricity") in m.B:
                cols[f"{hub}.unmet_kw"] = vals(m.unmet_kw, (hub, "electricity"))
                cols[f"{hub}.dump_kw"] = vals(m.dump_kw, (hub, "electricity"))
        cols.update(thermal.plan_columns(s, keys))
        if hasattr(m, "tech_community"):
            cols["community.shared_kw"] = vals(m.tech_community.shared_kw)
        idx = pd.date_range(start, periods=len(keys), freq=pd.Timedelta(hours=self.dt_h))
        return pd.DataFrame(cols, index=idx)


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


def _r(x: float) -> float:
    return round(float(x), 3) + 0.0
