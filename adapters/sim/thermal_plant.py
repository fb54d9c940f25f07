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


@dataclass
class ThermalPlant:
    setup: OperationSetup
    columns: dict[str, np.ndarray]
    dt_h: float
    soc: dict[str, float] = field(default_factory=dict)  # "hub/store" -> fraction
    last: dict[str, Any] = field(default_factory=dict)  # last step's device values (telemetry)

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
    def advance(
        self,
        i: int,
        now: pd.Timestamp,
        setpoints: dict[Key, dict[str, Any]] | None,
        row: dict[str, float],
    ) -> dict[str, float]:
        """One step; returns the electric power each hub's thermal side and link draw (+) or
        supply (−) and writes the step's thermal quantities into ``row``."""
        s, dt = self.setup, self.dt_h
        baseline = setpoints is None
        temps = {c: self._col(c, i, 15.0) for c in s.temperature_columns()}

        def sp(key: Key, name: str) -> Any:
            if setpoints is None:
                return None
            v = setpoints.get(key)
            if not v or pd.Timestamp(v["valid_until"]) <= now:
                return None
            return v.get(name)

        el: dict[str, float] = {h: 0.0 for h in s.hubs}
        hubs: dict[str, dict[str, Any]] = {}
        last: dict[str, Any] = {}
        for hub in s.hubs:
            heat_d, cool_d = self.demand(hub, i)
            st = s.solar_thermal.get(hub)
            solar = (
                st.area.value() * max(self._col(st.spec.output_column, i), 0.0)
                if st is not None and st.area
                else 0.0
            )
            rules = rule_setpoints(s, hub, max(heat_d - solar, 0.0), cool_d, temps)
            # CHP
            chp = {}
            for c in s.chps.get(hub, []):
                key = (hub, "chp", c.model)
                n = int(round(c.n.value_units()))
                u = sp(key, "units_on")
                p = sp(key, "p_kw")
                if u is None or p is None:
                    u, p = rules[key]["units_on"], rules[key]["p_kw"]
                u = max(0, min(int(u), n))
                p = min(max(float(p), c.spec.min_load * c.spec.p_el_kw * u), c.spec.p_el_kw * u)
                chp[c.model] = [c, u, p]
            # heat pumps, per unit
            hp_units = []
            cool_left = cool_d
            hp_heat = 0.0
            for hp, dev in s.hp_units(hub):
                key = (hub, "heat_pump", dev)
                mode, p = sp(key, "mode"), sp(key, "p_kw")
                if mode is None or p is None:
                    mode, p = rules[key]["mode"], rules[key]["p_kw"]
                q = 0.0
                if mode != "off" and mode in hp.modes and float(p) > 0:
                    cop, cap = cop_and_capacity(
                        hp.spec, mode, temps.get(hp.spec.temperature_column, 15.0)
                    )
                    q = min(float(p) * cop, cap)
                    if mode == "cooling":
                        q = min(q, cool_left)
                        cool_left -= q
                    else:
                        hp_heat += q
                    p = q / cop
                else:
                    mode, p = "off", 0.0
                hp_units.append((dev, mode, float(p), q))
                el[hub] += float(p)
            # absorption chillers: the cooling the heat pumps leave, within capacity
            chill, feed = {}, 0.0
            for ch in s.chillers.get(hub, []):
                c_kw = min(cool_left, ch.n.value())
                cool_left -= c_kw
                chill[ch.model] = c_kw
                feed += c_kw / ch.spec.cop_th
                el[hub] += ch.spec.aux_el_fraction * c_kw
            boil = {}
            for b in s.boilers.get(hub, []):
                q = sp((hub, "boiler", b.model), "heat_kw")
                if q is None:
                    q = rules[(hub, "boiler", b.model)]["heat_kw"]
                boil[b.model] = [b, min(max(float(q), 0.0), b.size_kw.value())]
            hubs[hub] = {
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
        # district heating: injections ≤ CHP heat, network balanced
        inj = {h: 0.0 for h in s.hubs}
        wd = {h: 0.0 for h in s.hubs}
        if not baseline and s.dh_stations:
            eta = next((t.eta for t in s.techs if t.kind == "dh_network"), 0.9)
            for hub in s.dh_stations:
                chp_heat = sum(
                    c.spec.eta_th * (c.a_fuel * p + c.b_fuel_kw * u)
                    for c, u, p in hubs[hub]["chp"].values()
                )
                inj[hub] = min(
                    max(float(sp((hub, "dh_station", "main"), "to_kw") or 0.0), 0.0), chp_heat
                )
                wd[hub] = max(float(sp((hub, "dh_station", "main"), "from_kw") or 0.0), 0.0)
            ti, tw = sum(inj.values()), sum(wd.values())
            if tw > eta * ti + 1e-9:
                f = eta * ti / tw if tw > 0 else 0.0
                wd = {h: v * f for h, v in wd.items()}
            elif eta * ti > tw + 1e-9:
                f = tw / (eta * ti) if ti > 0 else 0.0
                inj = {h: v * f for h, v in inj.items()}
        # electric links: Σ given = Σ taken
        give = {h: 0.0 for h in s.hubs}
        take = {h: 0.0 for h in s.hubs}
        if not baseline and s.links:
            for hub in s.links:
                give[hub] = max(float(sp((hub, "elec_link", "main"), "give_kw") or 0.0), 0.0)
                take[hub] = max(float(sp((hub, "elec_link", "main"), "take_kw") or 0.0), 0.0)
            tg, tt = sum(give.values()), sum(take.values())
            if tg > tt:
                give = {h: v * (tt / tg if tg > 0 else 0.0) for h, v in give.items()}
            else:
                take = {h: v * (tg / tt if tt > 0 else 0.0) for h, v in take.items()}
        # heat loop per hub
        for hub in s.hubs:
            d = hubs[hub]
            chp_heat = sum(
                c.spec.eta_th * (c.a_fuel * p + c.b_fuel_kw * u) for c, u, p in d["chp"].values()
            )
            boiler = sum(q for _b, q in d["boil"].values())
            supply = chp_heat - inj[hub] + wd[hub] + d["hp_heat"] + d["solar"] + boiler
            r = supply - d["heat"] - d["feed"]
            store_kw = 0.0
            for key, store in s.stores.get(hub, {}).items():
                cap = float(pyo.value(store.capacity_expr()))
                spec, sk = store.spec, f"{hub}/{key}"
                e = self.soc[sk] * cap
                keep = (1.0 - spec.loss_per_h) ** dt
                if r > 0:
                    x = min(
                        r,
                        spec.c_rate_per_h * cap,
                        max(0.0, (cap - e * keep) / (spec.eta_charge * dt)),
                    )
                    e = e * keep + x * spec.eta_charge * dt
                    store_kw += x
                    r -= x
                else:
                    x = min(
                        -r, spec.c_rate_per_h * cap, max(0.0, e * keep * spec.eta_discharge / dt)
                    )
                    e = e * keep - x / spec.eta_discharge * dt
                    store_kw -= x
                    r += x
                self.soc[sk] = min(max(e / cap, 0.0), 1.0) if cap > 0 else 0.0
                last[f"store.{sk}"] = (self.soc[sk], store_kw)
            unmet = dump = 0.0
            if r < 0:  # boilers' thermostat backs up the loop
                for model, (b, q) in d["boil"].items():
                    extra = min(-r, b.size_kw.value() - q)
                    d["boil"][model][1] = q + extra
                    r += extra
                unmet = max(-r, 0.0)
            elif r > 0:  # boilers down, then the CHP units (heat-led derate), then dissipated
                for model, (b, q) in d["boil"].items():
                    cut = min(r, q)
                    d["boil"][model][1] = q - cut
                    r -= cut
                for model, entry in d["chp"].items():
                    c, u, p = entry
                    if r <= 1e-9 or u == 0:
                        continue
                    p_new = max(
                        c.spec.min_load * c.spec.p_el_kw * u, p - r / (c.spec.eta_th * c.a_fuel)
                    )
                    r -= c.spec.eta_th * c.a_fuel * (p - p_new)
                    entry[2] = p_new
                dump = max(r, 0.0)
            chp_el = sum(p for _c, _u, p in d["chp"].values())
            chp_heat = sum(
                c.spec.eta_th * (c.a_fuel * p + c.b_fuel_kw * u) for c, u, p in d["chp"].values()
            )
            chp_fuel = sum(c.a_fuel * p + c.b_fuel_kw * u for c, u, p in d["chp"].values())
            chp_om = sum(c.spec.om_eur_per_kwh_el * p for c, _u, p in d["chp"].values())
            boiler = sum(q for _b, q in d["boil"].values())
            boiler_fuel = sum(q / b.spec.eta for b, q in d["boil"].values())
            el[hub] += give[hub] - take[hub] - chp_el
            chill_el = sum(
                ch.spec.aux_el_fraction * d["chill"][ch.model] for ch in s.chillers.get(hub, [])
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
                    f"{hub}.dh_to_kw": inj[hub],
                    f"{hub}.dh_from_kw": wd[hub],
                    f"{hub}.link_give_kw": give[hub],
                    f"{hub}.link_take_kw": take[hub],
                    f"{hub}.heat_unmet_kw": unmet,
                    f"{hub}.heat_dump_kw": dump,
                    f"{hub}.cooling_unmet_kw": d["cool_unmet"],
                    f"{hub}.gas_kw": chp_fuel + boiler_fuel,
                    f"{hub}.chp_om_eur_per_h": chp_om,
                }
            )
            for model, (c, u, p) in d["chp"].items():
                last[f"chp.{hub}.{model}"] = (
                    u,
                    p,
                    c.spec.eta_th * (c.a_fuel * p + c.b_fuel_kw * u),
                    c.a_fuel * p + c.b_fuel_kw * u,
                )
            for dev, mode, p, q in d["hp"]:
                last[f"hp.{hub}.{dev}"] = (mode, p, q)
            for model, (b, q) in d["boil"].items():
                last[f"boiler.{hub}.{model}"] = (q, q / b.spec.eta)
            for model, c_kw in d["chill"].items():
                ch = next(x for x in s.chillers[hub] if x.model == model)
                last[f"chiller.{hub}.{model}"] = (
                    c_kw,
                    c_kw / ch.spec.cop_th,
                    ch.spec.aux_el_fraction * c_kw,
                )
            last[f"dh.{hub}"] = (inj[hub], wd[hub])
            last[f"link.{hub}"] = (give[hub], take[hub])
            for (h, c), dem in s.thermal_demands.items():
                if h == hub:
                    last[f"meter.{hub}.{c}"] = self._col(dem.column, i)
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
