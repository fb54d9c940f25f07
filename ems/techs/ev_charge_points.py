"""EV charge points: the operation-mode form of the EV fleet, one slot per installed charger,
sessions as Params.

Design mode's :class:`ems.techs.ev_fleet.EvFleet` decides which vehicle plugs where from a daily
schedule (binaries whose structure depends on arrival times). In operation the vehicles are
already plugged in or not, so the model is per charge point and linear. The fleet turns itself
into charge points (``EvFleet.for_operation``: one per installed charger, the same charger power,
mode and efficiency); what differs, by construction:

- presence: a vehicle's arrival/departure hours on every typical day (design) vs the session a
  charge point reports now, until its departure (operation); no future arrivals are planned;
- which charger: plug binaries and one plug-in a day (design) vs the charger the car is on;
- CC-CV taper above ``taper_soc`` (design) vs the vehicle's reported maximum power (operation);
- the energy: exactly the daily need on cyclic typical days (design) vs at least the request,
  a shortfall penalised instead of infeasible (operation).

For one session that the design schedules (the same window, need and prices, no taper), both
plan the same charging at the same cost: ``tests/techs/test_ev_parity.py``.

Operation constraints:

- ``p_charge_kw[c,t] ≤ p_max_kw[c] · present[c,t]`` (present: share of the step before departure);
- V2G points may also discharge with the same limit, never below ``e_floor_kwh``;
- ``Σ_t (η·p_charge − p_discharge/η)·Δt + short_kwh[c] ≥ need_kwh[c]`` and ≤ ``room_kwh[c]``:
  the vehicle leaves with the requested energy, or the shortfall is penalised (never infeasible);
- dumb chargers deliver full power until the request is met (``p_dumb_kw`` lower bound); so does
  a smart charger whose session is not ``controlled`` (it rejected the EMS's charging profile), and
  its V2G discharge is off (``v2g_ok`` = 0).

Every session quantity is a mutable Param, so a plug-in changes values only (no rebuild).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.config.schema import Catalogue, ChargerSpec
from ems.model.context import BuildContext
from ems.techs.base import Device, DeviceKey, Key, Raw, RuleState, Technology, device_state, rnd
from ems.techs.dashboard import Panel, Series
from ems.techs.kpi import KpiRow
from ems.techs.plant import BUS_EV, HubStep, PlantDevice

REPORT_KWH = 0.01  # a planned EV shortfall above this is an alert


@dataclass(frozen=True)
class ChargePoint:
    """One physical charger: ``point_id`` is the MQTT device id."""

    point_id: str
    charger_type: str
    p_kw: float
    mode: str  # dumb | v1g | v2g
    eta: float = 0.92


@dataclass(frozen=True)
class EvSession:
    """A plugged vehicle: energy still to deliver before the departure step (exclusive)."""

    need_kwh: float
    departure_step: int
    p_vehicle_kw: float | None = None
    room_kwh: float | None = None  # battery room left (from vehicle SoC); None: unknown
    present_first: float = 1.0  # share of step 0 still plugged (on-demand steps mid-quarter)
    controlled: bool = True  # False: the charger refuses setpoints; planned as a dumb charger


def ev_p_kw(
    need_kwh: float, p_point_kw: float, safe_kw: float, p_vehicle_kw: float | None = None
) -> float:
    """Safe EV charging power (the rule-based fallback, SPEC §4): ``safe_kw`` capped by charger
    and vehicle while energy is owed."""
    if need_kwh <= 1e-6:
        return 0.0
    return max(0.0, min(safe_kw, p_point_kw, p_vehicle_kw or p_point_kw))


def session_from_state(
    p: dict[str, Any] | None, start: pd.Timestamp, dt_h: float, default_stay_h: float = 8.0
) -> EvSession | None:
    """The session a charger's latest state payload reports (None: nothing plugged): the energy
    still requested, the departure in horizon steps from ``start`` (``default_stay_h`` after
    the reading when the driver gave none), the vehicle's maximum power."""
    if not p or not p.get("plugged"):
        return None
    need = max(float(p.get("requested_e_kwh") or 0.0) - float(p.get("session_e_kwh") or 0.0), 0.0)
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


