"""The multi-energy side of the controller: CHP, heat pumps, boilers, absorption chillers, thermal
stores, solar thermal, district heating and the physical electric links between hubs.

Pure functions over an :class:`~ems.operation.assembly.OperationSetup` whose model is built:

- :func:`update` writes the step's data into the model's mutable Params (thermal demands, outdoor
  temperature → heat-pump COP and capacity, solar-thermal output, stores' initial state, gas price);
- :func:`plan_setpoints` reads the first step of the plan: CHP ``units_on`` + ``p_kw`` per model,
  one setpoint per heat-pump *unit* (``mode`` + ``p_kw``; a unit runs in one mode), boiler
  ``heat_kw``, chiller ``cooling_kw``, thermal store ``p_kw`` (advisory: a store is passive and
  takes the mismatch of the hydraulic loop), district-heating ``to_kw``/``from_kw``, link
  ``give_kw``/``take_kw``;
- :func:`fallback_setpoints` the rule-based ones (:func:`ems.operation.fallback.thermal_rule`:
  CHP follows the heat demand, heat pumps cover the rest, boilers back up; no exchange);
- :func:`plan_columns` the thermal columns of the plan frame.

Setpoints are returned as ``(hub, kind, device, values)``; the controller wraps them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.operation import fallback
from ems.operation.assembly import OperationSetup
from ems.techs.heat_pump import cop_and_capacity

Raw = tuple[str, str, str, dict[str, Any]]
Fit = Callable[[Any, int, str], np.ndarray]

HEAT_CARRIERS = ("heat", "dhw")


def update(s: OperationSetup, inp: Any, n: int, fit: Fit) -> None:
    """Write the thermal data of a step into the Params (values only, never structure)."""
    cols = inp.columns
    for (hub, _carrier), dem in s.thermal_demands.items():
        dem.update(fit(cols.get(dem.column), n, f"columns[{dem.column}]"))
    for hps in s.heat_pumps.values():
        for hp in hps:
            hp.update(
                fit(
                    cols.get(hp.spec.temperature_column),
                    n,
                    f"columns[{hp.spec.temperature_column}]",
                )
            )
    for st in s.solar_thermal.values():
        st.update(fit(cols.get(st.spec.output_column), n, f"columns[{st.spec.output_column}]"))
    for hub, stores in s.stores.items():
        for key, store in stores.items():
            if (hub, key) in inp.store_soc:
                store.update(inp.store_soc[(hub, key)])
    if inp.gas_eur_per_kwh is not None:
        for t in s.techs:
            if t.kind in ("chp", "boiler"):
                t.update(gas_eur_per_kwh=inp.gas_eur_per_kwh)


def _r(x: float) -> float:
    return round(max(float(x), 0.0), 3) + 0.0


def plan_setpoints(s: OperationSetup, k0: tuple[str, int]) -> list[Raw]:
    v = pyo.value
    out: list[Raw] = []
    for hub in s.hubs:
        for chp in s.chps.get(hub, []):
            b = chp.block
            units = int(round(v(b.u_on[k0])))
            out.append(
                (
                    hub,
                    "chp",
                    chp.model,
                    {"units_on": units, "p_kw": _r(v(b.p_el_kw[k0])) if units else 0.0},
                )
            )
        for hp in s.heat_pumps.get(hub, []):
            b = hp.block
            modes: list[tuple[str, float]] = []  # per unit: (mode, P_el)
            for k in hp.modes:
                u = int(round(v(b.u_mode[k, k0])))
                q = v(b.q_kw[k, k0])
                for _ in range(u):
                    modes.append((k, q / u * v(b.el_per_kwh_out[k, k0])))
            units = [d for h, d in s.hp_units(hub) if h is hp]
            for i, dev in enumerate(units):
                mode, p = modes[i] if i < len(modes) else ("off", 0.0)
                if _r(p) <= 0.0:
                    mode, p = "off", 0.0  # a unit counted in a mode with no output is off
                out.append((hub, "heat_pump", dev, {"mode": mode, "p_kw": _r(p)}))
        for boiler in s.boilers.get(hub, []):
            b = boiler.block
            out.append(
                (hub, "boiler", boiler.model, {"heat_kw": _r(sum(v(b.q_kw[c, k0]) for c in b.C))})
            )
        for ch in s.chillers.get(hub, []):
            out.append(
                (hub, "absorption_chiller", ch.model, {"cooling_kw": _r(v(ch.block.q_cool_kw[k0]))})
            )
        for key, store in s.stores.get(hub, {}).items():
            b = store.block
            out.append(
                (
                    hub,
                    "thermal_storage",
                    key,
                    {"p_kw": round(v(b.q_charge_kw[k0]) - v(b.q_discharge_kw[k0]), 3) + 0.0},
                )
            )
        if hub in s.dh_stations:
            b = s.dh_stations[hub].block
            to, fr = v(b.q_to_kw[k0]), v(b.from_total[k0])
            # without the exclusivity binaries (scenario district_heating.exclusive: false) a plan
            # may inject and withdraw at once; a substation does one or the other: the net flow
            out.append(
                (
                    hub,
                    "dh_station",
                    "main",
                    {"to_kw": _r(to - min(to, fr)), "from_kw": _r(fr - min(to, fr))},
                )
            )
        if hub in s.links:
            b = s.links[hub].block
            give, take = v(b.p_to_kw[k0]), v(b.p_from_kw[k0])
            out.append(
                (
                    hub,
                    "elec_link",
                    "main",
                    {"give_kw": _r(give - min(give, take)), "take_kw": _r(take - min(give, take))},
                )
            )
    return out


def chp_rule_units(chp: Any) -> fallback.ChpUnits:
    return fallback.ChpUnits(
        chp.model,
        int(round(chp.n.value_units())),
        chp.spec.p_el_kw,
        chp.spec.min_load,
        chp.a_fuel,
        chp.b_fuel_kw,
        chp.spec.eta_th,
    )


def hp_rule_units(hp: Any, t_amb_c: float) -> fallback.HpUnits:
    cop, cap = (
        cop_and_capacity(hp.spec, "heating", t_amb_c) if "heating" in hp.modes else (3.0, 0.0)
    )
    eer, cool = (
        cop_and_capacity(hp.spec, "cooling", t_amb_c) if "cooling" in hp.modes else (3.0, 0.0)
    )
    return fallback.HpUnits(
        hp.model, int(round(hp.n.value_units())), tuple(hp.modes), cop, cap, eer, cool
    )


def hub_rule(
    s: OperationSetup, hub: str, heat_kw: float, cooling_kw: float, t_amb_c: dict[str, float]
) -> fallback.ThermalRulePlan:
    """The heat-led rule of one hub from its installed devices (shared with the simulated plant's
    baseline)."""
    hps = [
        hp_rule_units(hp, t_amb_c.get(hp.spec.temperature_column, 15.0))
        for hp in s.heat_pumps.get(hub, [])
    ]
    boilers = [(b.model, b.size_kw.value()) for b in s.boilers.get(hub, [])]
    chillers = [(c.model, c.n.value(), c.spec.cop_th) for c in s.chillers.get(hub, [])]
    return fallback.thermal_rule(
        heat_kw,
        cooling_kw,
        [chp_rule_units(c) for c in s.chps.get(hub, [])],
        hps,
        boilers,
        chillers,
    )


def rule_setpoints(s: OperationSetup, hub: str, plan: fallback.ThermalRulePlan) -> list[Raw]:
    out: list[Raw] = []
    for chp in s.chps.get(hub, []):
        units, p, _q = plan.chp.get(chp.model, (0, 0.0, 0.0))
        out.append((hub, "chp", chp.model, {"units_on": int(units), "p_kw": _r(p)}))
    hp_set = {(m, i): (mode, p) for m, i, mode, p, _q in plan.hp}
    for hp, dev in s.hp_units(hub):
        i = int(dev.rsplit("_", 1)[1])
        mode, p = hp_set.get((hp.model, i), ("off", 0.0))
        out.append((hub, "heat_pump", dev, {"mode": mode, "p_kw": _r(p)}))
    for b in s.boilers.get(hub, []):
        out.append((hub, "boiler", b.model, {"heat_kw": _r(plan.boiler.get(b.model, 0.0))}))
    for c in s.chillers.get(hub, []):
        out.append(
            (hub, "absorption_chiller", c.model, {"cooling_kw": _r(plan.chiller.get(c.model, 0.0))})
        )
    for key in s.stores.get(hub, {}):
        out.append(
            (hub, "thermal_storage", key, {"p_kw": 0.0})
        )  # passive: takes the loop's mismatch
    if hub in s.dh_stations:
        out.append((hub, "dh_station", "main", {"to_kw": 0.0, "from_kw": 0.0}))
    if hub in s.links:
        out.append((hub, "elec_link", "main", {"give_kw": 0.0, "take_kw": 0.0}))
    return out


def first(inp: Any, column: str, default: float = 0.0) -> float:
    arr = inp.columns.get(column)
    if arr is None or len(arr) == 0 or not np.isfinite(arr[0]):
        return default
    return float(arr[0])


def demand_now(s: OperationSetup, inp: Any, hub: str) -> tuple[float, float]:
    """(heat + DHW net of solar thermal, cooling) demand of a hub now, from the step's forecast."""
    heat = sum(
        first(inp, d.column)
        for (h, c), d in s.thermal_demands.items()
        if h == hub and c in HEAT_CARRIERS
    )
    cool = sum(
        first(inp, d.column)
        for (h, c), d in s.thermal_demands.items()
        if h == hub and c == "cooling"
    )
    st = s.solar_thermal.get(hub)
    if st is not None and st.area is not None:
        heat -= st.area.value() * max(first(inp, st.spec.output_column), 0.0)
    return max(heat, 0.0), max(cool, 0.0)


