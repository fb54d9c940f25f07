"""The thermal side of the simulated plant (``ems run --simulate`` on a multi-energy site).

Exogenous draws (:func:`draw_columns`): heating/DHW/cooling demands = the site profile × AR(1)
noise, outdoor temperature = profile + an AR(1) deviation (σ 1.5 K), solar thermal = profile
output × the same kind of cloud factor as PV.

Physics per step and hub (:meth:`ThermalPlant.advance`), every device within its limits:

- CHP: units on ≤ installed, electric power clamped to [P_min·u, P_max·u], fuel = a·P + b·u,
  heat = η_th·fuel (the model's part-load map);
- heat pumps (per unit): the setpoint's electric power × COP(T, mode), capped at the capacity of
  the step's temperature (and cooling at the cooling demand left);
- absorption chillers: cover the cooling the heat pumps leave, within capacity (local control);
  their feed heat comes from the hub's heat loop, electric auxiliaries from its bus;
- district heating: injections ≤ the hub's CHP heat, then the network is balanced
  (η_DH·Σ injected = Σ withdrawn: the larger side is scaled down);
- electric links: Σ given = Σ taken (the larger side scaled down);
- heat loop (heating and DHW lumped, as the physical case has no DHW): planned supply − demand
  goes into the stores (puffer first) within power and content limits; a deficit beyond that is
  covered by the boilers' thermostat (up to capacity), then counted unmet; a surplus beyond that
  first turns the boilers down, then the CHP units (heat-led derate within min load), then is
  counted as dissipated heat.

Missing or expired setpoints → each device's safe mode: CHP and heat pumps follow the heat-led
rule of :func:`ems.operation.controller.rule_setpoints` on the measured demand, no exchange. The
no-optimisation baseline runs the same rule for every device (no district heating, no links).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.operation.assembly import OperationSetup
from ems.operation.controller import rule_setpoints
from ems.techs.demand import HEAT_CARRIERS
from ems.techs.heat_pump import MODE_CARRIER, cop_and_capacity

Key = tuple[str, str, str]


def draw_columns(
    setup: OperationSetup, fc: Any, times: pd.DatetimeIndex, seed: int
) -> dict[str, np.ndarray]:
    """Thermal demands, outdoor temperature and solar-thermal output of a simulated period."""
    if not setup.has_thermal():
        return {}
    rng = np.random.default_rng(seed + 7919)
    n = len(times)

    def ar1(sd: float, rho: float = 0.9) -> np.ndarray:
        x = np.zeros(n)
        e = rng.normal(0, sd * math.sqrt(1 - rho**2), n)
        for i in range(n):
            x[i] = (rho * x[i - 1] if i else rng.normal(0, sd)) + e[i]
        return x

    cols: dict[str, np.ndarray] = {}
    for c in setup.thermal_demand_columns():
        cols[c] = np.clip(fc.profile.at(c, times) * (1 + ar1(0.08)), 0, None)
    for c in setup.temperature_columns():
        prof = fc.profile.at(c, times) if c in fc.profile.columns() else np.full(n, 15.0)
        cols[c] = prof + ar1(1.5, 0.95)
    cloud = np.clip(1.0 + ar1(0.18, 0.85), 0.25, 1.15)
    for c in setup.solar_thermal_columns():
        cols[c] = np.clip(fc.profile.at(c, times) * cloud, 0, 1.2)
    return cols


def _chp_heat(c: Any, units: float, p_kw: float) -> float:
    """Heat of a CHP model's running units: η_th × (a·P + b·u)."""
    return c.spec.eta_th * (c.a_fuel * p_kw + c.b_fuel_kw * units)


