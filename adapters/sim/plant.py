"""A simulated plant for the case-study site (``ems run --simulate``).

Exogenous inputs of a day are drawn once from a seed (:class:`Exogenous`): loads = the site profile
× AR(1) noise, PV = profile yield × AR(1) cloud factor, EVs of the scenario arriving and leaving
with jittered times and energy requests, AI batch jobs arriving with energy and deadlines. Two
policies run on the same draws: the EMS's setpoints (received over MQTT) and the no-optimisation
baseline (PV self-consumption battery rule, EVs at full power on arrival, AI batch work as soon as
it arrives). Energy balances close by construction at every meter:
``import − export = load + battery + EV + AI − PV`` per hub and step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from adapters.sim.thermal_plant import ThermalPlant, draw_columns
from ems.operation import fallback
from ems.operation.assembly import OperationSetup
from ems.operation.forecast import Forecaster

#: A batch job is done when less than this is left (1 Wh: below setpoint resolution).
JOB_DONE_KWH = 1e-3


@dataclass
class EvVisit:
    vehicle: str
    hub: str
    arrive: pd.Timestamp
    depart: pd.Timestamp
    need_kwh: float
    p_vehicle_kw: float


@dataclass
class AiJob:
    job_id: str
    cluster: str
    arrive: pd.Timestamp
    deadline: pd.Timestamp
    e_kwh: float


@dataclass
class Exogenous:
    times: pd.DatetimeIndex
    load_kw: dict[str, np.ndarray]
    yield_kw_per_kwp: dict[str, np.ndarray]
    price_buy: np.ndarray
    price_sell: np.ndarray
    visits: list[EvVisit]
    jobs: list[AiJob]
    columns: dict[str, np.ndarray] = field(
        default_factory=dict
    )  # thermal demands, t_amb_c, solar thermal

    @classmethod
    def draw(
        cls,
        setup: OperationSetup,
        fc: Forecaster,
        start: pd.Timestamp,
        steps: int,
        dt_h: float,
        seed: int = 1,
        tz: str = "Europe/Rome",
    ) -> Exogenous:
        rng = np.random.default_rng(seed)
        times = pd.date_range(start, periods=steps, freq=pd.Timedelta(hours=dt_h))

        def ar1(sd: float, rho: float = 0.9) -> np.ndarray:
            x = np.zeros(steps)
            e = rng.normal(0, sd * math.sqrt(1 - rho**2), steps)
            for i in range(steps):
                x[i] = (rho * x[i - 1] if i else rng.normal(0, sd)) + e[i]
            return x

        loads = {
            h: np.clip(fc.profile.at(d.column, times) * (1 + ar1(0.06)), 0, None)
            for h, d in setup.demands.items()
        }
        cloud = np.clip(1.0 + ar1(0.18, 0.85), 0.25, 1.15)
        yields = {
            c: np.clip(fc.profile.at(c, times) * cloud, 0, 1.1) for c in setup.yield_columns()
        }
        visits: list[EvVisit] = []
        local0 = start.tz_convert(tz).normalize()
        for day in range(int(math.ceil(steps * dt_h / 24)) + 1):
            d0 = local0 + pd.Timedelta(days=day)
            for hub in setup.ev_points:
                spec = next(h for h in setup.scenario.hubs if h.id == hub)
                for v in spec.vehicles:
                    if v.days == "weekday" and d0.weekday() >= 5:
                        continue
                    arr = d0 + pd.Timedelta(hours=v.arrival_h + rng.normal(0, 0.4))
                    dep = d0 + pd.Timedelta(hours=v.departure_h + rng.normal(0, 0.4))
                    if dep <= arr + pd.Timedelta(hours=1):
                        dep = arr + pd.Timedelta(hours=1)
                    need = float(
                        np.clip(
                            v.need_kwh_per_day * rng.uniform(0.7, 1.5), 1.0, v.battery_kwh * 0.5
                        )
                    )
                    visits.append(
                        EvVisit(
                            v.name,
                            hub,
                            arr.tz_convert("UTC"),
                            dep.tz_convert("UTC"),
                            need,
                            v.p_max_kw,
                        )
                    )
        jobs: list[AiJob] = []
        for cid, ai in setup.ai_clusters.items():
            t = start
            k = 0
            while t < times[-1]:
                # the first job within the first hour (a cluster has work queued when the EMS starts)
                t = t + pd.Timedelta(hours=float(rng.uniform(3, 8) if k else rng.uniform(0, 1)))
                e = float(rng.uniform(0.6, 2.5)) * (ai.rated_kw - ai.floor_kw)
                jobs.append(
                    AiJob(
                        f"{cid}-job{k}",
                        cid,
                        t.floor("15min"),
                        (t + pd.Timedelta(hours=float(rng.uniform(6, 14)))).floor("15min"),
                        e,
                    )
                )
                k += 1
        return cls(
            times,
            loads,
            yields,
            fc.price_buy(times, tz),
            fc.price_sell(times),
            visits,
            jobs,
            draw_columns(setup, fc, times, seed),
        )


@dataclass
class PlantSim:
    """Physical state of the simulated plant and one policy's record."""

    setup: OperationSetup
    exo: Exogenous
    dt_h: float
    ev_safe_kw: float = 3.7
    soc: dict[str, float] = field(default_factory=dict)
    counters: dict[str, list[float]] = field(
        default_factory=dict
    )  # hub -> [import kWh, export kWh]
    plugged: dict[tuple[str, str], dict[str, Any]] = field(
        default_factory=dict
    )  # (hub, point) -> session
    waiting: list[dict[str, Any]] = field(default_factory=list)
    queue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cluster -> jobs left
    ev_done: list[dict[str, Any]] = field(default_factory=list)
    jobs_done: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, float]] = field(default_factory=list)
    i: int = 0
    last_p: dict[str, float] = field(default_factory=dict)
    thermal: ThermalPlant | None = (
        None  # multi-energy sites: CHP, heat pumps, boilers, stores, DH, links
    )

    def __post_init__(self) -> None:
        if self.thermal is None and self.setup.has_thermal():
            self.thermal = ThermalPlant(self.setup, self.exo.columns, self.dt_h)
        for hub in self.setup.hubs:
            self.soc.setdefault(hub, 0.5)
            self.counters.setdefault(hub, [1000.0, 1000.0])
        for cid in self.setup.ai_clusters:
            self.queue.setdefault(cid, [])

    @property
    def now(self) -> pd.Timestamp:
        return self.exo.times[0] + pd.Timedelta(hours=self.i * self.dt_h)

    # ------------------------------------------------------------------ arrivals
    def _arrivals(self) -> None:
        now, end = self.now, self.now + pd.Timedelta(hours=self.dt_h)
        for v in self.exo.visits:
            if now <= v.arrive < end or (self.i == 0 and v.arrive < now < v.depart):
                self.waiting.append(
                    {
                        "vehicle": v.vehicle,
                        "hub": v.hub,
                        "depart": v.depart.isoformat(),
                        "need_kwh": v.need_kwh,
                        "got_kwh": 0.0,
                        "p_vehicle_kw": v.p_vehicle_kw,
                        "arrive": v.arrive.isoformat(),
                    }
                )
        for j in self.exo.jobs:
            if now <= j.arrive < end:
                self.queue[j.cluster].append(
                    {
                        "job": j.job_id,
                        "e_kwh": j.e_kwh,
                        "left_kwh": j.e_kwh,
                        "deadline": j.deadline.isoformat(),
                        "arrive": j.arrive.isoformat(),
                    }
                )
        # departures (also of waiting vehicles that never got a charger)
        for key, s in list(self.plugged.items()):
            if pd.Timestamp(s["depart"]) <= now:
                self.ev_done.append(s)
                del self.plugged[key]
        for s in list(self.waiting):
            if pd.Timestamp(s["depart"]) <= now:
                self.ev_done.append(s)
                self.waiting.remove(s)
        for hub, evp in self.setup.ev_points.items():
            for c in evp.points:
                if (hub, c.point_id) not in self.plugged:
                    w = next((s for s in self.waiting if s["hub"] == hub), None)
                    if w is not None:
                        self.waiting.remove(w)
                        self.plugged[(hub, c.point_id)] = w

    def begin_step(self) -> None:
        """Arrivals and departures at the start of the current step."""
        self._arrivals()

    # ------------------------------------------------------------------ telemetry
    def telemetry(self) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
        ts = self.now.isoformat()
        out: list[tuple[tuple[str, str, str], dict[str, Any]]] = []
        i = min(self.i, len(self.exo.times) - 1)
        for hub in self.setup.hubs:
            imp, exp = self.counters[hub]
            net = self.last_p.get(f"{hub}.net", 0.0)
            out.append(
                (
                    (hub, "meter", "main"),
                    {
                        "ts": ts,
                        "import_p_kw": round(max(net, 0), 3),
                        "export_p_kw": round(max(-net, 0), 3),
                        "import_e_kwh": round(imp, 4),
                        "export_e_kwh": round(exp, 4),
                    },
                )
            )
            for pv in self.setup.pvs.get(hub, []):
                p = (pv.fixed_kwp or 0) * self.exo.yield_kw_per_kwp[pv.spec.yield_column][
                    max(i - 1, 0)
                ]
                out.append(((hub, "pv", pv.name[len(hub) + 1 :]), {"ts": ts, "p_kw": round(p, 3)}))
            if hub in self.setup.batteries:
                out.append(
                    (
                        (hub, "battery", "bess"),
                        {
                            "ts": ts,
                            "p_kw": round(self.last_p.get(f"{hub}.bat", 0.0), 3),
                            "soc_pct": round(100 * self.soc[hub], 3),
                        },
                    )
                )
            for c in self.setup.ev_points[hub].points if hub in self.setup.ev_points else []:
                s = self.plugged.get((hub, c.point_id))
                if s is None:
                    out.append(
                        ((hub, "ev_charger", c.point_id), {"ts": ts, "plugged": False, "p_kw": 0.0})
                    )
                else:
                    out.append(
                        (
                            (hub, "ev_charger", c.point_id),
                            {
                                "ts": ts,
                                "plugged": True,
                                "p_kw": round(self.last_p.get(f"{hub}.{c.point_id}", 0.0), 3),
                                "requested_e_kwh": round(s["need_kwh"], 3),
                                "session_e_kwh": round(min(s["got_kwh"], s["need_kwh"]), 3),
                                "departure": s["depart"],
                                "vehicle_p_max_kw": s["p_vehicle_kw"],
                                "cars_waiting": sum(1 for w in self.waiting if w["hub"] == hub),
                            },
                        )
                    )
        for cid, ai in self.setup.ai_clusters.items():
            q = [j for j in self.queue[cid] if j["left_kwh"] > JOB_DONE_KWH]
            payload: dict[str, Any] = {
                "ts": ts,
                "p_kw": round(self.last_p.get(f"ai.{cid}", ai.floor_kw), 3),
                "queued_e_kwh": round(sum(j["left_kwh"] for j in q), 3),
                "jobs_queued": len(q),
            }
            if q:
                payload["next_deadline"] = min(j["deadline"] for j in q)
            out.append(((ai.hub, "ai_cluster", cid), payload))
        if self.thermal is not None:
            out += self.thermal.telemetry(ts, i)
        return out

    def job_announcements(self) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
        """What the clusters' schedulers publish on ``…/ai_cluster/<id>/job``: every job still
        queued (with its progress) and, once, every job finished since the last call."""
        ts = self.now.isoformat()
        out: list[tuple[tuple[str, str, str], dict[str, Any]]] = []
        for cid, ai in self.setup.ai_clusters.items():
            for j in self.queue[cid]:
                done = j["e_kwh"] - j["left_kwh"]
                out.append(
                    (
                        (ai.hub, "ai_cluster", cid),
                        {
                            "ts": ts,
                            "job_id": j["job"],
                            "status": "running" if done > 1e-6 else "queued",
                            "energy_kwh": round(j["e_kwh"], 4),
                            "done_e_kwh": round(done, 4),
                            "earliest_start": j.get("arrive", ts),
                            "deadline": j["deadline"],
                        },
                    )
                )
        for j in self.jobs_done:
            if not j.get("announced"):
                cid = next(c for c, q in self.exo_clusters().items() if j["job"] in q)
                hub = self.setup.ai_clusters[cid].hub
                out.append(
                    (
                        (hub, "ai_cluster", cid),
                        {
                            "ts": ts,
                            "job_id": j["job"],
                            "status": "done",
                            "energy_kwh": round(j["e_kwh"], 4),
                            "done_e_kwh": round(j["e_kwh"], 4),
                            "earliest_start": j.get("arrive", ts),
                            "deadline": j["deadline"],
                        },
                    )
                )
                j["announced"] = True
        return out

    def exo_clusters(self) -> dict[str, set[str]]:
        """Cluster id -> ids of its jobs (from the exogenous draw)."""
        out: dict[str, set[str]] = {cid: set() for cid in self.setup.ai_clusters}
        for j in self.exo.jobs:
            out.setdefault(j.cluster, set()).add(j.job_id)
        return out

    # ------------------------------------------------------------------ physics
    def _setpoint(
        self,
        setpoints: dict[tuple[str, str, str], dict[str, Any]] | None,
        key: tuple[str, str, str],
        name: str,
    ) -> float | None:
        """A setpoint value still valid now (``None``: missing, expired, or the baseline)."""
        if setpoints is None:
            return None
        v = setpoints.get(key)
        if not v or pd.Timestamp(v["valid_until"]) <= self.now:
            return None
        return float(v[name])

    def _ev_step(self, hub: str, setpoints: dict | None) -> float:
        """Charge the plugged vehicles of a hub (kW drawn)."""
        dt, ev = self.dt_h, 0.0
        for c in self.setup.ev_points[hub].points if hub in self.setup.ev_points else []:
            sess = self.plugged.get((hub, c.point_id))
            p = 0.0
            if sess is not None:
                owed = max(sess["need_kwh"] - sess["got_kwh"], 0.0)
                want = self._setpoint(setpoints, (hub, "ev_charger", c.point_id), "p_kw")
                if setpoints is None:  # baseline: full power on arrival
                    want = min(c.p_kw, sess["p_vehicle_kw"])
                elif want is None:
                    want = fallback.ev_p_kw(owed, c.p_kw, self.ev_safe_kw, sess["p_vehicle_kw"])
                p = max(0.0, min(want, c.p_kw, sess["p_vehicle_kw"], owed / (c.eta * dt)))
                sess["got_kwh"] += p * c.eta * dt
            self.last_p[f"{hub}.{c.point_id}"] = p
            ev += p
        return ev

    def _ev_unplug(self, hub: str) -> None:
        """Charged vehicles leave: the driver unplugs and frees the charger."""
        for c in self.setup.ev_points[hub].points if hub in self.setup.ev_points else []:
            sess = self.plugged.get((hub, c.point_id))
            if sess is not None and sess["got_kwh"] >= sess["need_kwh"] - 1e-6:
                sess["done_at"] = (self.now + pd.Timedelta(hours=self.dt_h)).isoformat()
                self.ev_done.append(sess)
                del self.plugged[(hub, c.point_id)]

    def _ai_step(self, hub: str, setpoints: dict | None, row: dict[str, float]) -> float:
        """Run the AI clusters of a hub: inference floor always, batch work within the cap."""
        dt, now, ai_kw = self.dt_h, self.now, 0.0
        for cid, ai in self.setup.ai_clusters.items():
            if ai.hub != hub:
                continue
            cap = self._setpoint(setpoints, (hub, "ai_cluster", cid), "p_cap_kw")
            if setpoints is None:
                cap = ai.rated_kw  # baseline: batch work runs as soon as it arrives
            elif cap is None:
                cap = ai.floor_kw
            cap = min(max(cap, ai.floor_kw), ai.rated_kw)  # inference is always served
            e_avail = (cap - ai.floor_kw) * dt
            used = 0.0
            for j in sorted(self.queue[cid], key=lambda j: j["deadline"]):
                take = min(j["left_kwh"], e_avail - used)
                if take <= 0:
                    continue
                j["left_kwh"] -= take
                used += take
                if j["left_kwh"] <= JOB_DONE_KWH:
                    j["done_at"] = (now + pd.Timedelta(hours=dt)).isoformat()
                    self.jobs_done.append(j)
            self.queue[cid] = [j for j in self.queue[cid] if j["left_kwh"] > JOB_DONE_KWH]
            ai_kw += ai.floor_kw + used / dt
            row[f"ai_batch_kw.{cid}"] = used / dt
            self.last_p[f"ai.{cid}"] = ai.floor_kw + used / dt
        return ai_kw

    def _battery_step(self, hub: str, setpoints: dict | None, net_kw: float) -> float:
        """Charge (+) or discharge (−) the hub's battery within its limits; ``net_kw`` is the hub's
        net load without it (the self-consumption rule of the baseline and the safe mode)."""
        if hub not in self.setup.batteries:
            return 0.0
        b, dt = self.setup.batteries[hub], self.dt_h
        cap_kwh = b.capacity.value() if b.capacity else 0.0
        spec = b.spec
        want = self._setpoint(setpoints, (hub, "battery", "bess"), "p_kw")
        if want is None:  # baseline and safe mode: PV self-consumption
            want = fallback.battery_p_kw(
                net_kw,
                self.soc[hub],
                cap_kwh,
                spec.c_rate_per_h * cap_kwh,
                spec.soc_min,
                spec.soc_max,
                dt,
                spec.eta_charge,
                spec.eta_discharge,
            )
        p_max = spec.c_rate_per_h * cap_kwh
        e = self.soc[hub] * cap_kwh
        if want >= 0:
            room = max(0.0, (spec.soc_max * cap_kwh - e) / (spec.eta_charge * dt))
            bat_kw = min(want, p_max, room)
            e += bat_kw * spec.eta_charge * dt
        else:
            avail = max(0.0, (e - spec.soc_min * cap_kwh) * spec.eta_discharge / dt)
            bat_kw = -min(-want, p_max, avail)
            e += bat_kw / spec.eta_discharge * dt
        self.soc[hub] = e / cap_kwh if cap_kwh > 0 else 0.0
        return bat_kw

    def _meter_step(self, hub: str, net: float, pv: float) -> tuple[float, float]:
        """The POD: the inverters' export limiter, then the import/export counters."""
        dt, grid = self.dt_h, self.setup.grids.get(hub)
        if grid is not None and net < -grid.contract_kw and pv > 0:
            cut = min(pv, -grid.contract_kw - net)
            pv, net = pv - cut, net + cut
        self.counters[hub][0] += max(net, 0.0) * dt
        self.counters[hub][1] += max(-net, 0.0) * dt
        self.last_p[f"{hub}.net"] = net
        return net, pv

    def advance(
        self, setpoints: dict[tuple[str, str, str], dict[str, Any]] | None
    ) -> dict[str, float]:
        """Run one step with the EMS's setpoints (``None``: the no-optimisation baseline).
        Expired or missing setpoints → the device's own safe mode."""
        s, i = self.setup, self.i
        row: dict[str, float] = {"i": i}
        surplus = 0.0
        th_el = (
            self.thermal.advance(i, self.now, setpoints, row) if self.thermal is not None else {}
        )
        for hub in s.hubs:
            load = float(self.exo.load_kw[hub][i]) if hub in self.exo.load_kw else 0.0
            pv = sum(
                (p.fixed_kwp or 0) * float(self.exo.yield_kw_per_kwp[p.spec.yield_column][i])
                for p in s.pvs.get(hub, [])
            )
            ev = self._ev_step(hub, setpoints)
            ai_kw = self._ai_step(hub, setpoints, row)
            # thermal: HP + aux − CHP + give − take
            other = load + ev + ai_kw - pv + th_el.get(hub, 0.0)
            bat_kw = self._battery_step(hub, setpoints, other)
            self._ev_unplug(hub)
            net, pv = self._meter_step(hub, other + bat_kw, pv)
            self.last_p[f"{hub}.bat"] = bat_kw
            row.update(
                {
                    f"{hub}.load_kw": load,
                    f"{hub}.pv_kw": pv,
                    f"{hub}.ev_kw": ev,
                    f"{hub}.ai_kw": ai_kw,
                    f"{hub}.battery_kw": bat_kw,
                    f"{hub}.import_kw": max(net, 0.0),
                    f"{hub}.export_kw": max(-net, 0.0),
                }
            )
            # PV the hub would otherwise export
            hub_surplus = max(pv - load - ev - max(bat_kw, 0.0), 0.0)
            row[f"{hub}.surplus_kw"] = hub_surplus
            for cid, ai in s.ai_clusters.items():
                if ai.hub == hub:
                    row[f"ai_from_surplus_kw.{cid}"] = min(
                        row.get(f"ai_batch_kw.{cid}", 0.0), hub_surplus
                    )
            surplus += pv - load - ev - max(bat_kw, 0.0)
        row["surplus_kw"] = max(surplus, 0.0)
        row["price_buy"] = float(self.exo.price_buy[i])
        row["price_sell"] = float(self.exo.price_sell[i])
        self.rows.append(row)
        self.i += 1
        return row

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "soc": self.soc,
            "counters": self.counters,
            "i": self.i,
            "last_p": self.last_p,
            "plugged": [[list(k), v] for k, v in self.plugged.items()],
            "waiting": self.waiting,
            "queue": self.queue,
            "ev_done": self.ev_done,
            "jobs_done": self.jobs_done,
            "rows": self.rows,
            "thermal": self.thermal.to_dict() if self.thermal is not None else None,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.soc, self.counters, self.i, self.last_p = d["soc"], d["counters"], d["i"], d["last_p"]
        self.plugged = {tuple(k): v for k, v in d["plugged"]}  # type: ignore[misc]
        self.waiting, self.queue, self.ev_done, self.jobs_done, self.rows = (
            d["waiting"],
            d["queue"],
            d["ev_done"],
            d["jobs_done"],
            d["rows"],
        )
        if self.thermal is not None:
            self.thermal.load_dict(d.get("thermal"))