def fallback_setpoints(s: OperationSetup, inp: Any) -> list[Raw]:
    out: list[Raw] = []
    temps = {c: first(inp, c, 15.0) for c in s.temperature_columns()}
    for hub in s.hubs:
        heat, cool = demand_now(s, inp, hub)
        out += rule_setpoints(s, hub, hub_rule(s, hub, heat, cool, temps))
    return out


def plan_alerts(s: OperationSetup, k0: tuple[str, int], threshold_kw: float = 1.0) -> list[str]:
    """Alerts for a plan whose first step leaves heat, DHW or cooling unserved, or has to throw CHP
    heat away (slack of the soft balances: the plant cannot do what is asked)."""
    out: list[str] = []
    dem = next(iter(s.thermal_demands.values()), None)
    m = dem.block.model() if dem is not None else None
    if m is None or not hasattr(m, "unmet_kw"):
        return out
    for hub, carrier in m.B:
        if carrier == "electricity":
            continue
        unmet, dump = (
            pyo.value(m.unmet_kw[hub, carrier, k0]),
            pyo.value(m.dump_kw[hub, carrier, k0]),
        )
        if unmet > threshold_kw:
            out.append(f"{hub}: {carrier} demand not covered by {unmet:.1f} kW in the plan")
        if dump > threshold_kw:
            out.append(f"{hub}: the plan dissipates {dump:.1f} kW of {carrier.replace('_', ' ')}")
    return out