@dataclass
class ThermalPlant:
    setup: OperationSetup
    columns: dict[str, np.ndarray]
    dt_h: float
    soc: dict[str, float] = field(default_factory=dict)  # "hub/store" -> fraction
    last: dict[str, Any] = field(default_factory=dict)  # last step's device values (telemetry)
    now: pd.Timestamp | None = None  # start of the step being simulated

    def __post_init__(self) -> None:
        for hub, stores in self.setup.stores.items():
            for key in stores:
                self.soc.setdefault(f"{hub}/{key}", 0.5)

    # ------------------------------------------------------------------ helpers
    def _col(self, column: str, i: int, default: float = 0.0) -> float:
        arr = self.columns.get(column)
        return default if arr is None else float(arr[min(i, len(arr) - 1)])

    def demand(self, hub: str, i: int) -> tuple[float, float]:
        s = self.setup
        heat = sum(
            self._col(d.column, i)
            for (h, c), d in s.thermal_demands.items()
            if h == hub and c in HEAT_CARRIERS
        )
        cool = sum(
            self._col(d.column, i)
            for (h, c), d in s.thermal_demands.items()
            if h == hub and c == "cooling"
        )
        return heat, cool

    # ------------------------------------------------------------------ physics
    def _sp(self, setpoints: dict[Key, dict[str, Any]] | None, key: Key, name: str) -> Any:
        """A setpoint value still valid now (``None``: missing, expired, or the baseline)."""
        if setpoints is None:
            return None
        v = setpoints.get(key)
        if not v or pd.Timestamp(v["valid_until"]) <= self.now:
            return None
        return v.get(name)

    def _chp_units(self, hub: str, setpoints: dict | None, rules: dict) -> dict[str, list]:
        """CHP per model: [tech, units on, P_el] within the installed units and the load range."""
        chp = {}
        for c in self.setup.chps.get(hub, []):
            key = (hub, "chp", c.model)
            n = int(round(c.n.value_units()))
            u, p = self._sp(setpoints, key, "units_on"), self._sp(setpoints, key, "p_kw")
            if u is None or p is None:
                u, p = rules[key]["units_on"], rules[key]["p_kw"]
            u = max(0, min(int(u), n))
            p = min(max(float(p), c.spec.min_load * c.spec.p_el_kw * u), c.spec.p_el_kw * u)
            chp[c.model] = [c, u, p]
        return chp

    def _heat_pumps(
        self, hub: str, setpoints: dict | None, rules: dict, temps: dict, cool_left: float
    ) -> tuple[list, float, float, float]:
        """Heat pumps per unit: (units [(dev, mode, P_el, output)], heat, cooling left, P_el)."""
        units, heat, el = [], 0.0, 0.0
        for hp, dev in self.setup.hp_units(hub):
            key = (hub, "heat_pump", dev)
            mode, p = self._sp(setpoints, key, "mode"), self._sp(setpoints, key, "p_kw")
            if mode is None or p is None:
                mode, p = rules[key]["mode"], rules[key]["p_kw"]
            q = 0.0
            if mode != "off" and mode in hp.modes and float(p) > 0:
                t = temps.get(hp.spec.temperature_column, 15.0)
                cop, cap = cop_and_capacity(hp.spec, mode, t)
                q = min(float(p) * cop, cap)
                if mode == "cooling":
                    q = min(q, cool_left)
                    cool_left -= q
                else:
                    heat += q
                p = q / cop
            else:
                mode, p = "off", 0.0
            units.append((dev, mode, float(p), q))
            el += float(p)
        return units, heat, cool_left, el

    def _hub_devices(
        self, hub: str, i: int, setpoints: dict | None, temps: dict
    ) -> tuple[dict[str, Any], float]:
        """The devices of one hub run their setpoints (or the heat-led rule); returns the hub's
        state for the heat loop and the electric power its heat pumps and chillers draw."""
        s = self.setup
        heat_d, cool_d = self.demand(hub, i)
        st = s.solar_thermal.get(hub)
        solar = (
            st.area.value() * max(self._col(st.spec.output_column, i), 0.0)
            if st is not None and st.area
            else 0.0
        )
        rules = rule_setpoints(s, hub, max(heat_d - solar, 0.0), cool_d, temps)
        chp = self._chp_units(hub, setpoints, rules)
        hp_units, hp_heat, cool_left, el = self._heat_pumps(hub, setpoints, rules, temps, cool_d)
        # absorption chillers: the cooling the heat pumps leave, within capacity
        chill, feed = {}, 0.0
        for ch in s.chillers.get(hub, []):
            c_kw = min(cool_left, ch.n.value())
            cool_left -= c_kw
            chill[ch.model] = c_kw
            feed += c_kw / ch.spec.cop_th
            el += ch.spec.aux_el_fraction * c_kw
        boil = {}
        for b in s.boilers.get(hub, []):
            q = self._sp(setpoints, (hub, "boiler", b.model), "heat_kw")
            if q is None:
                q = rules[(hub, "boiler", b.model)]["heat_kw"]
            boil[b.model] = [b, min(max(float(q), 0.0), b.size_kw.value())]
        state = {
            "heat": heat_d,
            "cool": cool_d,
            "solar": solar,
            "chp": chp,
            "hp": hp_units,
            "hp_heat": hp_heat,
            "chill": chill,
            "feed": feed,
            "boil": boil,
            "cool_unmet": max(cool_left, 0.0),
        }
        return state, el

    def _district_heating(
        self, setpoints: dict | None, hubs: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Injections ≤ the hub's CHP heat, then the network balanced (the larger side scaled)."""
        s = self.setup
        inj = {h: 0.0 for h in s.hubs}
        wd = {h: 0.0 for h in s.hubs}
        if setpoints is None or not s.dh_stations:
            return inj, wd
        eta = next((t.eta for t in s.techs if t.kind == "dh_network"), 0.9)
        for hub in s.dh_stations:
            heat = sum(_chp_heat(c, u, p) for c, u, p in hubs[hub]["chp"].values())
            to = self._sp(setpoints, (hub, "dh_station", "main"), "to_kw")
            inj[hub] = min(max(float(to or 0.0), 0.0), heat)
            fr = self._sp(setpoints, (hub, "dh_station", "main"), "from_kw")
            wd[hub] = max(float(fr or 0.0), 0.0)
        ti, tw = sum(inj.values()), sum(wd.values())
        if tw > eta * ti + 1e-9:
            f = eta * ti / tw if tw > 0 else 0.0
            wd = {h: v * f for h, v in wd.items()}
        elif eta * ti > tw + 1e-9:
            f = tw / (eta * ti) if ti > 0 else 0.0
            inj = {h: v * f for h, v in inj.items()}
        return inj, wd

    def _links(self, setpoints: dict | None) -> tuple[dict[str, float], dict[str, float]]:
        """Electric links: Σ given = Σ taken (the larger side scaled down)."""
        s = self.setup
        give = {h: 0.0 for h in s.hubs}
        take = {h: 0.0 for h in s.hubs}
        if setpoints is None or not s.links:
            return give, take
        for hub in s.links:
            give[hub] = max(
                float(self._sp(setpoints, (hub, "elec_link", "main"), "give_kw") or 0.0), 0.0
            )
            take[hub] = max(
                float(self._sp(setpoints, (hub, "elec_link", "main"), "take_kw") or 0.0), 0.0
            )
        tg, tt = sum(give.values()), sum(take.values())
        if tg > tt:
            give = {h: v * (tt / tg if tg > 0 else 0.0) for h, v in give.items()}
        else:
            take = {h: v * (tg / tt if tt > 0 else 0.0) for h, v in take.items()}
        return give, take

    def _stores(self, hub: str, r: float, last: dict[str, Any]) -> tuple[float, float]:
        """The stores (puffer first) take the loop's mismatch ``r`` (+ surplus) within power and
        content limits; returns (net store kW, what is left)."""
        dt, store_kw = self.dt_h, 0.0
        for key, store in self.setup.stores.get(hub, {}).items():
            cap = float(pyo.value(store.capacity_expr()))
            spec, sk = store.spec, f"{hub}/{key}"
            e = self.soc[sk] * cap
            keep = (1.0 - spec.loss_per_h) ** dt
            if r > 0:
                room = max(0.0, (cap - e * keep) / (spec.eta_charge * dt))
                x = min(r, spec.c_rate_per_h * cap, room)
                e = e * keep + x * spec.eta_charge * dt
                store_kw += x
                r -= x
            else:
                avail = max(0.0, e * keep * spec.eta_discharge / dt)
                x = min(-r, spec.c_rate_per_h * cap, avail)
                e = e * keep - x / spec.eta_discharge * dt
                store_kw -= x
                r += x
            self.soc[sk] = min(max(e / cap, 0.0), 1.0) if cap > 0 else 0.0
            last[f"store.{sk}"] = (self.soc[sk], store_kw)
        return store_kw, r

    @staticmethod
    def _balance_rest(d: dict[str, Any], r: float) -> tuple[float, float]:
        """What the stores could not take: a deficit is backed up by the boilers' thermostat
        (then unmet), a surplus turns the boilers down, then the CHP units (heat-led derate within
        min load), then is dissipated. Returns (unmet, dump) kW; updates the devices in ``d``."""
        unmet = dump = 0.0
        if r < 0:
            for model, (b, q) in d["boil"].items():
                extra = min(-r, b.size_kw.value() - q)
                d["boil"][model][1] = q + extra
                r += extra
            unmet = max(-r, 0.0)
        elif r > 0:
            for model, (_b, q) in d["boil"].items():
                cut = min(r, q)
                d["boil"][model][1] = q - cut
                r -= cut
            for entry in d["chp"].values():
                c, u, p = entry
                if r <= 1e-9 or u == 0:
                    continue
                p_new = max(
                    c.spec.min_load * c.spec.p_el_kw * u, p - r / (c.spec.eta_th * c.a_fuel)
                )
                r -= c.spec.eta_th * c.a_fuel * (p - p_new)
                entry[2] = p_new
            dump = max(r, 0.0)
        return unmet, dump

    def _heat_loop(
        self,
        hub: str,
        i: int,
        d: dict[str, Any],
        exchange: tuple[float, float, float, float],
        row: dict[str, float],
        last: dict[str, Any],
    ) -> float:
        """Close a hub's heat loop (heating and DHW lumped) and record the step; returns the hub's
        electric power from CHP and the link (− generation and taken, + given)."""
        inj, wd, give, take = exchange
        chp_heat = sum(_chp_heat(c, u, p) for c, u, p in d["chp"].values())
        boiler = sum(q for _b, q in d["boil"].values())
        supply = chp_heat - inj + wd + d["hp_heat"] + d["solar"] + boiler
        store_kw, r = self._stores(hub, supply - d["heat"] - d["feed"], last)
        unmet, dump = self._balance_rest(d, r)
        chp_el = sum(p for _c, _u, p in d["chp"].values())
        chp_heat = sum(_chp_heat(c, u, p) for c, u, p in d["chp"].values())
        chp_fuel = sum(c.a_fuel * p + c.b_fuel_kw * u for c, u, p in d["chp"].values())
        chp_om = sum(c.spec.om_eur_per_kwh_el * p for c, _u, p in d["chp"].values())
        boiler = sum(q for _b, q in d["boil"].values())
        boiler_fuel = sum(q / b.spec.eta for b, q in d["boil"].values())
        chill_el = sum(
            ch.spec.aux_el_fraction * d["chill"][ch.model]
            for ch in self.setup.chillers.get(hub, [])
        )
        row.update(
            {
                f"{hub}.heat_load_kw": d["heat"],
                f"{hub}.cooling_load_kw": d["cool"],
                f"{hub}.chp_kw": chp_el,
                f"{hub}.chp_heat_kw": chp_heat,
                f"{hub}.hp_kw": sum(p for _d, _m, p, _q in d["hp"]),
                f"{hub}.hp_heat_kw": d["hp_heat"],
                f"{hub}.hp_cooling_kw": sum(q for _d, m, _p, q in d["hp"] if m == "cooling"),
                f"{hub}.boiler_kw": boiler,
                f"{hub}.chiller_kw": sum(d["chill"].values()),
                f"{hub}.store_kw": store_kw,
                f"{hub}.chiller_feed_kw": d["feed"],
                f"{hub}.chiller_el_kw": chill_el,
                f"{hub}.solar_thermal_kw": d["solar"],
                f"{hub}.dh_to_kw": inj,
                f"{hub}.dh_from_kw": wd,
                f"{hub}.link_give_kw": give,
                f"{hub}.link_take_kw": take,
                f"{hub}.heat_unmet_kw": unmet,
                f"{hub}.heat_dump_kw": dump,
                f"{hub}.cooling_unmet_kw": d["cool_unmet"],
                f"{hub}.gas_kw": chp_fuel + boiler_fuel,
                f"{hub}.chp_om_eur_per_h": chp_om,
            }
        )
        self._record_devices(hub, i, d, (inj, wd, give, take), last)
        return give - take - chp_el

    def _record_devices(
        self, hub: str, i: int, d: dict[str, Any], exchange: tuple, last: dict[str, Any]
    ) -> None:
        """The step's device values, for the next telemetry."""
        inj, wd, give, take = exchange
        for model, (c, u, p) in d["chp"].items():
            fuel = c.a_fuel * p + c.b_fuel_kw * u
            last[f"chp.{hub}.{model}"] = (u, p, c.spec.eta_th * fuel, fuel)
        for dev, mode, p, q in d["hp"]:
            last[f"hp.{hub}.{dev}"] = (mode, p, q)
        for model, (b, q) in d["boil"].items():
            last[f"boiler.{hub}.{model}"] = (q, q / b.spec.eta)
        for ch in self.setup.chillers.get(hub, []):
            c_kw = d["chill"][ch.model]
            last[f"chiller.{hub}.{ch.model}"] = (
                c_kw,
                c_kw / ch.spec.cop_th,
                ch.spec.aux_el_fraction * c_kw,
            )
        last[f"dh.{hub}"] = (inj, wd)
        last[f"link.{hub}"] = (give, take)
        for (h, c), dem in self.setup.thermal_demands.items():
            if h == hub:
                last[f"meter.{hub}.{c}"] = self._col(dem.column, i)

    def advance(
        self,
        i: int,
        now: pd.Timestamp,
        setpoints: dict[Key, dict[str, Any]] | None,
        row: dict[str, float],
    ) -> dict[str, float]:
        """One step; returns the electric power each hub's thermal side and link draw (+) or
        supply (−) and writes the step's thermal quantities into ``row``."""
        s = self.setup
        self.now = now
        temps = {c: self._col(c, i, 15.0) for c in s.temperature_columns()}
        el: dict[str, float] = {h: 0.0 for h in s.hubs}
        hubs: dict[str, dict[str, Any]] = {}
        for hub in s.hubs:
            hubs[hub], el[hub] = self._hub_devices(hub, i, setpoints, temps)
        inj, wd = self._district_heating(setpoints, hubs)
        give, take = self._links(setpoints)
        last: dict[str, Any] = {}
        for hub in s.hubs:
            exchange = (inj[hub], wd[hub], give[hub], take[hub])
            el[hub] += self._heat_loop(hub, i, hubs[hub], exchange, row, last)
        last["t_amb_c"] = next(iter(temps.values()), None)
        self.last = last
        return el

    # ------------------------------------------------------------------ telemetry
    def telemetry(self, ts: str, i: int) -> list[tuple[Key, dict[str, Any]]]:
        """Device states at the start of step ``i`` (the last step's values; stores' content now)."""
        s, L = self.setup, self.last
        out: list[tuple[Key, dict[str, Any]]] = []
        r = lambda x: round(float(x), 3) + 0.0  # noqa: E731
        temps = [c for c in s.temperature_columns()]
        for hub in s.hubs:
            for (h, c), dem in s.thermal_demands.items():
                if h == hub:
                    out.append(
                        (
                            (hub, "heat_meter", c),
                            {
                                "ts": ts,
                                "p_kw": r(
                                    max(
                                        L.get(
                                            f"meter.{hub}.{c}", self._col(dem.column, max(i - 1, 0))
                                        ),
                                        0.0,
                                    )
                                ),
                            },
                        )
                    )
            for c in s.chps.get(hub, []):
                u, p, q, f = L.get(f"chp.{hub}.{c.model}", (0, 0.0, 0.0, 0.0))
                out.append(
                    (
                        (hub, "chp", c.model),
                        {
                            "ts": ts,
                            "p_kw": r(p),
                            "heat_kw": r(q),
                            "units_on": int(u),
                            "fuel_kw": r(f),
                        },
                    )
                )
            for _hp, dev in s.hp_units(hub):
                mode, p, q = L.get(f"hp.{hub}.{dev}", ("off", 0.0, 0.0))
                pay = {"ts": ts, "mode": mode, "p_kw": r(p)}
                if mode != "off":
                    pay["cooling_kw" if MODE_CARRIER.get(mode) == "cooling" else "heat_kw"] = r(q)
                out.append(((hub, "heat_pump", dev), pay))
            for b in s.boilers.get(hub, []):
                q, f = L.get(f"boiler.{hub}.{b.model}", (0.0, 0.0))
                out.append(((hub, "boiler", b.model), {"ts": ts, "heat_kw": r(q), "fuel_kw": r(f)}))
            for ch in s.chillers.get(hub, []):
                c_kw, h_kw, p = L.get(f"chiller.{hub}.{ch.model}", (0.0, 0.0, 0.0))
                out.append(
                    (
                        (hub, "absorption_chiller", ch.model),
                        {"ts": ts, "cooling_kw": r(c_kw), "heat_in_kw": r(h_kw), "p_kw": r(p)},
                    )
                )
            for key in s.stores.get(hub, {}):
                soc, p = L.get(f"store.{hub}/{key}", (self.soc[f"{hub}/{key}"], 0.0))
                out.append(
                    (
                        (hub, "thermal_storage", key),
                        {"ts": ts, "soc_pct": r(100 * self.soc[f"{hub}/{key}"]), "p_kw": r(p)},
                    )
                )
            if hub in s.dh_stations:
                to, fr = L.get(f"dh.{hub}", (0.0, 0.0))
                out.append(
                    ((hub, "dh_station", "main"), {"ts": ts, "to_kw": r(to), "from_kw": r(fr)})
                )
            if hub in s.links:
                g, t = L.get(f"link.{hub}", (0.0, 0.0))
                g, t = (g, 0.0) if g >= t else (0.0, t)  # a station reports its net direction
                out.append(
                    ((hub, "elec_link", "main"), {"ts": ts, "give_kw": r(g), "take_kw": r(t)})
                )
        if temps and s.hubs:
            t_now = L.get("t_amb_c")
            if t_now is None:
                t_now = self._col(temps[0], max(i - 1, 0), 15.0)
            out.append(((s.hubs[0], "weather", "main"), {"ts": ts, "t_amb_c": r(t_now)}))
        return out

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "soc": self.soc,
            "last": {k: list(v) if isinstance(v, tuple) else v for k, v in self.last.items()},
        }

    def load_dict(self, d: dict[str, Any] | None) -> None:
        if d:
            self.soc = dict(d.get("soc", self.soc))
            self.last = {
                k: tuple(v) if isinstance(v, list) else v for k, v in (d.get("last") or {}).items()
            }