def kpis(sim: PlantSim, incentive_eur_per_mwh: float) -> dict[str, float]:
    """Day KPIs of one policy from its executed steps."""
    df = pd.DataFrame(sim.rows)
    if df.empty:
        return {}
    dt = sim.dt_h
    hubs = sim.setup.hubs
    imp = sum(df[f"{h}.import_kw"] for h in hubs)
    exp = sum(df[f"{h}.export_kw"] for h in hubs)
    pv = sum(df[f"{h}.pv_kw"] for h in hubs)
    cost = float((imp * df.price_buy - exp * df.price_sell).sum() * dt)
    # hourly shared energy: min(Σ export, Σ import) of each hour
    hour = df["i"] // int(round(1 / dt))
    shared = float(
        pd.concat([imp * dt, exp * dt], axis=1).groupby(hour.to_numpy()).sum().min(axis=1).sum()
    )
    incentive = shared * incentive_eur_per_mwh / 1000.0
    ai_cols = [c for c in df.columns if c.startswith("ai_batch_kw.")]
    ai_batch = sum(df[c] for c in ai_cols) if ai_cols else pd.Series(0.0, index=df.index)
    sur_cols = [c for c in df.columns if c.startswith("ai_from_surplus_kw.")]
    ai_surplus = float(sum(df[c].sum() for c in sur_cols) * dt)
    ev_kwh = float(sum(df[f"{h}.ev_kw"] for h in hubs).sum() * dt)
    done = [s for s in sim.ev_done]
    met = sum(1 for s in done if s["got_kwh"] >= s["need_kwh"] - 0.05)
    jobs_late = sum(1 for j in sim.jobs_done if j.get("done_at", "") > j["deadline"])
    backlog = float(sum(j["left_kwh"] for q in sim.queue.values() for j in q))
    return {
        "cost_eur": cost,
        "net_cost_eur": cost - incentive,
        "net_cost_backlog_eur": cost - incentive + backlog * float(df.price_buy.mean()),
        "grid_import_kwh": float(imp.sum() * dt),
        "grid_export_kwh": float(exp.sum() * dt),
        "pv_kwh": float(pv.sum() * dt),
        "self_consumption_pct": 100.0 * (1 - float(exp.sum()) / float(pv.sum()))
        if pv.sum() > 0
        else 0.0,
        "shared_kwh": shared,
        "incentive_eur": incentive,
        # what a kWh of PV surplus is worth kept (purchase avoided) or exported (sale)
        "buy_price_pv_hours_eur_per_kwh": float(df.price_buy[pv > 0].mean())
        if (pv > 0).any()
        else 0.0,
        "sell_price_pv_hours_eur_per_kwh": float(df.price_sell[pv > 0].mean())
        if (pv > 0).any()
        else 0.0,
        "ai_batch_kwh": float(ai_batch.sum() * dt),
        "ai_from_surplus_kwh": ai_surplus,
        "ev_kwh": ev_kwh,
        "ev_sessions_done": float(len(done)),
        "ev_requests_met": float(met),
        "ai_jobs_done": float(len(sim.jobs_done)),
        "ai_jobs_late": float(jobs_late),
        "ai_queued_end_kwh": backlog,
    }