def charge_points(
    hub_sizes: dict[str, Any], cat: Catalogue, hub_chargers: list[Any]
) -> list[ChargePoint]:
    """One point per installed charger (``cp1``, ``cp2``… in the order of the scenario's types)."""
    points: list[ChargePoint] = []
    installed = hub_sizes.get("chargers", {}) or {}
    for ch in hub_chargers:
        spec: ChargerSpec = cat.get(ch.type, ChargerSpec, "chargers")
        n = int(installed.get(ch.type, ch.existing_units) or 0)
        for _ in range(n):
            points.append(
                ChargePoint(f"cp{len(points) + 1}", ch.type, spec.p_kw, spec.mode, spec.eta)
            )
    return points


class EvChargePoints(Technology):
    kind = "ev_charge_points"
    device_kind = "ev_charger"
    device_role = "charge_point"
    short_quantity = "ev_short_kwh"
    panels = (
        Panel(
            "hub",
            "EV charging: power, setpoint, vehicle SoC",
            "kW",
            (
                Series("p_kw", "$tag_device kW"),
                Series("p_kw", "$tag_device setpoint kW", "setpoint"),
                Series("vehicle_soc_pct", "$tag_device SoC %"),
            ),
            order=3,
        ),
        Panel(
            "hub",
            "EV sessions (plugged)",
            "",
            (Series("p_kw", "$tag_device", when="plugged"),),
            order=4,
            description="1 while a vehicle is plugged in",
        ),
    )

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return EvPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        points: list[ChargePoint],
        *,
        short_penalty_eur_per_kwh: float = 2.0,
        safe_kw: float = 3.7,
    ) -> None:
        super().__init__(name, hub)
        self.points = points
        self.short_penalty_eur_per_kwh = short_penalty_eur_per_kwh
        #: charging power while energy is owed and there is no plan (SITE.yaml ``ev_safe_kw``)
        self.safe_kw = safe_kw
        self.dt_h = 0.25

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        C = [c.point_id for c in self.points]
        pts = {c.point_id: c for c in self.points}
        self.dt_h = dt = ctx.grid.dt_h
        v2g = [c for c in C if pts[c].mode == "v2g"]
        blk.C = pyo.Set(initialize=C, ordered=True)
        blk.C2 = pyo.Set(initialize=v2g, ordered=True)
        blk.p_max_kw = pyo.Param(blk.C, initialize={c: pts[c].p_kw for c in C}, mutable=True)
        blk.v2g_ok = pyo.Param(blk.C, initialize=1.0, mutable=True)
        blk.present = pyo.Param(blk.C, ctx.T, initialize=0.0, mutable=True)
        blk.p_dumb_kw = pyo.Param(blk.C, ctx.T, initialize=0.0, mutable=True)
        blk.need_kwh = pyo.Param(blk.C, initialize=0.0, mutable=True)
        blk.room_kwh = pyo.Param(blk.C, initialize=0.0, mutable=True)
        blk.p_charge_kw = pyo.Var(
            blk.C, ctx.T, domain=pyo.NonNegativeReals, bounds=lambda b, c, p, t: (0, pts[c].p_kw)
        )
        blk.p_discharge_kw = pyo.Var(
            blk.C2, ctx.T, domain=pyo.NonNegativeReals, bounds=lambda b, c, p, t: (0, pts[c].p_kw)
        )
        blk.short_kwh = pyo.Var(blk.C, domain=pyo.NonNegativeReals)
        blk.charge_limit = pyo.Constraint(
            blk.C,
            ctx.T,
            rule=lambda b, c, p, t: b.p_charge_kw[c, p, t] <= b.p_max_kw[c] * b.present[c, p, t],
        )
        blk.discharge_limit = pyo.Constraint(
            blk.C2,
            ctx.T,
            rule=lambda b, c, p, t: (
                b.p_discharge_kw[c, p, t] <= b.p_max_kw[c] * b.present[c, p, t] * b.v2g_ok[c]
            ),
        )
        blk.dumb_full = pyo.Constraint(
            C,
            ctx.T,
            rule=lambda b, c, p, t: b.p_charge_kw[c, p, t] >= b.p_dumb_kw[c, p, t],
        )

        def stored(b: pyo.Block, c: str):
            e = sum(pts[c].eta * b.p_charge_kw[c, p, t] for p, t in ctx.T)
            if c in v2g:
                e -= sum(b.p_discharge_kw[c, p, t] / pts[c].eta for p, t in ctx.T)
            return e * dt

        blk.delivered = pyo.Constraint(
            blk.C, rule=lambda b, c: stored(b, c) + b.short_kwh[c] >= b.need_kwh[c]
        )
        blk.room = pyo.Constraint(blk.C, rule=lambda b, c: stored(b, c) <= b.room_kwh[c])
        # V2G never takes out more than it has put in during the session (the driver's floor)
        blk.e_session_kwh = pyo.Var(blk.C2, ctx.T, domain=pyo.NonNegativeReals)
        order = list(ctx.T)
        blk.v2g_floor = pyo.Constraint(
            blk.C2,
            ctx.T,
            rule=lambda b, c, p, t: (
                b.e_session_kwh[c, p, t]
                == (
                    b.e_session_kwh[(c, *order[order.index((p, t)) - 1])]
                    if order.index((p, t)) > 0
                    else 0
                )
                + (pts[c].eta * b.p_charge_kw[c, p, t] - b.p_discharge_kw[c, p, t] / pts[c].eta)
                * dt
            ),
        )

        def grid_side(p: str, t: int):
            return -(
                sum(blk.p_charge_kw[c, p, t] for c in C)
                - sum(blk.p_discharge_kw[c, p, t] for c in v2g)
            )

        self.port(ctx, "electricity", "EV charging", grid_side)

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        ctx.add_cost(
            "penalty", sum(self.short_penalty_eur_per_kwh * blk.short_kwh[c] for c in blk.C)
        )

    def update(self, sessions: dict[str, EvSession | None]) -> None:
        """Set each point's session (``None`` or missing: nothing plugged). Values only."""
        blk = self.block
        assert blk is not None, "build the model first"
        index = sorted({(p, t) for (_c, p, t) in blk.present.keys()}, key=lambda k: k[1])
        n, dt = len(index), self.dt_h
        for cp in self.points:
            s = sessions.get(cp.point_id)
            if s is None or s.need_kwh <= 1e-6 or s.departure_step <= 0:
                blk.need_kwh[cp.point_id] = 0.0
                blk.room_kwh[cp.point_id] = 0.0
                for key in index:
                    blk.present[(cp.point_id, *key)] = 0.0
                    blk.p_dumb_kw[(cp.point_id, *key)] = 0.0
                continue
            p_max = min(cp.p_kw, s.p_vehicle_kw or cp.p_kw)
            blk.p_max_kw[cp.point_id] = p_max
            blk.v2g_ok[cp.point_id] = 1.0 if s.controlled else 0.0
            dumb_mode = cp.mode == "dumb" or not s.controlled
            need = float(s.need_kwh)
            blk.need_kwh[cp.point_id] = need
            room = need if s.room_kwh is None else max(float(s.room_kwh), need)
            blk.room_kwh[cp.point_id] = room
            left = need
            for i, key in enumerate(index):
                share = (
                    (s.present_first if i == 0 else 1.0) if i < min(s.departure_step, n) else 0.0
                )
                blk.present[(cp.point_id, *key)] = share
                dumb = 0.0
                if dumb_mode and share > 0 and left > 1e-9:
                    dumb = min(p_max * share, left / (cp.eta * dt))
                    left -= dumb * cp.eta * dt
                blk.p_dumb_kw[(cp.point_id, *key)] = dumb

    def setpoint_kw(self, point_id: str) -> float:
        """Grid-side power of the first step (negative: V2G discharge)."""
        blk = self.block
        assert blk is not None
        first = min((p, t) for (_c, p, t) in blk.present.keys())
        p = float(pyo.value(blk.p_charge_kw[(point_id, *first)]))
        if point_id in blk.C2:
            p -= float(pyo.value(blk.p_discharge_kw[(point_id, *first)]))
        return p

    @classmethod
    def wants_step(cls, before: dict[str, Any], payload: dict[str, Any]) -> bool:
        """A vehicle just plugged in."""
        return bool(payload.get("plugged")) and not before.get("plugged", False)

    # ---- operation interface
    def point_key(self, point_id: str) -> DeviceKey:
        return (self.hub, "ev_charger", point_id)

    def observe(self, obs: Any, inp: Any) -> None:
        """The session of each point from its telemetry; a car others wait for (the charger
        reports ``cars_waiting``) is finished as fast as it can charge, then frees the charger."""
        st, start, dt = obs.state, obs.start, obs.dt_h
        for c in self.points:
            key = self.point_key(c.point_id)
            sess = session_from_state(st.latest.get("/".join(key)), start, dt)
            if sess is not None:
                first = 1.0 - min(max((obs.now - start).total_seconds() / 3600 / dt, 0.0), 0.99)
                due = sess.departure_step
                if st.value(key, "cars_waiting") > 0 and sess.need_kwh > 0:
                    p_max = min(c.p_kw, sess.p_vehicle_kw or c.p_kw) * c.eta
                    fastest = math.ceil(sess.need_kwh / max(p_max * dt, 1e-9) + (1 - first) - 1e-9)
                    due = max(1, min(due, fastest))
                # a charger that refuses the EMS's profiles is planned as a dumb one (no V2G)
                controlled = "/".join(key) not in getattr(st, "inflexible", {})
                sess = EvSession(
                    sess.need_kwh, due, sess.p_vehicle_kw, sess.room_kwh, first, controlled
                )
            inp.device_state[key] = sess

    def take_state(self, inp: Any) -> None:
        self.update(
            {c.point_id: device_state(inp, self.point_key(c.point_id)) for c in self.points}
        )

    def installed(self) -> bool:
        return bool(self.points)

    def devices(self) -> list[Device]:
        return [(self.hub, "ev_charger", c.point_id, c.p_kw) for c in self.points]

    def setpoints(self, k0: Key) -> list[Raw]:
        return [
            (self.hub, "ev_charger", c.point_id, {"p_kw": rnd(self.setpoint_kw(c.point_id))})
            for c in self.points
        ]

    def fallback_passes(self):  # noqa: ANN201
        return [((80.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """The safe power while energy is owed (never above charger or vehicle limits)."""
        out: list[Raw] = []
        for c in self.points:
            sess = device_state(st.inp, self.point_key(c.point_id))
            p = ev_p_kw(sess.need_kwh, c.p_kw, self.safe_kw, sess.p_vehicle_kw) if sess else 0.0
            st.net_el_kw += p
            out.append((self.hub, "ev_charger", c.point_id, {"p_kw": rnd(p)}))
        return out

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        if not len(b.C):
            return {f"{self.hub}.ev_kw": np.zeros(len(keys))}
        return {f"{self.hub}.ev_kw": sum(self.values(b.p_charge_kw, keys, (c,)) for c in b.C)}

    def after_solve(self, result: Any, alerts: list[str]) -> None:
        b = self.block
        assert b is not None
        for c in b.C:
            short = float(pyo.value(b.short_kwh[c]))
            result.short_kwh.setdefault(self.short_quantity, {})[(self.hub, c)] = short
            if short > REPORT_KWH:
                alerts.append(
                    f"EV at {self.hub}/{c}: {short:.2f} kWh short of its request at departure"
                )

    def can_supply_electricity(self) -> bool:
        return any(c.mode == "v2g" for c in self.points)

    def measured_el_kw(self, state: Any) -> float:
        return -sum(state.value((self.hub, "ev_charger", c.point_id), "p_kw") for c in self.points)


class EvPlant(PlantDevice):
    """The charge points of a hub in the simulated plant: the scenario's vehicles arrive and
    leave with jittered times (σ 0.4 h) and energy requests (× U(0.7, 1.5)), wait for a free
    point, charge at the setpoint (baseline: full power on arrival; missing setpoint: the safe
    power) and leave when charged or at departure."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("ev_kwh", "EV energy delivered", "kWh", 1, 12),
        KpiRow("ev_requests_met", "EV sessions with request met", "", 0, 13),
        KpiRow("ev_sessions_done", "EV sessions", "", 0, 14),
    )

    rows = ("ev_kw",)

    def __init__(self, tech: EvChargePoints) -> None:
        super().__init__(tech)
        self.visits: list[dict[str, Any]] = []
        self.plugged: dict[str, dict[str, Any]] = {}  # point -> session
        self.waiting: list[dict[str, Any]] = []
        self.done: list[dict[str, Any]] = []
        self.p_kw: dict[str, float] = {}

    def draw_day(self, rng: Any, d0: Any, scenario: Any) -> list[dict[str, Any]]:
        spec = next(h for h in scenario.hubs if h.id == self.hub)
        out = []
        for v in spec.vehicles:
            if v.days == "weekday" and d0.weekday() >= 5:
                continue
            arr = d0 + pd.Timedelta(hours=v.arrival_h + rng.normal(0, 0.4))
            dep = d0 + pd.Timedelta(hours=v.departure_h + rng.normal(0, 0.4))
            if dep <= arr + pd.Timedelta(hours=1):
                dep = arr + pd.Timedelta(hours=1)
            need = float(
                np.clip(v.need_kwh_per_day * rng.uniform(0.7, 1.5), 1.0, v.battery_kwh * 0.5)
            )
            arr, dep = arr.tz_convert("UTC"), dep.tz_convert("UTC")
            out.append(
                {
                    "vehicle": v.name,
                    "arrive": arr,
                    "depart": dep,
                    "need_kwh": need,
                    "p_vehicle_kw": v.p_max_kw,
                }
            )
        return out

    def arrivals(self, now: Any, end: Any, first: bool) -> None:
        for v in self.visits:
            if now <= v["arrive"] < end or (first and v["arrive"] < now < v["depart"]):
                self.waiting.append(
                    {
                        "vehicle": v["vehicle"],
                        "hub": self.hub,
                        "depart": v["depart"].isoformat(),
                        "need_kwh": v["need_kwh"],
                        "got_kwh": 0.0,
                        "p_vehicle_kw": v["p_vehicle_kw"],
                        "arrive": v["arrive"].isoformat(),
                    }
                )
        # departures (also of waiting vehicles that never got a charger)
        for key, s in list(self.plugged.items()):
            if pd.Timestamp(s["depart"]) <= now:
                self.done.append(s)
                del self.plugged[key]
        for s in list(self.waiting):
            if pd.Timestamp(s["depart"]) <= now:
                self.done.append(s)
                self.waiting.remove(s)
        for c in self.tech.points:
            if c.point_id not in self.plugged and self.waiting:
                self.plugged[c.point_id] = self.waiting.pop(0)

    def el_step(self, hs: HubStep) -> None:
        """Charge the plugged vehicles (kW drawn)."""
        dt = hs.dt_h
        for c in self.tech.points:
            sess = self.plugged.get(c.point_id)
            p = 0.0
            if sess is not None:
                owed = max(sess["need_kwh"] - sess["got_kwh"], 0.0)
                want = hs.setpoint((self.hub, "ev_charger", c.point_id), "p_kw")
                if hs.baseline:  # full power on arrival
                    want = min(c.p_kw, sess["p_vehicle_kw"])
                elif want is None:
                    want = ev_p_kw(owed, c.p_kw, self.tech.safe_kw, sess["p_vehicle_kw"])
                want = float(want)
                p = max(0.0, min(want, c.p_kw, sess["p_vehicle_kw"], owed / (c.eta * dt)))
                sess["got_kwh"] += p * c.eta * dt
            self.p_kw[c.point_id] = p
            hs.sums.add("bus", BUS_EV, p)
            hs.sums.add("surplus", 3, -p)
            hs.rows.add("ev_kw", 0, p)

    def after_balance(self, hs: HubStep) -> None:
        """Charged vehicles leave: the driver unplugs and frees the charger."""
        for c in self.tech.points:
            sess = self.plugged.get(c.point_id)
            if sess is not None and sess["got_kwh"] >= sess["need_kwh"] - 1e-6:
                sess["done_at"] = (hs.now + pd.Timedelta(hours=hs.dt_h)).isoformat()
                self.done.append(sess)
                del self.plugged[c.point_id]

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        out: list = []
        for c in self.tech.points:
            key = (self.hub, "ev_charger", c.point_id)
            s = self.plugged.get(c.point_id)
            if s is None:
                out.append((key, {"ts": ts, "plugged": False, "p_kw": 0.0}))
                continue
            payload = {
                "ts": ts,
                "plugged": True,
                "p_kw": round(self.p_kw.get(c.point_id, 0.0), 3),
                "requested_e_kwh": round(s["need_kwh"], 3),
                "session_e_kwh": round(min(s["got_kwh"], s["need_kwh"]), 3),
                "departure": s["depart"],
                "vehicle_p_max_kw": s["p_vehicle_kw"],
                "cars_waiting": len(self.waiting),
            }
            out.append((key, payload))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugged": self.plugged,
            "waiting": self.waiting,
            "done": self.done,
            "p_kw": self.p_kw,
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.plugged, self.waiting = dict(d["plugged"]), list(d["waiting"])
        self.done, self.p_kw = list(d["done"]), dict(d["p_kw"])

    @classmethod
    def kpis(cls, devices: list[Any], df: Any, dt_h: float, hubs: list[str], out: dict) -> None:
        done = [s for d in devices for s in d.done]
        out.update(
            ev_kwh=float(sum(df[f"{h}.ev_kw"] for h in hubs).sum() * dt_h),
            ev_sessions_done=float(len(done)),
            ev_requests_met=float(sum(1 for s in done if s["got_kwh"] >= s["need_kwh"] - 0.05)),
        )