def thermal_kpis(
    rows: list[dict[str, float]], setup: OperationSetup, dt_h: float
) -> dict[str, float]:
    """Day KPIs of the thermal side from the executed steps (gas at the scenario's price)."""
    if not rows or not setup.has_thermal():
        return {}
    df = pd.DataFrame(rows)
    hubs = setup.hubs

    def total(q: str) -> float:
        cols = [f"{h}.{q}" for h in hubs if f"{h}.{q}" in df.columns]
        return float(df[cols].to_numpy().sum() * dt_h) if cols else 0.0

    gas_kwh = total("gas_kw")
    price = setup.scenario.prices.gas_eur_per_kwh
    imp = total("import_kw")
    co2 = (
        gas_kwh * setup.scenario.emissions.gas_t_per_mwh / 1000
        + imp * setup.scenario.emissions.grid_t_per_mwh / 1000
    )
    return {
        "gas_kwh": gas_kwh,
        "gas_eur": gas_kwh * price,
        "chp_om_eur": total("chp_om_eur_per_h"),
        "chp_kwh": total("chp_kw"),
        "chp_heat_kwh": total("chp_heat_kw"),
        "hp_heat_kwh": total("hp_heat_kw"),
        "hp_cooling_kwh": total("hp_cooling_kw"),
        "boiler_kwh": total("boiler_kw"),
        "chiller_kwh": total("chiller_kw"),
        "heat_load_kwh": total("heat_load_kw"),
        "heat_unmet_kwh": total("heat_unmet_kw"),
        "heat_dump_kwh": total("heat_dump_kw"),
        "cooling_unmet_kwh": total("cooling_unmet_kw"),
        "dh_kwh": total("dh_from_kw"),
        "link_kwh": total("link_take_kw"),
        "co2_t": co2,
    }
