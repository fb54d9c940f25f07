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
from ems.techs.base import Device, Technology

T = TypeVar("T", bound=Technology)


@dataclass
class OperationSetup:
    """Technology instances of the operation model (sizes fixed from ``sizes.yaml``).

    Everything per kind lives in the technologies (:mod:`ems.techs.base`); this class only
    answers generic questions about them (:meth:`techs_of` finds them by class)."""

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
        own, and the installed ones among those with devices (the design's empty slots are not
        in the operation model at all: ``techs_from_scenario(drop_empty_slots=True)``)."""
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

    def owner(self, key: tuple[str, str, str]) -> Technology | None:
        """The installed technology a device (hub, kind, id) belongs to (None: not of this site)."""
        return next((t for t in self.installed() if any(d[:3] == key for d in t.devices())), None)

    def has_thermal(self) -> bool:
        """Installed devices on a carrier other than electricity, or electric links (the
        simulated plant's thermal side)."""
        return any(
            t.installed()
            and (t.exchange_carrier is not None or any(c != "electricity" for c, _l, _f in t.flows))
            for t in self.techs
        )

    # ---- generic access by class (tests, benchmarks; no per-kind slots)
    def techs_of(self, cls: type[T], hub: str | None = None, *, installed: bool = False) -> list[T]:
        """Its technologies of class ``cls`` (at ``hub``; only installed ones if asked)."""
        return [
            t
            for t in self.techs
            if isinstance(t, cls)
            and (hub is None or t.hub == hub)
            and (not installed or t.installed())
        ]

    def first(self, cls: type[T], hub: str | None = None) -> T:
        """The first technology of class ``cls`` (at ``hub``); KeyError naming it if none."""
        found = self.techs_of(cls, hub)
        if not found:
            raise KeyError(f"no {cls.__name__} at {hub or 'the site'}")
        return found[0]


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
        scenario, catalogue, exclusive_grid=exclusive, fixed_sizes=fixed, drop_empty_slots=True
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
