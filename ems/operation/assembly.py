"""Operation-side assembly: the design technologies with sizes fixed, plus operation-only ones.

``techs_from_scenario`` (the same wiring design mode uses) builds every technology with the sizes
of ``sizes.yaml`` as parameters; this module then swaps the design EV fleet (a daily schedule of
vehicles) for live charge points (:mod:`ems.operation.ev_points`) and appends the AI clusters of
the site. The result feeds :func:`ems.model.builder.build_model` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ems.config.schema import Catalogue, ChargerSpec, Scenario, load_scenario
from ems.errors import ConfigError
from ems.model.assembly import electricity_column, grid_exclusivity_needed, techs_from_scenario
from ems.operation.ev_points import ChargePoint, EvChargePoints
from ems.operation.forecast import Forecaster, SiteProfile
from ems.operation.site import SiteConfig, read_sizes
from ems.techs.absorption_chiller import AbsorptionChiller
from ems.techs.ai_cluster import AiCluster
from ems.techs.base import Technology
from ems.techs.battery import Battery
from ems.techs.boiler import Boiler
from ems.techs.chp import Chp
from ems.techs.demand import Demand
from ems.techs.district_heating import DhStation
from ems.techs.elec_link import LinkStation
from ems.techs.ev_fleet import EvFleet
from ems.techs.grid import Grid
from ems.techs.heat_pump import HeatPump
from ems.techs.pv import Photovoltaic
from ems.techs.solar_thermal import SolarThermal
from ems.techs.thermal_storage import ThermalStorage

#: Outdoor temperature written into the model when it is built: every heat-pump capacity is at
#: its rated value at or above 7 °C, so the output variables' bounds (computed from the data at
#: build time) stay valid for every temperature the step updates bring.
BUILD_T_AMB_C = 20.0


@dataclass
class OperationSetup:
    """Technology instances of the operation model and where each device lives."""

    scenario: Scenario
    catalogue: Catalogue
    sizes: dict[str, dict[str, Any]]
    techs: list[Technology]
    limits: dict[tuple[str, str], float]
    exclusive_grid: bool
    demands: dict[str, Demand] = field(default_factory=dict)  # hub -> electric demand
    grids: dict[str, Grid] = field(default_factory=dict)
    pvs: dict[str, list[Photovoltaic]] = field(default_factory=dict)
    batteries: dict[str, Battery] = field(default_factory=dict)
    ev_points: dict[str, EvChargePoints] = field(default_factory=dict)
    ai_clusters: dict[str, AiCluster] = field(default_factory=dict)  # device id -> tech
    # multi-energy devices (installed size > 0 only; empty slots stay in the model, not devices)
    thermal_demands: dict[tuple[str, str], Demand] = field(
        default_factory=dict
    )  # (hub, carrier) -> demand
    chps: dict[str, list[Chp]] = field(
        default_factory=dict
    )  # hub -> one per CHP model (device id = model)
    heat_pumps: dict[str, list[HeatPump]] = field(
        default_factory=dict
    )  # hub -> one per model (units = devices)
    boilers: dict[str, list[Boiler]] = field(default_factory=dict)
    chillers: dict[str, list[AbsorptionChiller]] = field(default_factory=dict)
    stores: dict[str, dict[str, ThermalStorage]] = field(
        default_factory=dict
    )  # hub -> {"puffer"|"bollitore": tech}
    solar_thermal: dict[str, SolarThermal] = field(default_factory=dict)
    dh_stations: dict[str, DhStation] = field(default_factory=dict)
    links: dict[str, LinkStation] = field(default_factory=dict)

    @property
    def hubs(self) -> list[str]:
        return [h.id for h in self.scenario.hubs]

    def yield_columns(self) -> list[str]:
        return sorted({pv.spec.yield_column for pvs in self.pvs.values() for pv in pvs})

    def thermal_demand_columns(self) -> list[str]:
        return list(dict.fromkeys(d.column for d in self.thermal_demands.values()))

    def temperature_columns(self) -> list[str]:
        """Outdoor-temperature columns the heat pumps read (COP and capacity)."""
        return sorted(
            {hp.spec.temperature_column for hps in self.heat_pumps.values() for hp in hps}
        )

    def solar_thermal_columns(self) -> list[str]:
        return sorted({st.spec.output_column for st in self.solar_thermal.values()})

    def data_columns(self) -> list[str]:
        """Every data column a technology of the model reads (each gets a forecast per step)."""
        cols = [d.column for d in self.demands.values()] + self.yield_columns()
        cols += (
            self.thermal_demand_columns()
            + self.temperature_columns()
            + self.solar_thermal_columns()
        )
        return list(dict.fromkeys(cols + ["price_buy_eur_per_kwh", "price_sell_eur_per_kwh"]))

    def build_values(self) -> dict[str, float]:
        """Column values the model is built with (before the first step's forecasts): 0 except
        the outdoor temperature (see :data:`BUILD_T_AMB_C`)."""
        return {c: BUILD_T_AMB_C for c in self.temperature_columns()}

    def has_thermal(self) -> bool:
        return bool(
            self.thermal_demands
            or self.chps
            or self.heat_pumps
            or self.boilers
            or self.chillers
            or self.stores
            or self.solar_thermal
            or self.dh_stations
            or self.links
        )

    def hp_units(self, hub: str) -> list[tuple[HeatPump, str]]:
        """Heat-pump devices of a hub: one per installed unit, id ``<model>_<i>``."""
        out = []
        for hp in self.heat_pumps.get(hub, []):
            for i in range(int(round(hp.n.value_units())) if hp.n else 0):
                out.append((hp, f"{hp.model}_{i + 1}"))
        return out

    def pv_kwp(self, hub: str) -> dict[str, float]:
        """Installed kWp per yield column at a hub."""
        out: dict[str, float] = {}
        for pv in self.pvs.get(hub, []):
            out[pv.spec.yield_column] = out.get(pv.spec.yield_column, 0.0) + (pv.fixed_kwp or 0.0)
        return out


def installed_scenario(scenario: Scenario, fixed: dict[str, dict[str, Any]]) -> Scenario:
    """The scenario with every installable maximum set to the installed size (sizes fixed).

    In operation the sizes are parameters, so the feasible set is the same; what changes are the
    bounds and big-M values derived from the maxima (units-on bounds, district-heating and link
    limits from the CHP heat and the flexible uses a hub *could* have): from what a design allowed
    (e.g. 3 units of each of five CHP models per hub) to what is installed — a tighter relaxation
    and a faster step (SPEC §3 "big-M values derived from data")."""
    s = scenario.model_copy(deep=True)
    for hub in s.hubs:
        f = fixed.get(hub.id)
        if f is None:
            continue
        for lim in list(hub.chp) + list(hub.heat_pumps) + list(hub.absorption_chillers):
            if not lim.asis_only:
                lim.max_units = max(
                    int(round(float((f.get(lim.type) or {}).get("n_units") or 0))), 0
                )
        for pv in hub.pv:
            pv.max_kwp = float((f.get(pv.type) or {}).get("kwp") or 0.0)
        if hub.battery is not None:
            hub.battery.max_modules = int((f.get("battery") or {}).get("modules") or 0)
        for ch in hub.chargers:
            ch.max_units = int((f.get("chargers") or {}).get(ch.type) or 0)
        for b in hub.boilers:
            if not b.asis_only:
                b.max_kw = max(float((f.get(b.type) or {}).get("kw") or 0.0) - b.existing_kw, 0.0)
    return s


def _units(fixed: dict[str, Any] | None, key: str, existing: float) -> float:
    """Installed size of a multi-energy tech as the model will hold it (``fixed_value``: an entry
    missing from sizes.yaml is 0, as for the battery)."""
    if fixed is None:
        return float(existing or 0.0)
    return float(fixed.get(key) or 0.0)


def _store_kwh(tech: ThermalStorage) -> float:
    if tech.fixed is None:
        return float(tech.existing_kwh)
    if tech.choice == "continuous" or tech.existing_kwh > 0:
        return float(tech.fixed.get("kwh") or 0.0)
    return sum(
        x * float(tech.fixed.get(f"pick_{x:g}kwh".replace(".", "_")) or 0.0)
        for x in tech.spec.sizes_kwh
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


def operation_setup(
    site: SiteConfig,
    scenario: Scenario | None = None,
    catalogue: Catalogue | None = None,
    sale_can_exceed_purchase: bool | None = None,
) -> OperationSetup:
    """Technologies of the operation model for a site (sizes fixed from its sizes.yaml)."""
    if scenario is None or catalogue is None:
        scenario, catalogue = load_scenario(site.resolve(site.scenario))
    sizes = read_sizes(site.resolve(site.sizes), site.sizes_override)
    hubs = {h.id: h for h in scenario.hubs}
    for hub in sizes:
        if hub not in hubs:
            raise ConfigError(
                str(site.resolve(site.sizes)),
                f"hubs.{hub}",
                f"not a hub of scenario {scenario.name}",
            )
    for ai in site.ai_clusters:
        if ai.hub not in hubs:
            raise ConfigError(
                str(site.path_ or "site"),
                f"ai_clusters.{ai.id}.hub",
                f"{ai.hub!r} is not a hub of the scenario",
            )
    if sale_can_exceed_purchase is None:
        sale_can_exceed_purchase = False
    exclusive = grid_exclusivity_needed(scenario, sale_can_exceed_purchase)
    # hubs absent from sizes.yaml keep their existing equipment
    fixed = {h: sizes.get(h, {}) for h in hubs}
    techs, limits = techs_from_scenario(
        installed_scenario(scenario, fixed), catalogue, exclusive_grid=exclusive, fixed_sizes=fixed
    )
    setup = OperationSetup(scenario, catalogue, sizes, [], limits, exclusive)
    for tech in techs:
        if isinstance(tech, EvFleet):
            pts = charge_points(fixed[tech.hub], catalogue, hubs[tech.hub].chargers)
            if pts:
                evp = EvChargePoints(
                    f"{tech.hub}_ev",
                    tech.hub,
                    pts,
                    short_penalty_eur_per_kwh=site.ev_short_penalty_eur_per_kwh,
                )
                setup.ev_points[tech.hub] = evp
                setup.techs.append(evp)
            continue
        setup.techs.append(tech)
        if isinstance(tech, Demand) and tech.column == electricity_column(tech.hub, scenario):
            setup.demands[tech.hub] = tech
        elif isinstance(tech, Grid):
            setup.grids[tech.hub] = tech
        elif isinstance(tech, Photovoltaic) and (tech.fixed_kwp or 0) > 0:
            setup.pvs.setdefault(tech.hub, []).append(tech)
        elif isinstance(tech, Battery) and (tech.fixed_modules or 0) > 0:
            setup.batteries[tech.hub] = (
                tech  # an empty battery slot stays in the model, not a device
            )
        elif isinstance(tech, Demand):
            setup.thermal_demands[(tech.hub, tech.carrier)] = tech
        elif isinstance(tech, Chp) and _units(tech.fixed, "n_units", tech.existing_units) > 0:
            setup.chps.setdefault(tech.hub, []).append(tech)
        elif (
            isinstance(tech, HeatPump)
            and _units(tech.fixed, "n_units", tech.existing_units) > 0
            and tech.modes
        ):
            setup.heat_pumps.setdefault(tech.hub, []).append(tech)
        elif isinstance(tech, Boiler) and _units(tech.fixed, "kw", tech.existing_kw) > 0:
            setup.boilers.setdefault(tech.hub, []).append(tech)
        elif (
            isinstance(tech, AbsorptionChiller)
            and _units(tech.fixed, "n_units", tech.existing_units) > 0
        ):
            setup.chillers.setdefault(tech.hub, []).append(tech)
        elif isinstance(tech, ThermalStorage) and _store_kwh(tech) > 0:
            key = "puffer" if tech.spec.carrier == "heat" else "bollitore"
            setup.stores.setdefault(tech.hub, {})[key] = tech
        elif isinstance(tech, SolarThermal) and _units(tech.fixed, "m2", 0.0) > 0:
            setup.solar_thermal[tech.hub] = tech
        elif isinstance(tech, DhStation) and _units(tech.fixed, "y_dh", 0.0) > 0:
            setup.dh_stations[tech.hub] = tech
        elif isinstance(tech, LinkStation):
            setup.links[tech.hub] = tech
    for ai in site.ai_clusters:
        tech = AiCluster(
            f"{ai.hub}_{ai.id}",
            ai.hub,
            rated_kw=ai.rated_kw,
            floor_kw=ai.floor_kw,
            max_jobs=ai.max_jobs,
            missed_penalty_eur_per_kwh=ai.missed_penalty_eur_per_kwh,
        )
        setup.ai_clusters[ai.id] = tech
        setup.techs.append(tech)
    # the community rule must come after every grid (it reads their import/export)
    setup.techs.sort(key=lambda t: t.kind == "virtual_community")
    return setup


def site_forecaster(site: SiteConfig, scenario: Scenario) -> Forecaster:
    """Forecaster of a site from its scenario (location, tariff, hourly profile year)."""
    import pandas as pd

    if not scenario.time.hourly_csv:
        raise ConfigError(
            str(site.resolve(site.scenario)),
            "time.hourly_csv",
            "operation needs an hourly profile year",
        )
    path = scenario.path(scenario.time.hourly_csv)
    hourly = pd.read_csv(path, index_col="timestamp", parse_dates=True)
    p = scenario.prices
    return Forecaster(
        SiteProfile(hourly),
        lat=scenario.site.lat,
        lon=scenario.site.lon,
        altitude_m=getattr(scenario.site, "altitude_m", 0.0) or 0.0,
        purchase_bands=p.purchase_bands,
        purchase_column=p.purchase_column,
        sale_column=p.sale_column,
        sale_eur_per_kwh=p.sale_eur_per_kwh,
        sale_factor=p.sale_factor,
    )


def sale_can_exceed_purchase(fc: Forecaster) -> bool:
    """Structure from configuration: can the sale price ever exceed the purchase price?"""
    if fc.sale_eur_per_kwh is not None:
        sale_max = fc.sale_eur_per_kwh
    else:
        sale_max = (
            fc.sale_factor * float(np.nanmax(fc.profile.table[fc.sale_column].to_numpy())) / 1000.0
        )
    if fc.purchase_bands is not None:
        b = fc.purchase_bands
        buy_min = min(x for x in (b.F1, b.F2, b.F3, b.F23) if x is not None)
    else:
        buy_min = float(np.nanmin(fc.profile.table[fc.purchase_column].to_numpy()))
    return sale_max >= buy_min


def load_operation(site_path: str | Path) -> tuple[SiteConfig, OperationSetup, Forecaster]:
    from ems.operation.site import load_site

    site = load_site(site_path)
    scenario, catalogue = load_scenario(site.resolve(site.scenario))
    fc = site_forecaster(site, scenario)
    setup = operation_setup(site, scenario, catalogue, sale_can_exceed_purchase(fc))
    return site, setup, fc
