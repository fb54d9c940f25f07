"""One control step from telemetry to setpoints, without any I/O.

:class:`OperationService` owns the :class:`~ems.operation.controller.Controller` (built once), the
:class:`~ems.operation.forecast.Forecaster` and the :class:`~ems.operation.state.PlantState`.
Adapters feed it validated device states (:meth:`on_state`) and call :meth:`step` at every quarter
hour or on demand; they publish the returned setpoints and persist ``state.to_dict()``.

Device ids on MQTT (``cer/<community>/<hub>/<kind>/<id>``): ``meter/main`` (import/export power
and energy counters), ``pv/<pv type>`` (e.g. ``pv/pv_mono``), ``battery/bess``, ``ev_charger/cp1…``,
``ai_cluster/<id from SITE.yaml>``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ems.operation.assembly import OperationSetup
from ems.operation.controller import Controller, StepInput, StepResult
from ems.operation.forecast import Forecaster
from ems.operation.site import SiteConfig
from ems.operation.state import DeviceKey, PlantState
from ems.techs import registry
from ems.techs.base import Observation

log = logging.getLogger(__name__)

#: Device kinds that receive setpoints (and get their safe setpoint when their telemetry is stale).
CONTROLLABLE = registry.controllable_device_kinds()


#: Heat meters and weather stations older than this are not used (thermal loads move slowly).
THERMAL_STALE_S = 2 * 3600.0


def stale_input_alerts(
    stale_in: dict[str, float], net_unknown: dict[str, list[str]], result: StepResult
) -> list[str]:
    """One alert per stale input the plan would have used, naming it and what replaced it, and
    one per battery (a technology that follows the net load) the fallback holds because its
    hub's net load is unknown."""
    alerts = []
    for name, age in sorted(stale_in.items()):
        reg = registry.by_device_kind(name.split("/")[1])
        if name.split("/")[1] == "price":  # the day-ahead feed, not a device
            instead = "the zonal-price profile is used"
        elif reg is not None and (reg.tech.grid_connection or reg.tech.load_input()):
            instead = "not used: the hub's load comes from its forecast"
        else:  # heat meters, the weather station
            instead = "the forecast uses the profile and history only"
        alerts.append(f"stale input {name} ({age:.0f} s old): {instead}")
    for sp in result.setpoints:
        reg = registry.by_device_kind(sp.kind)
        held = reg is not None and reg.tech.follows_net_load
        if held and sp.source == "fallback" and sp.hub in net_unknown:
            alerts.append(
                f"fallback: {sp.kind} of {sp.hub} held at 0 kW, its net load is unknown "
                f"(stale {', '.join(net_unknown[sp.hub])})"
            )
    return alerts


@dataclass
class StepOutcome:
    result: StepResult
    forecast: dict[str, np.ndarray]  # "<hub>.load_kw", "<column>.yield" over the horizon
    closed_hours: list[dict[str, Any]] = field(default_factory=list)


