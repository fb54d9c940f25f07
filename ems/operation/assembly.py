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

from ems.config.schema import Catalogue, ChargerSpec, PvTypeSpec, Scenario, load_scenario
from ems.errors import ConfigError
from ems.model.assembly import electricity_column, grid_exclusivity_needed, techs_from_scenario
from ems.operation.ev_points import ChargePoint, EvChargePoints
from ems.operation.forecast import Forecaster, SiteProfile
from ems.operation.site import SiteConfig, read_sizes
from ems.techs.ai_cluster import AiCluster
from ems.techs.base import Technology
from ems.techs.battery import Battery
from ems.techs.demand import Demand
from ems.techs.ev_fleet import EvFleet
from ems.techs.grid import Grid
from ems.techs.pv import Photovoltaic


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

    @property
    def hubs(self) -> list[str]:
        return [h.id for h in self.scenario.hubs]

    def yield_columns(self) -> list[str]:
        return sorted({pv.spec.yield_column for pvs in self.pvs.values() for pv in pvs})

    def data_columns(self) -> list[str]:
        cols = [d.column for d in self.demands.values()] + self.yield_columns()
        return list(dict.fromkeys(cols + ["price_buy_eur_per_kwh", "price_sell_eur_per_kwh"]))

    def pv_kwp(self, hub: str) -> dict[str, float]:
        """Installed kWp per yield column at a hub."""
        out: dict[str, float] = {}
        for pv in self.pvs.get(hub, []):
            out[pv.spec.yield_column] = out.get(pv.spec.yield_column, 0.0) + (pv.fixed_kwp or 0.0)
        return out


def charge_points(hub_sizes: dict[str, Any], cat: Catalogue, hub_chargers: list[Any]) -> list[ChargePoint]:
    """One point per installed charger (``cp1``, ``cp2``… in the order of the scenario's types)."""
    points: list[ChargePoint] = []
    installed = hub_sizes.get("chargers", {}) or {}
    for ch in hub_chargers:
        spec: ChargerSpec = cat.get(ch.type, ChargerSpec, "chargers")
        n = int(installed.get(ch.type, ch.existing_units) or 0)
        for _ in range(n):
            points.append(ChargePoint(f"cp{len(points) + 1}", ch.type, spec.p_kw, spec.mode, spec.eta))
    return points


def operation_setup(site: SiteConfig, scenario: Scenario | None = None, catalogue: Catalogue | None = None,
                    sale_can_exceed_purchase: bool | None = None) -> OperationSetup:
    """Technologies of the operation model for a site (sizes fixed from its sizes.yaml)."""
    if scenario is None or catalogue is None:
        scenario, catalogue = load_scenario(site.resolve(site.scenario))
    sizes = read_sizes(site.resolve(site.sizes), site.sizes_override)
    hubs = {h.id: h for h in scenario.hubs}
    for hub in sizes:
        if hub not in hubs:
            raise ConfigError(str(site.resolve(site.sizes)), f"hubs.{hub}", f"not a hub of scenario {scenario.name}")
    for ai in site.ai_clusters:
        if ai.hub not in hubs:
            raise ConfigError(str(site.path_ or "site"), f"ai_clusters.{ai.id}.hub", f"{ai.hub!r} is not a hub of the scenario")
    if sale_can_exceed_purchase is None:
        sale_can_exceed_purchase = False
    exclusive = grid_exclusivity_needed(scenario, sale_can_exceed_purchase)
    # hubs absent from sizes.yaml keep their existing equipment
    fixed = {h: sizes.get(h, {}) for h in hubs}
    techs, limits = techs_from_scenario(scenario, catalogue, exclusive_grid=exclusive, fixed_sizes=fixed)
    setup = OperationSetup(scenario, catalogue, sizes, [], limits, exclusive)
    for tech in techs:
        if isinstance(tech, EvFleet):
            pts = charge_points(fixed[tech.hub], catalogue, hubs[tech.hub].chargers)
            if pts:
                evp = EvChargePoints(f"{tech.hub}_ev", tech.hub, pts, short_penalty_eur_per_kwh=site.ev_short_penalty_eur_per_kwh)
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
            setup.batteries[tech.hub] = tech  # an empty battery slot stays in the model, not a device
    for ai in site.ai_clusters:
        tech = AiCluster(f"{ai.hub}_{ai.id}", ai.hub, rated_kw=ai.rated_kw, floor_kw=ai.floor_kw, max_jobs=ai.max_jobs,
                         missed_penalty_eur_per_kwh=ai.missed_penalty_eur_per_kwh)
        setup.ai_clusters[ai.id] = tech
        setup.techs.append(tech)
    # the community rule must come after every grid (it reads their import/export)
    setup.techs.sort(key=lambda t: t.kind == "virtual_community")
    return setup


def site_forecaster(site: SiteConfig, scenario: Scenario) -> Forecaster:
    """Forecaster of a site from its scenario (location, tariff, hourly profile year)."""
    import pandas as pd

    if not scenario.time.hourly_csv:
        raise ConfigError(str(site.resolve(site.scenario)), "time.hourly_csv", "operation needs an hourly profile year")
    path = scenario.path(scenario.time.hourly_csv)
    hourly = pd.read_csv(path, index_col="timestamp", parse_dates=True)
    p = scenario.prices
    return Forecaster(SiteProfile(hourly), lat=scenario.site.lat, lon=scenario.site.lon,
                      altitude_m=getattr(scenario.site, "altitude_m", 0.0) or 0.0,
                      purchase_bands=p.purchase_bands, purchase_column=p.purchase_column, sale_column=p.sale_column,
                      sale_eur_per_kwh=p.sale_eur_per_kwh, sale_factor=p.sale_factor)


def sale_can_exceed_purchase(fc: Forecaster) -> bool:
    """Structure from configuration: can the sale price ever exceed the purchase price?"""
    if fc.sale_eur_per_kwh is not None:
        sale_max = fc.sale_eur_per_kwh
    else:
        sale_max = fc.sale_factor * float(np.nanmax(fc.profile.table[fc.sale_column].to_numpy())) / 1000.0
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


