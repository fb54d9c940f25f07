"""Flexible AI-cluster load (SPEC §3, the AI-cluster article).

Power ``p_kw[t] = floor_kw[t] + Σ_j p_job_kw[j,t]``: the inference floor must always be served; batch
jobs are deferrable energy blocks (energy, earliest start, deadline) placed anywhere inside their
window, never above the rated power. Energy a job cannot get before its deadline is
``missed_kwh[j]``, penalised in the objective, so the optimiser moves batch energy to hours of
community surplus and cheap energy and reports what it could not fit. The device setpoint is a
power cap (``p_kw`` of the first step).

**Design mode** (issue 13, the AI-cluster article): with an :class:`AiSizing` the cluster is
sized in whole catalogue units (rated kW = units × ``unit_kw``): an inference floor
(``floor_fraction`` of rated) always on, a daily batch energy (rated × ``batch_hours_per_day``)
that must run inside its deadline windows (flexible demand), and the value of the compute per MWh
drawn as a revenue. So the optimum answers "how many kW of cluster this community can power, and
what it earns": it grows the cluster while compute value + (in a virtual community) the
incentive on the energy it shares outweigh the energy it buys and the units' Capex.

**Design ↔ operation** (tests/techs/test_ai_parity.py): a design window is an operation job
with the same energy (its share of rated × ``batch_hours_per_day``) and window, the design floor
(``floor_fraction`` × rated) the operation ``floor_kw``; given the same day as a perfect forecast
both plan the same batch hours at the same dispatch cost. By construction they differ in:
design values the compute (``revenue_compute``, a constant once the size is fixed) and must run
all batch energy, operation has no compute value and may miss a job's energy at
``missed_penalty_eur_per_kwh``. Each window has its own batch power, like each job: with one
batch power for all windows (before the parity test), hours where windows overlap counted for
each of them and design ran less batch energy than it asked for; the scenario check now asks
every span of overlapping windows to hold their work together.

Jobs live in a fixed number of slots (``max_jobs``) so the model structure never changes: a job
arriving fills a free slot by setting its Params (``job_e_kwh``, ``job_window``); an empty slot
has zero energy and zero window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import (
    Device,
    DeviceKey,
    Key,
    Raw,
    RuleState,
    Technology,
    device_state,
    rnd,
)
from ems.techs.dashboard import Panel, Series
from ems.techs.kpi import KpiColumn, KpiRow, KpiTable
from ems.techs.plant import BUS_AI, HubStep, PlantDevice

REPORT_KWH = 0.01  # a planned deadline miss above this is an alert


@dataclass(frozen=True)
class BatchJob:
    """One deferrable batch job: ``e_kwh`` still to run between steps ``start_step`` and
    ``deadline_step`` (exclusive) of the current horizon."""

    job_id: str
    e_kwh: float
    start_step: int
    deadline_step: int
    p_max_kw: float | None = None  # the job cannot draw more than this (GPU count); None: rated


@dataclass(frozen=True)
class AiSizing:
    """What design mode needs to size a cluster (from the hub's ``ai_cluster`` scenario entry)."""

    unit_kw: float
    capex_eur_per_unit: float
    lifetime_y: float
    om_fraction_per_y: float
    max_units: int
    existing_units: int
    floor_fraction: float
    batch_hours_per_day: float
    windows: tuple[tuple[float, float, float], ...]  # (start_h, end_h, share of the batch energy)
    compute_value_eur_per_mwh: float


class AiCluster(Technology):
    kind = "ai_cluster"
    compute_load = True
    device_kind = "ai_cluster"
    short_quantity = "ai_missed_kwh"
    panels = (
        Panel(
            "hub",
            "AI cluster: power vs cap",
            "kW",
            (
                Series("p_kw", "$tag_device power"),
                Series("p_cap_kw", "$tag_device cap", "setpoint"),
                Series("queued_e_kwh", "$tag_device queued kWh"),
            ),
            order=5,
        ),
    )

    kpi_table = KpiTable(
        "AI cluster",
        (
            KpiColumn("kw", "kW", "{} kW"),
            KpiColumn("mwh_per_y", "MWh/y", "{} MWh/y"),
            KpiColumn("compute_value_eur_per_y", "compute value €/y", "compute value {} €/y",
                      html_decimals=0),
            KpiColumn("own_pv_share_pct", "% from the hub's own PV",
                      "{} % of its energy from the hub's own PV"),
        ),
    )  # fmt: skip

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return AiPlant(self)

    def design_kpis(self, grid: Any, flows: pd.DataFrame) -> dict[str, Any] | None:
        """A sized cluster: rated kW, MWh/y drawn, value of its compute, and the share of its
        energy met by the hub's own PV in the hours it runs (PV not exported ∝ use)."""
        if self.sizing is None:
            return None
        blk = self.block
        assert blk is not None
        hub_el = flows[(flows["hub"] == self.hub) & (flows["carrier"] == "electricity")]
        wide = hub_el.pivot_table(
            index=["period", "step"], columns="label", values="kw", aggfunc="sum"
        ).fillna(0.0)
        pv = wide[[c for c in wide.columns if str(c).startswith("PV")]].sum(axis=1)
        export = -wide.get("grid export", 0.0)
        uses = -wide[wide < 0].sum(axis=1)  # every use of electricity at the hub
        mwh = renewable = 0.0
        for p, t in grid.index():
            kw = float(pyo.value(blk.p_kw[p, t]))
            f = grid.annual_factor(p)
            mwh += kw * f / 1000.0
            own_pv = max(float(pv.get((p, t), 0.0)) - float(export.get((p, t), 0.0)), 0.0)
            use = float(uses.get((p, t), 0.0)) - float(export.get((p, t), 0.0))
            if use > 1e-9:
                renewable += kw * min(own_pv / use, 1.0) * f / 1000.0
        value = self.sizing.compute_value_eur_per_mwh
        return {
            "kw": self.units.value(),
            "mwh_per_y": mwh,
            "compute_value_eur_per_y": mwh * value,
            "own_pv_share_pct": 100.0 * renewable / mwh if mwh > 1e-9 else None,
        }

    def __init__(
        self,
        name: str,
        hub: str,
        *,
        rated_kw: float,
        floor_kw: float,
        max_jobs: int = 8,
        missed_penalty_eur_per_kwh: float = 1.0,
        sizing: AiSizing | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.sizing = sizing
        if rated_kw <= 0 or floor_kw < 0 or floor_kw > rated_kw:
            raise ValueError(
                f"{name}: need 0 ≤ floor_kw ({floor_kw}) ≤ rated_kw ({rated_kw}) and rated_kw > 0"
            )
        self.rated_kw = rated_kw
        self.floor_kw = floor_kw
        self.max_jobs = max_jobs
        self.missed_penalty_eur_per_kwh = missed_penalty_eur_per_kwh
        self.slot_of: dict[str, int] = {}  # job id -> slot of the last update
        self.dt_h = 0.25

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        """What design sized (operation takes its clusters from SITE.yaml's ``ai_clusters``)."""
        return {} if hub.ai_cluster is None else {"ai_cluster": ("n_units", "kw")}

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        """Design mode: the hub's ``ai_cluster`` entry, sized in whole catalogue units. In
        operation the clusters come from SITE.yaml (the operation assembly)."""
        from ems.config.schema import AiClusterSpec

        lim = getattr(hub, "ai_cluster", None)
        if lim is None or a.fixed_sizes is not None:
            return []
        spec: AiClusterSpec = a.catalogue.get(lim.type, AiClusterSpec, "ai_cluster")
        sizing = AiSizing(
            unit_kw=spec.unit_kw,
            capex_eur_per_unit=spec.capex_eur_per_unit,
            lifetime_y=spec.lifetime_y,
            om_fraction_per_y=spec.om_fraction_per_y,
            max_units=lim.max_units,
            existing_units=lim.existing_units,
            floor_fraction=lim.floor_fraction,
            batch_hours_per_day=lim.batch_hours_per_day,
            windows=tuple((float(x), float(y), float(z)) for x, y, z in lim.windows),
            compute_value_eur_per_mwh=lim.compute_value_eur_per_mwh,
        )
        return [cls.for_design(f"{hub.id}_ai_cluster", hub.id, sizing)]

    @classmethod
    def from_site_config(cls, site: Any, scenario: Any) -> list[Technology]:
        """Operation: the clusters of SITE.yaml (``ai_clusters``), each at a hub of the scenario."""
        from ems.errors import ConfigError

        hubs = {h.id for h in scenario.hubs}
        out: list[Technology] = []
        for ai in site.ai_clusters:
            if ai.hub not in hubs:
                raise ConfigError(
                    str(site.path_ or "site"),
                    f"ai_clusters.{ai.id}.hub",
                    f"{ai.hub!r} is not a hub of the scenario",
                )
            out.append(
                cls(
                    f"{ai.hub}_{ai.id}",
                    ai.hub,
                    rated_kw=ai.rated_kw,
                    floor_kw=ai.floor_kw,
                    max_jobs=ai.max_jobs,
                    missed_penalty_eur_per_kwh=ai.missed_penalty_eur_per_kwh,
                )
            )
        return out

    @classmethod
    def for_design(cls, name: str, hub: str, sizing: AiSizing) -> AiCluster:
        rated = sizing.unit_kw * max(sizing.max_units, sizing.existing_units, 1)
        return cls(name, hub, rated_kw=rated, floor_kw=0.0, max_jobs=0, sizing=sizing)

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        z = self.sizing
        if z is None:
            return
        self.units = ctx.size(
            blk,
            "n_units",
            unit_size=z.unit_kw,
            unit="kW",
            max_units=z.max_units,
            existing_units=z.existing_units,
            capex_eur_per_unit=z.capex_eur_per_unit,
            lifetime_y=z.lifetime_y,
            om_fraction_per_y=z.om_fraction_per_y,
        )

    def _add_design_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        """p = floor_fraction × rated + Σ_w batch_w ≤ rated; per day, window w's batch energy is
        its share of rated × batch_hours_per_day, run inside w (the jobs finish by their
        deadlines). Each window has its own batch power, as each operation job has its own: with
        one power for all, hours where windows overlap counted for both and the design ran less
        batch energy than it asked for."""
        z = self.sizing
        assert z is not None
        rated = self.units.expr
        dt = ctx.grid.dt_h
        blk.W = pyo.Set(initialize=list(range(len(z.windows))), ordered=True)
        blk.p_batch_kw = pyo.Var(
            blk.W, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.rated_kw)
        )
        blk.p_kw = pyo.Expression(
            ctx.T,
            rule=lambda b, p, t: z.floor_fraction * rated + sum(b.p_batch_kw[w, p, t] for w in b.W),
        )
        blk.rated = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_kw[p, t] <= rated)

        def inside(w: int, t: Any) -> bool:
            return z.windows[w][0] <= ctx.grid.hour_of(t) < z.windows[w][1]

        def window_rule(b: pyo.Block, p: str, w: int) -> Any:
            steps = [t for t in ctx.grid.steps if inside(w, t)]
            if not steps:
                return pyo.Constraint.Skip
            share = z.windows[w][2]
            return (
                sum(b.p_batch_kw[w, p, t] for t in steps) * dt
                == share * z.batch_hours_per_day * rated
            )

        blk.batch_energy = pyo.Constraint(ctx.model.P, blk.W, rule=window_rule)
        # batch work runs only inside its window (else it would be extra, unrequested load)
        for w in blk.W:
            for p, t in ctx.T:
                if not inside(w, t):
                    blk.p_batch_kw[w, p, t].fix(0.0)
        self.port(ctx, "electricity", "AI cluster", lambda p, t: -blk.p_kw[p, t])

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if self.sizing is not None:
            self._add_design_operation(ctx, blk)
            return
        J = list(range(self.max_jobs))
        blk.J = pyo.Set(initialize=J, ordered=True)
        blk.rated_kw = pyo.Param(initialize=self.rated_kw, mutable=True)
        blk.floor_kw = ctx.param(blk, "floor_kw", {pt: self.floor_kw for pt in ctx.grid.index()})
        blk.job_e_kwh = pyo.Param(blk.J, initialize=0.0, mutable=True)
        blk.job_p_max_kw = pyo.Param(blk.J, initialize=self.rated_kw, mutable=True)
        blk.job_window = pyo.Param(
            blk.J, ctx.T, initialize=0.0, mutable=True
        )  # 1 inside [start, deadline)
        blk.p_job_kw = pyo.Var(blk.J, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.rated_kw))
        blk.missed_kwh = pyo.Var(blk.J, domain=pyo.NonNegativeReals)
        blk.p_kw = pyo.Expression(
            ctx.T, rule=lambda b, p, t: b.floor_kw[p, t] + sum(b.p_job_kw[j, p, t] for j in J)
        )
        blk.rated = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.p_kw[p, t] <= b.rated_kw)
        blk.in_window = pyo.Constraint(
            blk.J,
            ctx.T,
            rule=lambda b, j, p, t: (
                b.p_job_kw[j, p, t] <= b.job_p_max_kw[j] * b.job_window[j, p, t]
            ),
        )
        dt = self.dt_h = ctx.grid.dt_h
        blk.job_energy = pyo.Constraint(
            blk.J,
            rule=lambda b, j: (
                sum(b.p_job_kw[j, p, t] for p, t in ctx.T) * dt + b.missed_kwh[j] == b.job_e_kwh[j]
            ),
        )
        self.port(ctx, "electricity", "AI cluster", lambda p, t: -blk.p_kw[p, t])

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if self.sizing is not None:  # design: the compute is worth its value per MWh drawn
            value = self.sizing.compute_value_eur_per_mwh / 1000.0
            ctx.add_cost(
                "revenue_compute", sum(ctx.weight(p) * value * blk.p_kw[p, t] for p, t in ctx.T)
            )
            return
        ctx.add_cost(
            "penalty", sum(self.missed_penalty_eur_per_kwh * blk.missed_kwh[j] for j in blk.J)
        )

    def size_rows(self) -> list[dict[str, Any]]:
        z = self.sizing
        if z is None or self.block is None:
            return []
        maximum = z.unit_kw * max(z.max_units, z.existing_units)
        return [
            {**self.size_row("AI cluster", "kW", self.units.value(), maximum), "key": "ai_cluster"}
        ]

    def sizes(self) -> dict[str, float]:
        if self.sizing is None or self.block is None:
            return {}
        return {"n_units": self.units.value_units(), "kw": self.units.value()}

    # ---- operation
    def update(
        self,
        *,
        floor_kw: Sequence[float] | float | None = None,
        jobs: Sequence[BatchJob] | None = None,
    ) -> list[str]:
        """Set the inference floor (per step or constant) and the batch jobs; returns the ids of
        jobs that did not fit in the slots (they are left for the next step)."""
        blk = self.block
        assert blk is not None, "build the model first"
        index = list(blk.floor_kw.keys())
        if floor_kw is not None:
            values = (
                [float(floor_kw)] * len(index)
                if isinstance(floor_kw, (int, float))
                else [float(x) for x in floor_kw]
            )
            if len(values) != len(index):
                raise ValueError(
                    f"{self.name}: floor_kw has {len(values)} values, the horizon {len(index)}"
                )
            for key, v in zip(index, values, strict=False):
                blk.floor_kw[key] = min(max(v, 0.0), self.rated_kw)
        if jobs is None:
            return []
        n = len(index)
        ordered = sorted(
            jobs, key=lambda j: (j.deadline_step, j.job_id)
        )  # earliest deadline keeps a slot
        overflow = [j.job_id for j in ordered[self.max_jobs :]]
        self.slot_of = {}
        for slot in range(self.max_jobs):
            job = ordered[slot] if slot < len(ordered) else None
            blk.job_e_kwh[slot] = max(job.e_kwh, 0.0) if job else 0.0
            blk.job_p_max_kw[slot] = (
                min(job.p_max_kw or self.rated_kw, self.rated_kw) if job else 0.0
            )
            lo = max(job.start_step, 0) if job else n
            hi = min(job.deadline_step, n) if job else 0
            for i, key in enumerate(index):
                blk.job_window[(slot, *key)] = 1.0 if lo <= i < hi else 0.0
            if job:
                self.slot_of[job.job_id] = slot
        return overflow

    def planned(self, job_id: str) -> tuple[float, float]:
        """(planned kWh inside the horizon, missed kWh) of a job after a solve."""
        blk = self.block
        assert blk is not None
        slot = self.slot_of[job_id]
        e = sum(pyo.value(blk.p_job_kw[slot, p, t]) for (j, p, t) in blk.p_job_kw if j == slot)
        return e * self.dt_h, float(pyo.value(blk.missed_kwh[slot]))

    def cover_terms(self, carrier: str) -> list | None:
        return []

    @classmethod
    def wants_step(cls, before: dict[str, Any], payload: dict[str, Any]) -> bool:
        """More batch energy queued than at the last state."""
        queued = float(payload.get("queued_e_kwh") or 0)
        return queued > float(before.get("queued_e_kwh") or 0) + 1e-6

    # ---- operation interface
    @property
    def device_id(self) -> str:
        """MQTT id: the cluster id of ``SITE.yaml`` (the name is ``<hub>_<id>``)."""
        return self.name[len(self.hub) + 1 :]

    @property
    def device_key(self) -> DeviceKey:
        return (self.hub, "ai_cluster", self.device_id)

    def take_message(self, state: Any, key: DeviceKey, channel: str, payload: Any) -> bool:
        """A job announcement (``…/job``) into the cluster's book (:func:`take_job`)."""
        return channel == "job" and take_job(state.book(key), "/".join(key), payload)

    def tidy_state(self, state: Any, now: pd.Timestamp) -> list[str]:
        book = state.books.get("/".join(self.device_key))
        return [] if book is None else expire_jobs(book, "/".join(self.device_key), now)

    @classmethod
    def upgrade_persisted(cls, d: dict[str, Any]) -> None:
        """Before the books: ``ai_job_book`` ("hub/kind/id" -> job id -> announcement) and
        ``ai_jobs_closed`` (every cluster's, with its ``cluster``) at the top level."""
        jobs, closed = d.pop("ai_job_book", None), d.pop("ai_jobs_closed", None)
        if jobs is None and closed is None:
            return
        books = d.setdefault("books", {})
        for name, book in (jobs or {}).items():
            books.setdefault(name, {})["jobs"] = book
        for c in closed or []:
            books.setdefault(str(c.get("cluster")), {}).setdefault("closed", []).append(c)

    def observe(self, obs: Any, inp: Any) -> None:
        """The batch jobs announced on the job channel (else the state's aggregated queue)."""
        name = "/".join(self.device_key)
        inp.device_state[self.device_key] = batch_jobs(
            obs.state.books.get(name),
            obs.state.latest.get(name),
            obs.start,
            obs.dt_h,
            obs.n_steps,
            self.max_jobs,
        )

    def take_state(self, inp: Any) -> None:
        self.update(floor_kw=self.floor_kw, jobs=device_state(inp, self.device_key, []))

    def devices(self) -> list[Device]:
        return [(self.hub, "ai_cluster", self.device_id, self.rated_kw)]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        # rounded up: a cap rounded down would leave a sliver of a just-in-time job past its deadline
        cap = min(math.ceil(pyo.value(b.p_kw[k0]) * 1000 - 1e-6) / 1000, self.rated_kw)
        return [(self.hub, "ai_cluster", self.device_id, {"p_cap_kw": rnd(max(cap, 0.0))})]

    def fallback_passes(self):  # noqa: ANN201
        return [((70.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """Serve inference only (batch work waits)."""
        floor = self.floor_kw
        st.net_el_kw += floor
        return [(self.hub, "ai_cluster", self.device_id, {"p_cap_kw": rnd(max(0.0, floor))})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {f"{self.hub}.ai_kw": self.values(self.block.p_kw, keys)}

    def after_solve(self, result: Any, alerts: list[str]) -> None:
        b = self.block
        assert b is not None
        cid = self.device_id
        missed = float(sum(pyo.value(b.missed_kwh[j]) for j in b.J))
        result.short_kwh.setdefault(self.short_quantity, {})[cid] = missed
        for job_id in self.slot_of:
            missed = self.planned(job_id)[1]
            if missed > REPORT_KWH:
                alerts.append(
                    f"AI {cid}: job {job_id} cannot get {missed:.2f} kWh before its deadline"
                )

    def can_supply_electricity(self) -> bool:
        return False

    def measured_el_kw(self, state: Any) -> float:
        return -state.value((self.hub, "ai_cluster", self.device_id), "p_kw")


# ---------------------------------------------------------------- the job book (operation)
#: Closed jobs (done, cancelled, expired) a cluster's book remembers.
CLOSED_KEPT = 200


def _job_left_kwh(p: dict[str, Any]) -> float:
    return max(float(p["energy_kwh"]) - float(p.get("done_e_kwh") or 0.0), 0.0)


def _close(book: dict[str, Any], entry: dict[str, Any]) -> None:
    book["closed"] = (book.get("closed", []) + [entry])[-CLOSED_KEPT:]


def take_job(book: dict[str, Any], name: str, payload: dict[str, Any]) -> bool:
    """Take a validated job announcement into a cluster's book (``book["jobs"]``: job id ->
    latest announcement, the latest per job id wins; ``book["closed"]``: the last done,
    cancelled or expired ones). True when it adds work (a new job, or more energy still to
    run), which triggers an on-demand step."""
    jobs = book.setdefault("jobs", {})
    jid = str(payload["job_id"])
    prev = jobs.get(jid)
    if prev is not None and pd.Timestamp(prev["ts"]) > pd.Timestamp(payload["ts"]):
        return False  # out of order
    if payload.get("status") in ("done", "cancelled"):
        if prev is not None:
            del jobs[jid]
        _close(book, {"cluster": name, **payload})
        return False
    jobs[jid] = payload
    left = _job_left_kwh(payload)
    return left > 1e-6 and (prev is None or left > _job_left_kwh(prev) + 1e-6)


def expire_jobs(
    book: dict[str, Any], name: str, now: pd.Timestamp, grace_h: float = 48.0
) -> list[str]:
    """Drop jobs whose deadline passed more than ``grace_h`` ago without a done/cancelled
    message (the scheduler lost them); returns an alert per dropped job."""
    alerts = []
    jobs = book.get("jobs", {})
    for jid, p in list(jobs.items()):
        if pd.Timestamp(p["deadline"]) + pd.Timedelta(hours=grace_h) < now:
            del jobs[jid]
            _close(book, {"cluster": name, **p, "status": "expired"})
            alerts.append(
                f"AI job {name}/{jid} dropped: deadline {p['deadline']} passed {grace_h:g} h ago "
                "with no done/cancelled announcement"
            )
    return alerts


def _steps_until(t: Any, start: pd.Timestamp, dt_h: float) -> float:
    return (pd.Timestamp(t) - start).total_seconds() / 3600 / dt_h


def _announced(
    jobs_book: dict[str, dict[str, Any]], start: pd.Timestamp, dt_h: float, n_steps: int
) -> list[BatchJob]:
    jobs = []
    for jid, p in jobs_book.items():
        left = _job_left_kwh(p)
        if left <= 1e-6:
            continue
        first = 0
        if p.get("earliest_start"):
            first = max(0, math.ceil(_steps_until(p["earliest_start"], start, dt_h) - 1e-9))
        if first >= n_steps:
            continue  # starts after the horizon
        due = math.floor(_steps_until(p["deadline"], start, dt_h) + 1e-9)
        due = min(max(due, first + 1, 1), n_steps)
        jobs.append(BatchJob(jid, left, first, due, p.get("p_max_kw")))
    return sorted(jobs, key=lambda j: (j.deadline_step, j.job_id))


def batch_jobs(
    book: dict[str, Any] | None,
    latest: dict[str, Any] | None,
    start: pd.Timestamp,
    dt_h: float,
    n_steps: int,
    max_jobs: int = 8,
) -> list[BatchJob]:
    """Batch jobs of a cluster over the horizon starting at ``start``.

    With job announcements (its ``book``): one job per announced job with the energy still to
    run, its window in horizon steps (a deadline past the horizon end is clipped to it, so the
    plan finishes every job inside the horizon: conservative), a late job due in the first
    step; more jobs than the model's slots → the latest-deadline ones are merged into the last
    slot, due at the earliest of their deadlines (conservative). Without announcements, the
    cluster's aggregated state (``latest``): its queue as one job due at its next deadline."""
    if book is not None and "jobs" in book:
        jobs = _announced(book["jobs"], start, dt_h, n_steps)
        if len(jobs) > max_jobs >= 1:
            rest = jobs[max_jobs - 1 :]
            merged = BatchJob(
                "+".join(j.job_id for j in rest)[:64],
                sum(j.e_kwh for j in rest),
                min(j.start_step for j in rest),
                rest[0].deadline_step,
            )
            jobs = jobs[: max_jobs - 1] + [merged]
        return jobs
    p = latest
    if not p or float(p.get("queued_e_kwh") or 0.0) <= 0:
        return []
    dl = (
        pd.Timestamp(p["next_deadline"])
        if p.get("next_deadline")
        else start + pd.Timedelta(hours=n_steps * dt_h)
    )
    steps = max(1, math.floor(_steps_until(dl, start, dt_h) + 1e-9))
    return [BatchJob("queue", float(p["queued_e_kwh"]), 0, min(steps, n_steps))]


#: A batch job is done in the simulated plant when less than this is left (1 Wh).
JOB_DONE_KWH = 1e-3


class AiPlant(PlantDevice):
    """An AI cluster in the simulated plant: batch jobs arrive (the first within the first hour,
    then every U(3, 8) h, U(0.6, 2.5) h of its batch power, deadline U(6, 14) h later); the
    inference floor is always served, batch work runs earliest deadline first within the cap
    (baseline: as soon as it arrives; missing setpoint: the floor only)."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("net_cost_backlog_eur", "net cost + AI backlog at mean price", "€", 2, 4),
        KpiRow("ai_batch_kwh", "AI batch energy", "kWh", 1, 8),
        KpiRow("ai_from_surplus_kwh", "AI batch energy from surplus", "kWh", 1, 9),
        KpiRow("ai_queued_end_kwh", "AI batch still queued (not yet due)", "kWh", 1, 10),
        KpiRow("ai_jobs_late", "AI jobs finished late", "", 0, 11),
    )

    rows = ("ai_kw",)

    def __init__(self, tech: AiCluster) -> None:
        super().__init__(tech)
        self.cid = tech.device_id
        self.jobs: list[dict[str, Any]] = []
        self.queue: list[dict[str, Any]] = []
        self.done: list[dict[str, Any]] = []
        self.p_kw = tech.floor_kw

    def draw_events(self, rng: Any, start: Any, times: Any) -> list[dict[str, Any]]:
        ai, out = self.tech, []
        t, k = start, 0
        while t < times[-1]:
            # the first job within the first hour (a cluster has work queued when the EMS starts)
            t = t + pd.Timedelta(hours=float(rng.uniform(3, 8) if k else rng.uniform(0, 1)))
            e = float(rng.uniform(0.6, 2.5)) * (ai.rated_kw - ai.floor_kw)
            deadline = (t + pd.Timedelta(hours=float(rng.uniform(6, 14)))).floor("15min")
            out.append(
                {
                    "job": f"{self.cid}-job{k}",
                    "arrive": t.floor("15min"),
                    "deadline": deadline,
                    "e_kwh": e,
                }
            )
            k += 1
        return out

    def arrivals(self, now: Any, end: Any, first: bool) -> None:
        for j in self.jobs:
            if now <= j["arrive"] < end:
                self.queue.append(
                    {
                        "job": j["job"],
                        "e_kwh": j["e_kwh"],
                        "left_kwh": j["e_kwh"],
                        "deadline": j["deadline"].isoformat(),
                        "arrive": j["arrive"].isoformat(),
                    }
                )

    def el_step(self, hs: HubStep) -> None:
        """Inference floor always, batch work within the cap."""
        ai, dt = self.tech, hs.dt_h
        cap = hs.setpoint((self.hub, "ai_cluster", self.cid), "p_cap_kw")
        if hs.baseline:
            cap = ai.rated_kw  # batch work runs as soon as it arrives
        elif cap is None:
            cap = ai.floor_kw
        cap = min(max(float(cap), ai.floor_kw), ai.rated_kw)  # inference is always served
        e_avail = (cap - ai.floor_kw) * dt
        used = 0.0
        for j in sorted(self.queue, key=lambda j: j["deadline"]):
            take = min(j["left_kwh"], e_avail - used)
            if take <= 0:
                continue
            j["left_kwh"] -= take
            used += take
            if j["left_kwh"] <= JOB_DONE_KWH:
                j["done_at"] = (hs.now + pd.Timedelta(hours=dt)).isoformat()
                self.done.append(j)
        self.queue = [j for j in self.queue if j["left_kwh"] > JOB_DONE_KWH]
        self.p_kw = ai.floor_kw + used / dt
        hs.sums.add("bus", BUS_AI, self.p_kw)
        hs.rows.add("ai_kw", 0, self.p_kw)
        hs.row[f"ai_batch_kw.{self.cid}"] = used / dt

    def finish(self, hs: HubStep) -> None:
        batch = hs.row.get(f"ai_batch_kw.{self.cid}", 0.0)
        hs.row[f"ai_from_surplus_kw.{self.cid}"] = min(batch, hs.surplus_kw)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        q = [j for j in self.queue if j["left_kwh"] > JOB_DONE_KWH]
        payload: dict[str, Any] = {
            "ts": ts,
            "p_kw": round(self.p_kw, 3),
            "queued_e_kwh": round(sum(j["left_kwh"] for j in q), 3),
            "jobs_queued": len(q),
        }
        if q:
            payload["next_deadline"] = min(j["deadline"] for j in q)
        return [((self.hub, "ai_cluster", self.cid), payload)]

    def announcements(self, ts: str) -> list:
        """What its scheduler publishes on ``…/ai_cluster/<id>/job``: every job still queued
        (with its progress) and, once, every job finished since the last call."""
        key, out = (self.hub, "ai_cluster", self.cid), []
        for j in self.queue:
            done = j["e_kwh"] - j["left_kwh"]
            status = "running" if done > 1e-6 else "queued"
            out.append((key, self._announce(ts, j, status, done)))
        for j in self.done:
            if not j.get("announced"):
                out.append((key, self._announce(ts, j, "done", j["e_kwh"])))
                j["announced"] = True
        return out

    @staticmethod
    def _announce(ts: str, j: dict[str, Any], status: str, done: float) -> dict[str, Any]:
        return {
            "ts": ts,
            "job_id": j["job"],
            "status": status,
            "energy_kwh": round(j["e_kwh"], 4),
            "done_e_kwh": round(done, 4),
            "earliest_start": j.get("arrive", ts),
            "deadline": j["deadline"],
        }

    def to_dict(self) -> dict[str, Any]:
        return {"queue": self.queue, "done": self.done, "p_kw": self.p_kw}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.queue, self.done, self.p_kw = list(d["queue"]), list(d["done"]), float(d["p_kw"])

    @classmethod
    def kpis(cls, devices: list[Any], df: Any, dt_h: float, hubs: list[str], out: dict) -> None:
        """Batch energy (and how much ran on PV surplus), jobs done and late, the backlog (valued
        at the mean purchase price in ``net_cost_backlog_eur``)."""
        batch = [c for c in df.columns if c.startswith("ai_batch_kw.")]
        ai_batch = sum(df[c] for c in batch) if batch else pd.Series(0.0, index=df.index)
        sur = [c for c in df.columns if c.startswith("ai_from_surplus_kw.")]
        done = [j for d in devices for j in d.done]
        backlog = float(sum(j["left_kwh"] for d in devices for j in d.queue))
        out.update(
            net_cost_backlog_eur=out["net_cost_eur"] + backlog * float(df.price_buy.mean()),
            ai_batch_kwh=float(ai_batch.sum() * dt_h),
            ai_from_surplus_kwh=float(sum(df[c].sum() for c in sur) * dt_h),
            ai_jobs_done=float(len(done)),
            ai_jobs_late=float(sum(1 for j in done if j.get("done_at", "") > j["deadline"])),
            ai_queued_end_kwh=backlog,
        )