class OperationService:
    def __init__(
        self,
        site: SiteConfig,
        setup: OperationSetup,
        forecaster: Forecaster,
        controller: Controller | None = None,
        state: PlantState | None = None,
    ) -> None:
        self.site, self.setup, self.fc = site, setup, forecaster
        self.controller = controller or Controller(
            setup,
            n_steps=site.n_steps,
            dt_h=site.dt_h,
            time_limit_s=site.solver.time_limit_s,
            mip_rel_gap=site.solver.mip_rel_gap,
            mip_abs_gap_eur=site.solver.mip_abs_gap_eur,
            threads=site.solver.threads,
            slack_penalty_eur_per_kwh=site.solver.slack_penalty_eur_per_kwh,
            warm_start=site.solver.warm_start,
            integer_steps=site.integer_steps,
            relaxation_cuts=site.solver.relaxation_cuts,
            highs_options=site.solver.highs_options,
        )
        self.state = state or PlantState()
        self.pending_hours: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ devices
    def devices(self) -> list[tuple[str, str, str, float | None]]:
        """Every device the EMS expects telemetry from: (hub, kind, id, rated kW)."""
        out = self.setup.devices()
        out.append(("market", "price", "pz", None))  # day-ahead zonal price feed (optional)
        return out

    def controllable(self) -> list[DeviceKey]:
        return [(h, k, d) for h, k, d, _ in self.devices() if k in CONTROLLABLE]

    # ------------------------------------------------------------------ telemetry
    def on_state(self, key: DeviceKey, payload: dict[str, Any]) -> bool:
        """Take a validated state; returns True when it should trigger an on-demand step
        (an EV plugged in, or more AI batch energy queued)."""
        before = self.state.latest.get("/".join(key))
        self.pending_hours.extend(self.state.ingest(key, payload))
        reg = registry.by_device_kind(key[1])
        return reg is not None and reg.tech.wants_step(before or {}, payload)

    def set_flexible(self, key: DeviceKey, flexible: bool, reason: str = "") -> bool:
        """A device refuses setpoints (``flexible=False``: an EV charger that rejected the
        charging profile) or takes them again. While it refuses, the plan does not count on its
        flexibility: the charger is planned as one that charges at full power, without V2G.
        Returns True when this changes the plan (the caller re-plans at once)."""
        name = "/".join(key)
        if flexible:
            return self.state.inflexible.pop(name, None) is not None
        changed = name not in self.state.inflexible
        self.state.inflexible[name] = reason or "refuses setpoints"
        return changed

    def on_message(self, channel: str, key: DeviceKey, payload: dict[str, Any]) -> bool:
        """Take a validated message: a state (:meth:`on_state`), or another channel's message (an
        AI cluster's job announcement) for the technology that owns the device
        (:meth:`~ems.techs.base.Technology.take_message`, kept in the device's durable book).
        True when it asks for an on-demand step."""
        if channel == "state":
            return self.on_state(key, payload)
        owner = self.setup.owner(key)
        if owner is None:
            log.warning(
                "%s message for %s ignored: not a device of this site", channel, "/".join(key)
            )
            return False
        return owner.take_message(self.state, key, channel, payload)

    def _other_columns(
        self, inp: StepInput, times: pd.DatetimeIndex, pz_feed: pd.Series | None
    ) -> None:
        """Any other data column a technology reads (the DM 414 incentive's zonal price, …):
        the profile year's values, with the live zonal-price feed where it covers a step."""
        s = self.setup
        filled = set(inp.columns) | set(inp.pv_yield) | {s.load_column(h) for h in inp.load_kw}
        filled |= {"price_buy_eur_per_kwh", "price_sell_eur_per_kwh"}
        inc = s.scenario.incentive
        for col in s.data_columns():
            if col in filled or col not in self.fc.profile.columns():
                continue
            feed = pz_feed if inc is not None and col == inc.pz_column else None
            inp.columns[col] = self.fc.profile_column(col, times, feed)

    # ------------------------------------------------------------------ site sensors
    def _t_amb_now(self, now: pd.Timestamp, stale_in: dict[str, float]) -> float | None:
        """The outdoor temperature of the latest weather station reading, if fresh."""
        st = self.state
        weather = [(k, p) for k, p in st.latest.items() if k.split("/")[1] == "weather"]
        if not weather:
            return None
        wk, w = max(weather, key=lambda kp: pd.Timestamp(kp[1]["ts"]))
        age = (now - pd.Timestamp(w["ts"])).total_seconds()
        if age <= THERMAL_STALE_S:
            return float(w["t_amb_c"])
        stale_in[wk] = age
        return None

    # ------------------------------------------------------------------ the step
    def _stale_load_inputs(
        self, hub: str, now: pd.Timestamp, limit_s: float, stale_in: dict[str, float]
    ) -> list[str]:
        """The readings a hub's load estimate is computed from (the meter and the devices of the
        technologies whose :meth:`~ems.techs.base.Technology.load_input` holds) that are stale:
        reported, but older than ``limit_s``. Each is also recorded in ``stale_in`` with its
        age."""
        keys: list[DeviceKey] = []
        for t in self.setup.installed(hub):  # the POD meter (grid connection) comes first
            if t.grid_connection or t.load_input():
                keys += [(h, k, d) for h, k, d, _r in t.devices()]
        out = []
        for key in keys:
            age = self.state.age_s(key, now)
            if age is not None and age > limit_s:
                stale_in["/".join(key)] = age
                out.append("/".join(key))
        return out

    def _load_kw(self, hub: str) -> float | None:
        """A hub's electric load now: what its POD meter imports (import − export, from the grid
        connection's :meth:`~ems.techs.base.Technology.metered_import_kw`) plus what its devices
        measured (generation +, flexible use −: ``measured_el_kw``), floored at 0; None without
        a meter reading."""
        here, st = self.setup.installed(hub), self.state
        metered = [m for t in here if (m := t.metered_import_kw(st)) is not None]
        if not metered:
            return None
        measured = sum(t.measured_el_kw(st) for t in here)
        return max(sum(metered) + measured, 0.0)

    def _estimates(
        self, now: pd.Timestamp, limit_s: float, stale_in: dict[str, float]
    ) -> tuple[
        dict[str, float | None], dict[str, float | None], dict[str, float], dict[str, list[str]]
    ]:
        """Hub loads, PV specific yields, measured net loads from fresh readings only; the hubs
        whose load estimate would need a stale reading (load None, net unknown) with its names."""
        s, st = self.setup, self.state
        loads: dict[str, float | None] = {}
        yields: dict[str, float | None] = {}
        net_now: dict[str, float] = {}
        net_unknown: dict[str, list[str]] = {}
        for hub in s.hubs:
            stale_here = self._stale_load_inputs(hub, now, limit_s, stale_in)
            # variable renewable generation measured now (PV), its specific yields recorded
            pv_now = sum(t.measured_renewable_kw(st, stale_in, yields) for t in s.installed(hub))
            if stale_here:  # the load estimate would compute from a stale reading: not made
                loads[hub] = None
                net_unknown[hub] = stale_here
                continue
            # load = import − export + what the hub's devices measured (+ generation, − use)
            loads[hub] = self._load_kw(hub)
            if loads[hub] is not None:
                net_now[hub] = float(loads[hub]) - pv_now
        return loads, yields, net_now, net_unknown

    def step(
        self,
        start: pd.Timestamp,
        now: pd.Timestamp | None = None,
        time_limit_s: float | None = None,
    ) -> StepOutcome:
        """Estimate, forecast, update the model and solve for the horizon starting at ``start``."""
        s, st, fc = self.setup, self.state, self.fc
        now = now if now is not None else start
        n, dt = self.controller.n_steps, self.controller.dt_h
        times = pd.date_range(start, periods=n, freq=pd.Timedelta(hours=dt))
        limit_s = self.site.stale_after_steps * dt * 3600
        stale_in: dict[str, float] = {}
        loads, yields, net_now, net_unknown = self._estimates(now, limit_s, stale_in)
        st.record_history(start, loads, yields)
        pz_feed = st.pz_feed()
        if pz_feed is not None and pz_feed.index[-1] + pd.Timedelta(minutes=15) <= start:
            # a day-ahead curve that ended before this step: the zonal-price profile instead
            stale_in["market/price/pz"] = (start - pz_feed.index[-1]).total_seconds()
            pz_feed = None
        t_amb = self._t_amb_now(now, stale_in) if s.has_thermal() else None
        obs = Observation(st, fc, times, start, now, dt, n, stale_in, loads, t_amb)
        obs.fresh_s = THERMAL_STALE_S
        if pz_feed is not None:
            obs.forecast["market.pz_eur_per_mwh"] = fc.pz_eur_per_mwh(times, pz_feed)
        inp = StepInput(
            start,
            {},
            {},
            fc.price_buy(times, self.site.timezone),
            fc.price_sell(times, pz_feed),
            net_now_kw=net_now,
            net_unknown=net_unknown,
            time_limit_s=time_limit_s,
        )
        # every operated technology forecasts the columns it reads and gives its measured state
        for t in s.operated():
            t.observe(obs, inp)
        self._other_columns(inp, times, pz_feed)
        forecast = obs.forecast
        for key in self.controllable():
            age = st.age_s(key, now)
            if age is None or age > limit_s:
                inp.stale[key] = float("inf") if age is None else age
        result = self.controller.step(inp)
        result.alerts.extend(stale_input_alerts(stale_in, net_unknown, result))
        for t in s.operated():  # what the devices' books hold that has expired
            result.alerts.extend(t.tidy_state(st, now))
        st.last_step = start.isoformat()
        for a in result.alerts:
            st.alerts.append({"ts": start.isoformat(), "alert": a})
        closed, self.pending_hours = self.pending_hours, []
        return StepOutcome(result, forecast, closed)