def electric_kw(raw: list[Raw]) -> dict[str, float]:
    """Electric power (kW) the thermal setpoints draw per hub: heat pumps − CHP (links excluded)."""
    out: dict[str, float] = {}
    for hub, kind, _dev, v in raw:
        if kind == "heat_pump":
            out[hub] = out.get(hub, 0.0) + float(v["p_kw"])
        elif kind == "chp":
            out[hub] = out.get(hub, 0.0) - float(v["p_kw"])
    return out


def plan_columns(s: OperationSetup, keys: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """Thermal columns of the plan frame (kW; ``*_kwh`` store contents; ``chp_units`` count)."""

    def vals(comp: Any, prefix: tuple = ()) -> np.ndarray:
        return np.array([pyo.value(comp[(*prefix, *k)]) for k in keys], dtype=float)

    cols: dict[str, np.ndarray] = {}
    m = None
    for (hub, carrier), dem in s.thermal_demands.items():
        cols[f"{hub}.{carrier}_load_kw"] = vals(dem.block.load_kw)
        m = dem.block.model()
    for hub in s.hubs:
        if hub in s.chps:
            cols[f"{hub}.chp_kw"] = sum(vals(c.block.p_el_kw) for c in s.chps[hub])
            cols[f"{hub}.chp_heat_kw"] = sum(
                c.spec.eta_th * vals(c.block.fuel_kw) for c in s.chps[hub]
            )
            cols[f"{hub}.chp_units"] = sum(vals(c.block.u_on) for c in s.chps[hub])
        if hub in s.heat_pumps:
            cols[f"{hub}.hp_kw"] = sum(vals(hp.block.p_el_kw) for hp in s.heat_pumps[hub])
            for k in ("heating", "dhw", "cooling"):
                q = [vals(hp.block.q_kw, (k,)) for hp in s.heat_pumps[hub] if k in hp.modes]
                if q:
                    cols[f"{hub}.hp_{k}_kw"] = sum(q)
        if hub in s.boilers:
            cols[f"{hub}.boiler_kw"] = sum(
                sum(vals(b.block.q_kw, (c,)) for c in b.block.C) for b in s.boilers[hub]
            )
        if hub in s.chillers:
            cols[f"{hub}.chiller_kw"] = sum(vals(c.block.q_cool_kw) for c in s.chillers[hub])
        for key, store in s.stores.get(hub, {}).items():
            cols[f"{hub}.{key}_kw"] = vals(store.block.q_charge_kw) - vals(
                store.block.q_discharge_kw
            )
            cols[f"{hub}.{key}_kwh"] = vals(store.block.e_kwh)
        if hub in s.solar_thermal:
            cols[f"{hub}.solar_thermal_kw"] = vals(s.solar_thermal[hub].block.q_kw)
        if hub in s.dh_stations:
            b = s.dh_stations[hub].block
            cols[f"{hub}.dh_to_kw"] = vals(b.q_to_kw)
            cols[f"{hub}.dh_from_kw"] = vals(b.from_total)
        if hub in s.links:
            b = s.links[hub].block
            cols[f"{hub}.link_give_kw"] = vals(b.p_to_kw)
            cols[f"{hub}.link_take_kw"] = vals(b.p_from_kw)
        if m is not None and hasattr(m, "unmet_kw"):
            for c in ("heat", "dhw", "cooling", "chp_heat", "chiller_feed", "dh_injection"):
                if (hub, c) in m.B:
                    cols[f"{hub}.{c}_unmet_kw"] = vals(m.unmet_kw, (hub, c))
                    cols[f"{hub}.{c}_dump_kw"] = vals(m.dump_kw, (hub, c))
    return cols
