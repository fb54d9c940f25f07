"""Operation-side assembly: the design technologies with sizes fixed, plus operation-only ones.

``techs_from_scenario`` (the same wiring design mode uses) builds every technology with the sizes
of ``sizes.yaml`` as parameters; this module then swaps the design EV fleet (a daily schedule of
vehicles) for live charge points (:mod:`ems.techs.ev_charge_points`) and appends the AI clusters of
the site. The result feeds :func:`ems.model.builder.build_model` unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ems.config.schema import Catalogue, Scenario
from ems.errors import ConfigError
from ems.model.assembly import electricity_column, grid_exclusivity_needed, techs_from_scenario
from ems.operation.forecast import Forecaster, SiteProfile
from ems.operation.site import SiteConfig
from ems.techs.absorption_chiller import AbsorptionChiller
from ems.techs.ai_cluster import AiCluster
from ems.techs.base import Device, Technology
from ems.techs.battery import Battery
from ems.techs.boiler import Boiler
from ems.techs.chp import Chp
from ems.techs.demand import Demand
from ems.techs.district_heating import DhStation
from ems.techs.elec_link import LinkStation
from ems.techs.ev_charge_points import EvChargePoints, charge_points  # noqa: F401 (re-export)
from ems.techs.grid import Grid
from ems.techs.heat_pump import HeatPump
from ems.techs.pv import Photovoltaic
from ems.techs.solar_thermal import SolarThermal
from ems.techs.thermal_storage import ThermalStorage

T = TypeVar("T", bound=Technology)


@dataclass
class OperationSetup:
    """Technology instances of the operation model (sizes fixed from ``sizes.yaml``).

    Everything per kind lives in the technologies (:mod:`ems.techs.base`); this class only
    answers generic questions about them. The per-kind views at the end (``batteries``,
    ``heat_pumps``…) serve the simulated plant and the tests."""

    scenario: Scenario
    catalogue: Catalogue
    sizes: dict[str, dict[str, Any]]
    techs: list[Technology]
    limits: dict[tuple[str, str], float]
    exclusive_grid: bool

    @property
    def hubs(self) -> list[str]:
        return [h.id for h in self.scenario.hubs]

    def operated(self) -> list[Technology]:
        """Technologies that take data and state every step: every one without devices of its
        own, and the installed ones among those with devices (an empty design slot stays in the
        model with size 0 and keeps its build values)."""
        return [t for t in self.techs if t.operated()]

    def installed(self, hub: str | None = None) -> list[Technology]:
        """Technologies with devices in operation (at ``hub``)."""
        return [
            t
            for t in self.techs
            if t.device_kind is not None and t.installed() and (hub is None or t.hub == hub)
        ]

    def load_column(self, hub: str) -> str:
        """The data column of a hub's electric load (the service's load forecast goes there)."""
        return electricity_column(hub, self.scenario)

    def data_columns(self) -> list[str]:
        """Every data column an operated technology reads (each gets a forecast per step)."""
        return list(dict.fromkeys(c for t in self.operated() for c in t.data_columns()))

    def build_columns(self) -> list[str]:
        """Every data column of the model (what it is built with)."""
        return list(dict.fromkeys(c for t in self.techs for c in t.data_columns()))

    def build_values(self) -> dict[str, float]:
        """Column values the model is built with (before the first step's forecasts)."""
        out: dict[str, float] = {}
        for t in self.techs:
            for c in t.data_columns():
                out[c] = max(out.get(c, 0.0), t.build_value(c))
        return out

    def devices(self) -> list[Device]:
        """Every device the technologies expect telemetry from (a weather station per hub when
        an installed technology reads the weather)."""
        out = [d for t in self.installed() for d in t.devices()]
        if any(t.reads_weather and t.installed() for t in self.techs):
            out += [(hub, "weather", "main", None) for hub in self.hubs]
        return out

    def has_thermal(self) -> bool:
        """Installed devices on a carrier other than electricity, or electric links (the
        simulated plant's thermal side)."""
        return any(
            t.installed()
            and (t.exchange_carrier is not None or any(c != "electricity" for c, _l, _f in t.flows))
            for t in self.techs
        )

    # ---- per-kind views (the simulated plant and the tests)
    def of(self, cls: type[T]) -> list[T]:
        return [t for t in self.techs if isinstance(t, cls)]

    def of_installed(self, cls: type[T]) -> dict[str, list[T]]:
        out: dict[str, list[T]] = {}
        for t in self.of(cls):
            if t.installed():
                out.setdefault(t.hub, []).append(t)
        return out

    @property
    def demands(self) -> dict[str, Demand]:
        return {d.hub: d for d in self.of(Demand) if d.column == self.load_column(d.hub)}

    @property
    def thermal_demands(self) -> dict[tuple[str, str], Demand]:
        return {(d.hub, d.carrier): d for d in self.of(Demand) if d.installed()}

    @property
    def grids(self) -> dict[str, Grid]:
        return {g.hub: g for g in self.of(Grid)}

    @property
    def pvs(self) -> dict[str, list[Photovoltaic]]:
        return self.of_installed(Photovoltaic)

    @property
    def batteries(self) -> dict[str, Battery]:
        return {h: b[0] for h, b in self.of_installed(Battery).items()}

    @property
    def ev_points(self) -> dict[str, EvChargePoints]:
        return {h: e[0] for h, e in self.of_installed(EvChargePoints).items()}

    @property
    def ai_clusters(self) -> dict[str, AiCluster]:
        return {a.device_id: a for a in self.of(AiCluster)}

    @property
    def chps(self) -> dict[str, list[Chp]]:
        return self.of_installed(Chp)

    @property
    def heat_pumps(self) -> dict[str, list[HeatPump]]:
        return self.of_installed(HeatPump)

    @property
    def boilers(self) -> dict[str, list[Boiler]]:
        return self.of_installed(Boiler)

    @property
    def chillers(self) -> dict[str, list[AbsorptionChiller]]:
        return self.of_installed(AbsorptionChiller)

    @property
    def stores(self) -> dict[str, dict[str, ThermalStorage]]:
        return {
            h: {s.device_id: s for s in v} for h, v in self.of_installed(ThermalStorage).items()
        }

    @property
    def solar_thermal(self) -> dict[str, SolarThermal]:
        return {h: v[0] for h, v in self.of_installed(SolarThermal).items()}

    @property
    def dh_stations(self) -> dict[str, DhStation]:
        return {h: v[0] for h, v in self.of_installed(DhStation).items()}

    @property
    def links(self) -> dict[str, LinkStation]:
        return {h: v[0] for h, v in self.of_installed(LinkStation).items()}

    def hp_units(self, hub: str) -> list[tuple[HeatPump, str]]:
        """Heat-pump devices of a hub: one per installed unit, id ``<model>_<i>``."""
        return [(hp, dev) for hp in self.heat_pumps.get(hub, []) for dev in hp.unit_ids()]

    def temperature_columns(self) -> list[str]:
        return sorted({hp.spec.temperature_column for v in self.heat_pumps.values() for hp in v})

    def thermal_demand_columns(self) -> list[str]:
        return list(dict.fromkeys(d.column for d in self.thermal_demands.values()))

    def solar_thermal_columns(self) -> list[str]:
        return sorted({st.spec.output_column for st in self.solar_thermal.values()})

    def yield_columns(self) -> list[str]:
        return sorted({pv.spec.yield_column for v in self.pvs.values() for pv in v})


def operation_setup(
    site: SiteConfig,
    scenario: Scenario,
    catalogue: Catalogue,
    sale_can_exceed_purchase: bool | None = None,
    *,
    sizes: dict[str, dict[str, Any]],
) -> OperationSetup:
    """Technologies of the operation model for a site, with ``sizes`` (per hub, the parsed
    sizes.yaml with the site's overrides: :func:`ems.operation.site.installed_sizes`) fixed."""
    hubs = {h.id: h for h in scenario.hubs}
    for hub in sizes:
        if hub not in hubs:
            raise ConfigError(
                str(site.resolve(site.sizes)),
                f"hubs.{hub}",
                f"not a hub of scenario {scenario.name}",
            )
    if sale_can_exceed_purchase is None:
        sale_can_exceed_purchase = False
    exclusive = grid_exclusivity_needed(scenario, sale_can_exceed_purchase)
    # hubs absent from sizes.yaml keep their existing equipment
    fixed = {h: sizes.get(h, {}) for h in hubs}
    # sizes are parameters at their installed value, and every bound derives from them
    techs, limits = techs_from_scenario(
        scenario, catalogue, exclusive_grid=exclusive, fixed_sizes=fixed
    )
    setup = OperationSetup(scenario, catalogue, sizes, [], limits, exclusive)
    for tech in techs:
        # each technology's operation form (the design's EV fleet becomes live charge points)
        op = tech.for_operation(site, fixed.get(tech.hub, {}), catalogue, hubs.get(tech.hub))
        if op is not None:
            setup.techs.append(op)
    from ems.techs.registry import REGISTRY

    for reg in REGISTRY:  # technologies that SITE.yaml configures (AI clusters)
        setup.techs += reg.tech.from_site_config(site, scenario)
    return setup


def site_forecaster(scenario: Scenario, hourly: pd.DataFrame) -> Forecaster:
    """Forecaster of a site from its scenario (location, tariff) and its hourly profile year
    (the scenario's ``time.hourly_csv``, read by :func:`adapters.config_io.read_hourly_profile`)."""
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
