"""Estimated plant state from telemetry, its history for forecasts, and the hourly shared-energy
log. Pure and JSON-serialisable (:meth:`PlantState.to_dict`), so the daemon persists it after
every step and a restart resumes where it stopped.

Hourly shared energy (SPEC §6 through :mod:`ems.accounting.rules`): meter energy counters are read
at every hour boundary — interpolated linearly between the samples around it, so a daemon that
was down across a boundary still closes that hour — and each closed hour logs Σ import, Σ export,
shared = min(Σ export, Σ import) in integer Wh and its TIP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from ems.accounting.rules import PZ_REFERENCE_EUR_PER_MWH, power_band, tip_eur
from ems.techs.ai_cluster import BatchJob
from ems.techs.ev_charge_points import EvSession
from ems.techs.registry import device_registrations

#: Device kinds of the hubs' PODs: their import/export counters close the shared-energy hours.
_COUNTER_KINDS = frozenset(r.device_kind for r in device_registrations() if r.tech.grid_connection)
#: The POD meter of a hub (its grid connection's device): ``(hub, kind, "main")``.
METER_KIND: str = sorted(_COUNTER_KINDS)[0]

DeviceKey = tuple[str, str, str]


def _k(key: DeviceKey) -> str:
    return "/".join(key)


def _unk(s: str) -> DeviceKey:
    a, b, c = s.split("/")
    return (a, b, c)


@dataclass
class PlantState:
    latest: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # "hub/kind/id" -> payload (JSON) with ts
    load_history: dict[str, dict[str, float]] = field(default_factory=dict)  # hub -> {iso ts: kW}
    pv_history: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # yield column -> {iso ts: kW/kWp}
    counters: dict[str, list[float]] = field(
        default_factory=dict
    )  # hub -> [epoch s, import kWh, export kWh]
    boundaries: dict[str, dict[str, list[float]]] = field(
        default_factory=dict
    )  # hub -> {hour epoch: [imp, exp]}
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # hour epoch -> closed hour row
    last_step: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    ai_job_book: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # "hub/kind/id" -> job id -> latest announcement
    ai_jobs_closed: list[dict[str, Any]] = field(
        default_factory=list
    )  # done/cancelled/expired (last 200)
    inflexible: dict[str, str] = field(
        default_factory=dict
    )  # "hub/kind/id" -> why the device refuses setpoints (the plan does not count on it)

    # ------------------------------------------------------------------ ingest
    def ingest(self, key: DeviceKey, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Store a validated payload (JSON-able dict with ISO ``ts``); returns newly closed hours."""
        hub, kind, _dev = key
        prev = self.latest.get(_k(key))
        if prev is not None and pd.Timestamp(prev["ts"]) > pd.Timestamp(payload["ts"]):
            return []  # out of order: keep the newer one
        self.latest[_k(key)] = payload
        if (
            kind in _COUNTER_KINDS
            and payload.get("import_e_kwh") is not None
            and payload.get("export_e_kwh") is not None
        ):
            return self._counter(
                hub,
                pd.Timestamp(payload["ts"]).timestamp(),
                float(payload["import_e_kwh"]),
                float(payload["export_e_kwh"]),
            )
        return []

    def _counter(self, hub: str, t: float, imp: float, exp: float) -> list[dict[str, Any]]:
        prev = self.counters.get(hub)
        self.counters[hub] = [t, imp, exp]
        if prev is None and t % 3600 == 0:  # first sample exactly on an hour boundary
            self.boundaries.setdefault(hub, {})[str(int(t))] = [imp, exp]
            return []
        if prev is None or t <= prev[0]:
            return []
        t0, i0, e0 = prev
        if (
            imp < i0 or exp < e0
        ):  # meter reset/replacement: the hour is left to accounting's correction
            return []
        b = self.boundaries.setdefault(hub, {})
        h = math.floor(t0 / 3600) * 3600 + 3600
        while h <= t:
            f = (h - t0) / (t - t0)
            b[str(int(h))] = [i0 + f * (imp - i0), e0 + f * (exp - e0)]
            h += 3600
        return self._close_hours()

    def _close_hours(self) -> list[dict[str, Any]]:
        hubs = list(self.boundaries)
        if not hubs:
            return []
        common = set.intersection(*(set(self.boundaries[h]) for h in hubs))
        closed = []
        for hs in sorted(common, key=int):
            start = str(int(hs) - 3600)
            if start in self.ledger or not all(start in self.boundaries[h] for h in hubs):
                continue
            imp = {h: self.boundaries[h][hs][0] - self.boundaries[h][start][0] for h in hubs}
            exp = {h: self.boundaries[h][hs][1] - self.boundaries[h][start][1] for h in hubs}
            imp_wh, exp_wh = round(1000 * sum(imp.values())), round(1000 * sum(exp.values()))
            row = {
                "hour_utc": int(start),
                "import_wh": imp_wh,
                "export_wh": exp_wh,
                "shared_wh": min(imp_wh, exp_wh),
                "by_hub": {h: [round(1000 * imp[h]), round(1000 * exp[h])] for h in hubs},
            }
            self.ledger[start] = row
            closed.append(row)
        # keep boundaries of the last day only
        cutoff = max((int(x) for x in common), default=0) - 86400
        for h in hubs:
            self.boundaries[h] = {k: v for k, v in self.boundaries[h].items() if int(k) >= cutoff}
        return closed

    # ------------------------------------------------------------------ estimates
    def age_s(self, key: DeviceKey, now: pd.Timestamp) -> float | None:
        p = self.latest.get(_k(key))
        return None if p is None else (now - pd.Timestamp(p["ts"])).total_seconds()

    def value(self, key: DeviceKey, name: str, default: float = 0.0) -> float:
        p = self.latest.get(_k(key))
        v = None if p is None else p.get(name)
        return default if v is None else float(v)

    def hub_load_kw(self, hub: str, devices_kw: float = 0.0) -> float | None:
        """Load = import − export + ``devices_kw`` (what the hub's devices measured: generation +,
        flexible use −; see :meth:`ems.techs.base.Technology.measured_el_kw`), None without a
        meter reading."""
        meter = (hub, METER_KIND, "main")
        if _k(meter) not in self.latest:
            return None
        load = self.value(meter, "import_p_kw") - self.value(meter, "export_p_kw")
        return max(load + devices_kw, 0.0)

    def record_history(
        self,
        at: pd.Timestamp,
        loads: dict[str, float | None],
        yields: dict[str, float | None],
        keep_days: float = 35,
    ) -> None:
        iso = at.isoformat()
        for hub, v in loads.items():
            if v is not None:
                self.load_history.setdefault(hub, {})[iso] = round(v, 3)
        for col, v in yields.items():
            if v is not None:
                self.pv_history.setdefault(col, {})[iso] = round(v, 5)
        cut = (at - pd.Timedelta(days=keep_days)).isoformat()
        for store in (self.load_history, self.pv_history):
            for k, hist in store.items():
                if len(hist) > 96 * keep_days + 8:
                    store[k] = {t: v for t, v in hist.items() if t >= cut}

    @staticmethod
    def series(hist: dict[str, float] | None) -> pd.Series:
        if not hist:
            return pd.Series(dtype=float)
        s = pd.Series(hist, dtype=float)
        s.index = pd.to_datetime(s.index, utc=True)
        return s.sort_index()

    def ev_session(
        self, key: DeviceKey, start: pd.Timestamp, dt_h: float, default_stay_h: float = 8.0
    ) -> EvSession | None:
        p = self.latest.get(_k(key))
        if not p or not p.get("plugged"):
            return None
        need = max(
            float(p.get("requested_e_kwh") or 0.0) - float(p.get("session_e_kwh") or 0.0), 0.0
        )
        dep = (
            pd.Timestamp(p["departure"])
            if p.get("departure")
            else pd.Timestamp(p["ts"]) + pd.Timedelta(hours=default_stay_h)
        )
        steps = max(1, math.ceil((dep - start).total_seconds() / 3600 / dt_h - 1e-9))
        p_car = p.get("vehicle_p_max_kw")
        return EvSession(
            need_kwh=need, departure_step=steps, p_vehicle_kw=float(p_car) if p_car else None
        )

    def ingest_job(self, key: DeviceKey, payload: dict[str, Any]) -> bool:
        """Take a validated job announcement (latest per job id wins); True when it adds work
        (a new job, or more energy still to run), which triggers an on-demand step."""
        book = self.ai_job_book.setdefault(_k(key), {})
        jid = str(payload["job_id"])
        prev = book.get(jid)
        if prev is not None and pd.Timestamp(prev["ts"]) > pd.Timestamp(payload["ts"]):
            return False  # out of order
        if payload.get("status") in ("done", "cancelled"):
            if prev is not None:
                del book[jid]
            self.ai_jobs_closed = (self.ai_jobs_closed + [{"cluster": _k(key), **payload}])[-200:]
            return False
        book[jid] = payload
        left = _job_left_kwh(payload)
        return left > 1e-6 and (prev is None or left > _job_left_kwh(prev) + 1e-6)

    def expire_jobs(self, now: pd.Timestamp, grace_h: float = 48.0) -> list[str]:
        """Drop jobs whose deadline passed more than ``grace_h`` ago without a done/cancelled
        message (the scheduler lost them); returns an alert per dropped job."""
        alerts = []
        for ck, book in self.ai_job_book.items():
            for jid, p in list(book.items()):
                if pd.Timestamp(p["deadline"]) + pd.Timedelta(hours=grace_h) < now:
                    del book[jid]
                    self.ai_jobs_closed = (
                        self.ai_jobs_closed + [{"cluster": ck, **p, "status": "expired"}]
                    )[-200:]
                    alerts.append(
                        f"AI job {ck}/{jid} dropped: deadline {p['deadline']} passed {grace_h:g} h ago "
                        "with no done/cancelled announcement"
                    )
        return alerts

    def pz_feed(self) -> pd.Series | None:
        """The latest day-ahead zonal price curve (device ``market/price/pz``) on the UTC
        quarter-hour grid (€/MWh), or None."""
        p = self.latest.get("market/price/pz")
        if not p:
            return None
        step = pd.Timedelta(minutes=int(p.get("step_min", 60)))
        start = pd.Timestamp(p["start"]).tz_convert("UTC")
        hourly = pd.Series(
            [float(v) for v in p["pz_eur_per_mwh"]],
            index=pd.date_range(start, periods=len(p["pz_eur_per_mwh"]), freq=step),
        )
        grid = pd.date_range(
            start.floor("15min"), start + step * len(hourly), freq="15min", inclusive="left"
        )
        return hourly.reindex(grid, method="ffill")

    def ai_jobs(
        self, key: DeviceKey, start: pd.Timestamp, dt_h: float, n_steps: int, max_jobs: int = 8
    ) -> list[BatchJob]:
        """Batch jobs of a cluster over the horizon starting at ``start``.

        With job announcements (``…/job``): one job per announced job with the energy still to
        run, its window in horizon steps (a deadline past the horizon end is clipped to it, so the
        plan finishes every job inside the horizon: conservative), a late job due in the first
        step; more jobs than the model's slots → the latest-deadline ones are merged into the last
        slot, due at the earliest of their deadlines (conservative). Without announcements, the
        cluster's aggregated state: its queue as one job due at its next deadline."""
        book = self.ai_job_book.get(_k(key))
        if book is not None:
            jobs = []
            for jid, p in book.items():
                left = _job_left_kwh(p)
                if left <= 1e-6:
                    continue
                first = 0
                if p.get("earliest_start"):
                    first = max(
                        0,
                        math.ceil(
                            (pd.Timestamp(p["earliest_start"]) - start).total_seconds()
                            / 3600
                            / dt_h
                            - 1e-9
                        ),
                    )
                if first >= n_steps:
                    continue  # starts after the horizon
                due = math.floor(
                    (pd.Timestamp(p["deadline"]) - start).total_seconds() / 3600 / dt_h + 1e-9
                )
                due = min(max(due, first + 1, 1), n_steps)
                jobs.append(BatchJob(jid, left, first, due, p.get("p_max_kw")))
            jobs.sort(key=lambda j: (j.deadline_step, j.job_id))
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
        p = self.latest.get(_k(key))
        if not p or float(p.get("queued_e_kwh") or 0.0) <= 0:
            return []
        dl = (
            pd.Timestamp(p["next_deadline"])
            if p.get("next_deadline")
            else start + pd.Timedelta(hours=n_steps * dt_h)
        )
        steps = max(1, math.floor((dl - start).total_seconds() / 3600 / dt_h + 1e-9))
        return [BatchJob("queue", float(p["queued_e_kwh"]), 0, min(steps, n_steps))]

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "latest": self.latest,
            "load_history": self.load_history,
            "pv_history": self.pv_history,
            "counters": self.counters,
            "boundaries": self.boundaries,
            "ledger": self.ledger,
            "last_step": self.last_step,
            "alerts": self.alerts[-50:],
            "rejected": self.rejected,
            "ai_job_book": self.ai_job_book,
            "ai_jobs_closed": self.ai_jobs_closed,
            "inflexible": self.inflexible,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlantState:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _job_left_kwh(p: dict[str, Any]) -> float:
    return max(float(p["energy_kwh"]) - float(p.get("done_e_kwh") or 0.0), 0.0)


def tip_of_hour(
    shared_wh: int, pz_eur_per_mwh: float, plant_kw: float, fc_eur_per_mwh: float = 10.0
) -> float:
    """TIP (€) of an hour's shared energy with the accounting rules (power band, Pz, FC north)."""
    base, cap = power_band(Decimal(str(plant_kw)))
    rate = min(
        cap, base + max(Decimal(0), PZ_REFERENCE_EUR_PER_MWH - Decimal(str(pz_eur_per_mwh)))
    ) + Decimal(str(fc_eur_per_mwh))
    return float(tip_eur(int(shared_wh), rate, Decimal(0)))


__all__ = ["PlantState", "tip_of_hour", "DeviceKey"]
_ = _unk
