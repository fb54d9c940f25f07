"""The thermal side of the simulated plant (``ems run --simulate`` on a multi-energy site).

Per step (:func:`thermal_step`), every device within its limits (its physics lives in its
technology's module, :mod:`ems.techs.plant`):

- each hub's demands and solar heat, then the hub's heat-led rule
  (:func:`ems.operation.fallback.rule_setpoints`) for the devices without a valid setpoint;
- the devices run their setpoint or the rule (CHP, heat pumps, chillers, boilers…);
- stations that couple hubs state what they exchange, their networks balance them (the larger
  side scaled down), no exchange in the baseline;
- each hub's heat loop (heating and DHW lumped): planned supply − demand goes into the stores in
  order within power and content limits; a deficit beyond that is backed up (the boilers'
  thermostat, up to capacity), then counted unmet; a surplus beyond that turns devices down in
  their turndown order (gas boilers, electric boilers, then the CHP units heat-led within min
  load), then is counted as dissipated heat.

Missing or expired setpoints → each device's safe mode: the hub's heat-led rule on the measured
demand, no exchange. The no-optimisation baseline runs the same rule for every device.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ems.operation.assembly import OperationSetup
from ems.operation.fallback import rule_setpoints
from ems.techs.plant import HubStep, device_classes, row_quantities

#: rows of the heat loop itself (every hub of a multi-energy site)
LOOP_ROWS = ("heat_load_kw", "cooling_load_kw", "gas_kw")


def thermal_step(sim: Any, hs: dict[str, HubStep]) -> float | None:
    """One step of the thermal side of every hub (``sim``: :class:`adapters.sim.plant.PlantSim`);
    leaves each hub's thermal electric power in ``HubStep.th_el`` and its rows in the step's row.
    Returns the outdoor temperature of the step (the weather station's next reading)."""
    hubs, i = sim.setup.hubs, sim.i
    temps = {c: sim.col(c, i, 15.0) for c in sim.temperature_columns}
    for hub in hubs:
        h = hs[hub]
        h.temps = temps
        for d in sim.of_hub(hub):
            d.demand(h)
        heat, solar = h.sums.total("heat_demand"), h.sums.total("solar")
        cool = h.sums.total("cool_demand")
        h.rules = rule_setpoints(sim.setup, hub, max(heat - solar, 0.0), cool, temps)
        h.cool_left = cool
        for d in sim.of_hub(hub):
            d.run(h)
    for hub in hubs:
        for d in sim.of_hub(hub):
            d.exchange(hs[hub])
    for d in sim.devices:
        d.balance_network(sim.devices, hs[hubs[0]].baseline if hubs else True)
    for hub in hubs:
        for d in sim.of_hub(hub):
            d.settle(hs[hub])
    for hub in hubs:
        _heat_loop(sim, hs[hub])
    return next(iter(temps.values()), None)


def _heat_loop(sim: Any, h: HubStep) -> None:
    """Close a hub's heat loop and record its step."""
    devs = sim.of_hub(h.hub)
    r = h.sums.apply(h.sums.total("heat_supply"), "heat_use")
    for d in devs:
        r = d.absorb(h, r)
    unmet = dump = 0.0
    if r < 0:
        for d in devs:
            r = d.backup(h, r)
        unmet = max(-r, 0.0)
    elif r > 0:
        for d in sorted(devs, key=lambda d: d.turndown_order):
            r = d.turndown(h, r)
        dump = max(r, 0.0)
    for d in devs:
        d.record(h)
    hub = h.hub
    for q in (*LOOP_ROWS, *row_quantities(thermal=True)):
        h.row[f"{hub}.{q}"] = h.rows.total(q)
    h.row[f"{hub}.store_kw"] = h.store_kw
    h.row[f"{hub}.heat_unmet_kw"] = unmet
    h.row[f"{hub}.heat_dump_kw"] = dump
    h.row[f"{hub}.cooling_unmet_kw"] = max(h.cool_left, 0.0)
    h.th_el = h.th_el + h.sums.apply(0.0, "el_exchange")


def thermal_kpis(
    rows: list[dict[str, float]], setup: OperationSetup, dt_h: float
) -> dict[str, float]:
    """Day KPIs of the thermal side from the executed steps (gas at the scenario's price; each
    kind adds its own)."""
    if not rows or not setup.has_thermal():
        return {}
    df = pd.DataFrame(rows)
    hubs = setup.hubs

    def total(q: str) -> float:
        cols = [f"{h}.{q}" for h in hubs if f"{h}.{q}" in df.columns]
        return float(df[cols].to_numpy().sum() * dt_h) if cols else 0.0

    gas_kwh = total("gas_kw")
    imp = total("import_kw")
    em = setup.scenario.emissions
    out: dict[str, Any] = {
        "gas_kwh": gas_kwh,
        "gas_eur": gas_kwh * setup.scenario.prices.gas_eur_per_kwh,
        "heat_load_kwh": total("heat_load_kw"),
        "heat_unmet_kwh": total("heat_unmet_kw"),
        "heat_dump_kwh": total("heat_dump_kw"),
        "cooling_unmet_kwh": total("cooling_unmet_kw"),
        "co2_t": gas_kwh * em.gas_t_per_mwh / 1000 + imp * em.grid_t_per_mwh / 1000,
    }
    for cls in device_classes():
        if cls.thermal:
            cls.kpis([], df, dt_h, hubs, out)
    return out
