"""From a validated scenario (and optionally fixed sizes) to technology instances.

This is the technology catalogue's wiring: adding a technology means its module plus a few lines
here. ``fixed_sizes`` (what design mode writes to ``sizes.yaml``) turns every size into a
parameter: the same model, sizes fixed (Calliope's operate mode, REopt's MPC).
"""

from __future__ import annotations

from typing import Any

from ems.config.schema import BatterySpec, Catalogue, ChargerSpec, PvTypeSpec, Scenario
from ems.techs.base import Technology
from ems.techs.battery import Battery
from ems.techs.community import VirtualCommunity
from ems.techs.demand import Demand
from ems.techs.ev_fleet import ChargerOption, EvFleet
from ems.techs.grid import Grid
from ems.techs.pv import Photovoltaic

SizesByHub = dict[str, dict[str, Any]]


def electricity_column(hub_id: str, scenario: Scenario) -> str:
    hub = next(h for h in scenario.hubs if h.id == hub_id)
    return hub.electricity.column or f"{hub_id}_electricity_kw"


def grid_exclusivity_needed(scenario: Scenario, sale_can_exceed_purchase: bool) -> bool:
    """Import/export exclusivity binaries only where simultaneous import and export could pay:
    a shared-energy incentive in a virtual community, or a sale price that can exceed purchase."""
    incentive = scenario.community == "virtual" and scenario.prices.incentive_eur_per_mwh > 0
    return incentive or sale_can_exceed_purchase


def techs_from_scenario(s: Scenario, cat: Catalogue, *, exclusive_grid: bool, fixed_sizes: SizesByHub | None = None,
                        ) -> tuple[list[Technology], dict[tuple[str, str], float]]:
    """Technology instances and shared limits (roof m² per hub) for a scenario."""
    techs: list[Technology] = []
    limits: dict[tuple[str, str], float] = {}
    grids: list[Grid] = []
    for hub in s.hubs:
        fixed = (fixed_sizes or {}).get(hub.id, {}) if fixed_sizes is not None else None
        techs.append(Demand(f"{hub.id}_load", hub.id, "electricity", electricity_column(hub.id, s)))
        grid = Grid(f"{hub.id}_grid", hub.id, hub.contract_kw, exclusive_grid, co2_t_per_mwh=s.emissions.grid_t_per_mwh)
        grids.append(grid)
        techs.append(grid)
        if hub.roof_area_m2 is not None:
            limits[("roof_m2", hub.id)] = hub.roof_area_m2
        for pv in hub.pv:
            spec: PvTypeSpec = cat.get(pv.type, PvTypeSpec, "pv")
            max_kwp = pv.max_kwp if pv.max_kwp is not None else (hub.roof_area_m2 or 0.0) * spec.kwp_per_m2
            name = f"{hub.id}_{pv.type}"
            techs.append(Photovoltaic(name, hub.id, spec, max_kwp, pv.existing_kwp,
                                      fixed_kwp=None if fixed is None else float(fixed.get(pv.type, {}).get("kwp", 0.0))))
        if hub.battery is not None and hub.battery.max_modules + hub.battery.existing_modules > 0:
            bspec: BatterySpec = cat.get(hub.battery.type, BatterySpec, "battery")
            techs.append(Battery(f"{hub.id}_battery", hub.id, bspec, hub.battery.max_modules, hub.battery.existing_modules,
                                 fixed_modules=None if fixed is None else int(fixed.get("battery", {}).get("modules", 0))))
        if hub.vehicles:
            options = []
            for ch in hub.chargers:
                cspec: ChargerSpec = cat.get(ch.type, ChargerSpec, "chargers")
                fixed_units = None if fixed is None else int(fixed.get("chargers", {}).get(ch.type, 0))
                options.append(ChargerOption(ch.type, cspec, ch.max_units, ch.existing_units, fixed_units))
            techs.append(EvFleet(f"{hub.id}_ev", hub.id, list(hub.vehicles), options))
    if s.community == "virtual" and s.prices.incentive_eur_per_mwh > 0:
        techs.append(VirtualCommunity(grids, s.prices.incentive_eur_per_mwh))
    return techs, limits
