"""Flexible AI-cluster load (SPEC §3, the AI-cluster article).

Power ``p_kw[t] = floor_kw[t] + Σ_j p_job_kw[j,t]``: the inference floor must always be served; batch
jobs are deferrable energy blocks (energy, earliest start, deadline) placed anywhere inside their
window, never above the rated power. Energy a job cannot get before its deadline is
``missed_kwh[j]``, penalised in the objective, so the optimiser moves batch energy to hours of
community surplus and cheap energy and reports what it could not fit. The device setpoint is a
power cap (``p_kw`` of the first step).

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
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd

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


class AiCluster(Technology):
    kind = "ai_cluster"
    device_kind = "ai_cluster"

    def __init__(
        self,
        name: str,
        hub: str,
        *,
        rated_kw: float,
        floor_kw: float,
        max_jobs: int = 8,
        missed_penalty_eur_per_kwh: float = 1.0,
    ) -> None:
        super().__init__(name, hub)
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

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
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
        ctx.add_cost(
            "penalty", sum(self.missed_penalty_eur_per_kwh * blk.missed_kwh[j] for j in blk.J)
        )

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

    # ---- operation interface
    @property
    def device_id(self) -> str:
        """MQTT id: the cluster id of ``SITE.yaml`` (the name is ``<hub>_<id>``)."""
        return self.name[len(self.hub) + 1 :]

    def take_state(self, inp: Any) -> None:
        cid = self.device_id
        self.update(
            floor_kw=getattr(inp, "ai_floor_kw", {}).get(cid, self.floor_kw),
            jobs=getattr(inp, "ai_jobs", {}).get(cid, []),
        )

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
        floor = getattr(st.inp, "ai_floor_kw", {}).get(self.device_id, self.floor_kw)
        st.net_el_kw += floor
        return [(self.hub, "ai_cluster", self.device_id, {"p_cap_kw": rnd(max(0.0, floor))})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {f"{self.hub}.ai_kw": self.values(self.block.p_kw, keys)}

    def after_solve(self, result: Any, alerts: list[str]) -> None:
        b = self.block
        assert b is not None
        cid = self.device_id
        result.ai_missed_kwh[cid] = float(sum(pyo.value(b.missed_kwh[j]) for j in b.J))
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
