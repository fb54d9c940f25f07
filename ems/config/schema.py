"""Scenario and technology-catalogue schema.

A scenario (YAML) describes one design study: community kind, time structure, site, hubs with
their demand and the technologies each may install (with limits), prices, emission factors,
finance and objective. Technology data (costs, lifetimes, efficiencies) come from a catalogue
YAML that the scenario references and may override entry by entry.

Every validation error becomes :class:`ems.errors.ConfigError` naming file, field and problem.
No file is read here: :mod:`adapters.config_io` reads the YAML (and follows ``extends``) and
hands the parsed mappings to :func:`parse_scenario` and :func:`parse_catalogue`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ems.errors import ConfigError

#: the catalogue shipped with the package (read by :func:`adapters.config_io.load_catalogue`)
DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "data" / "catalogue.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)


# --------------------------------------------------------------------------- catalogue entries
class _CatalogueEntry(_Strict):
    lifetime_y: float = Field(gt=0)
    om_fraction_per_y: float = Field(
        0.0, ge=0, le=1, description="O&M per year as a share of Capex"
    )
    description: str = ""


class PvTypeSpec(_CatalogueEntry):
    """A PV module technology (monocrystalline, thin film...)."""

    kind: Literal["pv"]
    capex_eur_per_kwp: float = Field(gt=0)
    kwp_per_m2: float = Field(gt=0, le=0.3)
    step_kwp: float = Field(
        gt=0, description="installed in integer multiples of this (one panel or string)"
    )
    yield_column: str = Field(description="column of the weather data with kW per kWp")


class BatterySpec(_CatalogueEntry):
    """A stationary battery sold in identical modules."""

    kind: Literal["battery"]
    module_kwh: float = Field(gt=0)
    capex_eur_per_module: float = Field(gt=0)
    c_rate_per_h: float = Field(gt=0, le=10)
    eta_charge: float = Field(gt=0, le=1)
    eta_discharge: float = Field(gt=0, le=1)
    soc_min: float = Field(0.0, ge=0, lt=1)
    soc_max: float = Field(1.0, gt=0, le=1)
    loss_per_h: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _soc_order(self) -> BatterySpec:
        if self.soc_min >= self.soc_max:
            raise ValueError("soc_min must be below soc_max")
        return self


class ChargerSpec(_CatalogueEntry):
    """An EV charger size and type: dumb (full power), V1G (modulated) or V2G (bidirectional)."""

    kind: Literal["ev_charger"]
    mode: Literal["dumb", "v1g", "v2g"]
    p_kw: float = Field(gt=0)
    capex_eur_per_unit: float = Field(ge=0)
    eta: float = Field(0.95, gt=0, le=1)


class ChpSpec(_CatalogueEntry):
    """A CHP unit model (gas engine ``ice`` or micro-turbine ``mgt``), seed §3.2.2.

    Part-load map linear in (P_el, units on): fuel = a·P_el + b·u with the no-load term
    b = no_load_fuel_fraction × rated fuel; heat = eta_th_rated/… chosen so that heat is
    ``heat_per_fuel`` × fuel, which gives the rated heat at full load.
    """

    kind: Literal["chp"]
    technology: Literal["ice", "mgt"] = "ice"
    p_el_kw: float = Field(gt=0)
    eta_el: float = Field(gt=0, lt=1)
    eta_th: float = Field(gt=0, lt=1)
    min_load: float = Field(0.5, ge=0, le=1)
    no_load_fuel_fraction: float = Field(0.1, ge=0, lt=1)
    capex_eur_per_kw_el: float = Field(gt=0)
    om_eur_per_kwh_el: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _efficiency(self) -> ChpSpec:
        if self.eta_el + self.eta_th > 1.0:
            raise ValueError("eta_el + eta_th must not exceed 1")
        return self


class HeatPumpSpec(_CatalogueEntry):
    """Reversible air/water heat pump (seed §3.2.3.1): one mode per unit per step.

    COP(T) = cop_heat × (1 + cop_slope_per_k·(T − 7)); heating capacity falls by
    heat_cap_slope_per_k per K below 7 °C; EER(T) = eer × (1 − eer_slope_per_k·(T − 35)).
    DHW mode: COP × dhw_cop_factor (higher supply temperature).
    """

    kind: Literal["heat_pump"]
    p_el_kw: float = Field(gt=0, description="rated electric input per unit")
    heat_kw: float = Field(0.0, ge=0, description="rated heating output per unit at A7/W45")
    cop_heat: float = Field(3.0, gt=0)
    cool_kw: float = Field(0.0, ge=0, description="rated cooling output per unit at A35/W7")
    eer: float = Field(2.8, gt=0)
    modes: list[Literal["heating", "dhw", "cooling"]] = ["heating", "cooling"]
    cop_slope_per_k: float = 0.025
    heat_cap_slope_per_k: float = 0.015
    eer_slope_per_k: float = 0.02
    dhw_cop_factor: float = Field(0.85, gt=0, le=1.5)
    temperature_column: str = "t_amb_c"
    capex_eur_per_unit: float = Field(ge=0)

    @model_validator(mode="after")
    def _modes(self) -> HeatPumpSpec:
        if not self.modes:
            raise ValueError("modes must not be empty")
        if ("heating" in self.modes or "dhw" in self.modes) and self.heat_kw <= 0:
            raise ValueError("heating/dhw modes need heat_kw > 0")
        if "cooling" in self.modes and self.cool_kw <= 0:
            raise ValueError("cooling mode needs cool_kw > 0")
        return self


class AbsorptionChillerSpec(_CatalogueEntry):
    """Single-effect absorption chiller fed by hot water (CHP or district heat), seed §3.2.3.2."""

    kind: Literal["absorption_chiller"]
    cool_kw: float = Field(gt=0)
    cop_th: float = Field(0.7, gt=0, le=2)
    aux_el_fraction: float = Field(
        0.03, ge=0, le=1, description="electric auxiliaries per kW of cooling"
    )
    capex_eur_per_unit: float = Field(ge=0)


class ThermalStorageSpec(_CatalogueEntry):
    """Hot-water store: 'puffer' on the heating loop or DHW tank 'bollitore' (seed §3.2.4).

    Sizes from a catalogue list (one chosen: binaries) or continuous up to the largest.
    """

    kind: Literal["thermal_storage"]
    carrier: Literal["heat", "dhw"] = "heat"
    sizes_kwh: list[float] = Field(min_length=1)
    capex_eur_per_kwh: float = Field(gt=0)
    loss_per_h: float = Field(0.002, ge=0, lt=1)
    eta_charge: float = Field(0.98, gt=0, le=1)
    eta_discharge: float = Field(0.98, gt=0, le=1)
    c_rate_per_h: float = Field(1.0, gt=0, le=10)
    exclusive_charge: bool = Field(
        False,
        description="binary per step: no charging and discharging at once "
        "(otherwise the store's losses can act as a heat sink)",
    )

    @model_validator(mode="after")
    def _sizes(self) -> ThermalStorageSpec:
        if any(x <= 0 for x in self.sizes_kwh):
            raise ValueError("sizes_kwh must be positive")
        return self


class SolarThermalSpec(_CatalogueEntry):
    """Flat-plate collectors; output per m² of collector from the weather data (kW/m²)."""

    kind: Literal["solar_thermal"]
    capex_eur_per_m2: float = Field(gt=0)
    step_m2: float = Field(2.0, gt=0)
    output_column: str = "solar_thermal_kw_per_m2"
    carrier: Literal["heat", "dhw"] = "dhw"


class BoilerSpec(_CatalogueEntry):
    """Gas boiler (backup, or the AS-IS heat source with its seasonal efficiency)."""

    kind: Literal["boiler"]
    eta: float = Field(gt=0, le=1.1)
    capex_eur_per_kw: float = Field(0.0, ge=0)
    step_kw: float = Field(10.0, gt=0)


class AiClusterSpec(_CatalogueEntry):
    """An AI compute unit (a rack or a small cluster, the article's 10–15 kW) sold whole."""

    kind: Literal["ai_cluster"]
    unit_kw: float = Field(gt=0, description="rated electric power of one unit")
    capex_eur_per_unit: float = Field(ge=0)


class ElectricBoilerSpec(_CatalogueEntry):
    """Power-to-heat: an electric (electrode) boiler or resistive heater, heat = η × electricity."""

    kind: Literal["electric_boiler"]
    eta: float = Field(0.99, gt=0, le=1.0)
    capex_eur_per_kw: float = Field(0.0, ge=0, description="per kW of heat")
    step_kw: float = Field(10.0, gt=0, description="installed in multiples of this (kW of heat)")


CatalogueEntry = Annotated[
    PvTypeSpec
    | AiClusterSpec
    | BatterySpec
    | ChargerSpec
    | ChpSpec
    | HeatPumpSpec
    | AbsorptionChillerSpec
    | ThermalStorageSpec
    | SolarThermalSpec
    | BoilerSpec
    | ElectricBoilerSpec,
    Field(discriminator="kind"),
]


class Catalogue(_Strict):
    entries: dict[str, CatalogueEntry]

    def get(self, key: str, kind: type[BaseModel], where: str) -> Any:
        entry = self.entries.get(key)
        if entry is None:
            raise KeyError(
                f"{where}: unknown catalogue entry {key!r} (known: {', '.join(sorted(self.entries))})"
            )
        if not isinstance(entry, kind):
            raise KeyError(
                f"{where}: catalogue entry {key!r} is a {entry.kind}, not a {kind.__name__}"
            )
        return entry


# --------------------------------------------------------------------------- scenario
class Site(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    altitude_m: float = Field(0.0, ge=-500, le=9000)
    timezone: str = "Europe/Rome"


class PvgisInput(_Strict):
    """A PVGIS hourly (with PV power) or TMY csv → a kW/kWp column of the hourly year."""

    file: str
    column: str = Field(description="the yield column it fills (e.g. pv_mono_kw_per_kwp)")
    module: Literal["mono", "thin_film"] = Field(
        "mono", description="PV model for radiation-only / TMY files"
    )


class GmePriceInput(_Strict):
    """A GME zonal-price csv (hourly or 15-min, long or wide by zone) → a €/MWh column."""

    file: str
    zone: str = "NORD"
    column: str = Field(description="the price column it fills (e.g. zonal_price_eur_per_mwh)")


class TimeSpec(_Strict):
    """Either an hourly year aggregated into typical days, or typical days given directly.

    ``hourly_csv``: 8760 (or 8784) hourly rows, first column ``timestamp``; aggregated with
    ``aggregation`` (``bimonth_weekday_holiday`` = the seed's 12 days, or ``tsam`` with
    ``n_days``). ``typical_days_csv``: columns ``day, hour`` + series, with ``weights`` giving
    the number of days each typical day stands for.
    """

    hourly_csv: str | None = None
    aggregation: Literal["bimonth_weekday_holiday", "tsam"] = "bimonth_weekday_holiday"
    n_days: int = Field(12, ge=1, le=366)
    typical_days_csv: str | None = None
    weights: dict[str, float] | None = None
    dt_h: float = Field(1.0, gt=0, le=24)
    days: list[str] | None = Field(
        None, description="solve only these typical days (tests, quick runs)"
    )
    pvgis: list[PvgisInput] = Field(
        [], description="PVGIS files whose PV yield replaces columns of hourly_csv"
    )
    gme_prices: list[GmePriceInput] = Field(
        [], description="GME zonal-price files that replace columns of hourly_csv"
    )

    @model_validator(mode="after")
    def _one_source(self) -> TimeSpec:
        if (self.hourly_csv is None) == (self.typical_days_csv is None):
            raise ValueError("give exactly one of hourly_csv or typical_days_csv")
        if self.typical_days_csv is not None and not self.weights:
            raise ValueError("typical_days_csv needs weights (days each typical day stands for)")
        if self.weights and any(w <= 0 for w in self.weights.values()):
            raise ValueError("weights must be positive")
        if (self.pvgis or self.gme_prices) and self.hourly_csv is None:
            raise ValueError("pvgis and gme_prices fill columns of an hourly_csv year")
        return self


class DemandSpec(_Strict):
    """A demand series: a data column, or an annual total with a named shape."""

    column: str | None = None
    annual_mwh: float | None = Field(None, ge=0)
    shape: str | None = None
    distribution_eta: float = Field(
        1.0,
        gt=0,
        le=1,
        description="thermal demands: distribution and emission efficiency of the seed's (15), "
        "(16), (19); generation must supply demand / eta",
    )

    @model_validator(mode="after")
    def _column_or_shape(self) -> DemandSpec:
        if self.column is None and (self.annual_mwh is None or self.shape is None):
            raise ValueError("give column, or annual_mwh with shape")
        if self.column is not None and self.shape is not None:
            raise ValueError("give column or shape, not both")
        return self


class PvSpec(_Strict):
    type: str = Field(description="catalogue key of the PV module type")
    max_kwp: float | None = Field(None, ge=0)
    existing_kwp: float = Field(0.0, ge=0)
    integer: bool = Field(True, description="false: any kWp, not whole panel steps")


class BatteryLimit(_Strict):
    type: str = "battery_5kwh"
    max_modules: int = Field(ge=0)
    existing_modules: int = Field(0, ge=0)
    integer: bool = Field(True, description="false: any kWh up to the maximum, not whole modules")


class ChargerLimit(_Strict):
    type: str
    max_units: int = Field(ge=0)
    existing_units: int = Field(0, ge=0)


class VehicleSpec(_Strict):
    """One EV of the hub's fleet: it plugs in at most once a day (seed §5.2.1)."""

    name: str
    battery_kwh: float = Field(gt=0)
    p_max_kw: float = Field(gt=0, description="vehicle's on-board charger limit")
    need_kwh_per_day: float = Field(
        ge=0, description="energy to deliver per plug-in (daily driving)"
    )
    arrival_h: float = Field(ge=0, lt=24)
    departure_h: float = Field(gt=0, le=24)
    soc_arrival: float = Field(0.4, ge=0, le=1)
    taper_soc: float = Field(
        0.8, gt=0, le=1, description="max power falls linearly to 0 above this SoC"
    )
    days: Literal["weekday", "all"] = "weekday"
    v2g_floor_soc: float = Field(0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _times(self) -> VehicleSpec:
        if self.departure_h <= self.arrival_h:
            raise ValueError("departure_h must be after arrival_h (same-day sessions)")
        if self.soc_arrival * self.battery_kwh + self.need_kwh_per_day > self.battery_kwh + 1e-9:
            raise ValueError("need_kwh_per_day does not fit in the battery from soc_arrival")
        return self


class UnitLimit(_Strict):
    """Identical units of one catalogue model (CHP, heat pump, absorption chiller)."""

    type: str
    max_units: int = Field(ge=0)
    existing_units: int = Field(0, ge=0)
    asis_only: bool = Field(
        False, description="exists only in the AS-IS case (replaced in the design)"
    )


class StorageLimit(_Strict):
    """A thermal store: one size from the catalogue list, or continuous up to max_kwh."""

    type: str
    choice: Literal["catalogue", "continuous"] = "catalogue"
    max_kwh: float | None = Field(None, gt=0)
    existing_kwh: float = Field(0.0, ge=0)


class SolarThermalLimit(_Strict):
    type: str
    max_m2: float | None = Field(
        None, ge=0, description="default: the hub's roof area (shared with PV)"
    )


class BoilerLimit(_Strict):
    type: str
    existing_kw: float = Field(0.0, ge=0)
    max_kw: float = Field(0.0, ge=0, description="installable (new) capacity")
    asis_only: bool = Field(
        False, description="exists only in the AS-IS case (decommissioned in the design)"
    )
    carriers: list[Literal["heat", "dhw"]] = ["heat"]


class PlantSpec(_Strict):
    """The hub's PV plant as the GSE sees it (one POD): entry into service, grant, power band."""

    entry_into_service: date | None = Field(
        None,
        description="default: new (enters service with the design); before 16 Dec 2021: "
        "pre-existing, valorisation only",
    )
    capital_grant_pct: float = Field(0.0, ge=0, le=40)
    power_kw: float | None = Field(
        None, gt=0, le=1000, description="for the TIP power band; default: the hub's PV maximum"
    )


class AiClusterLimit(_Strict):
    """An AI cluster the design may size at the hub (the AI-cluster article, seed 000): units of
    the catalogue entry, an inference floor always on, batch energy per day with deadline windows
    (flexible demand), and the value of the compute it delivers."""

    type: str
    max_units: int = Field(ge=0)
    existing_units: int = Field(0, ge=0)
    floor_fraction: float = Field(
        0.2, ge=0, le=1, description="inference load always served, share of rated power"
    )
    batch_hours_per_day: float = Field(
        12.0, ge=0, le=24, description="batch energy per day = rated kW × these hours"
    )
    windows: list[tuple[float, float, float]] = Field(
        default_factory=lambda: [(0.0, 24.0, 1.0)],
        description="deadline windows (start_h, end_h, share of the daily batch energy)",
    )
    compute_value_eur_per_mwh: float = Field(
        ge=0, description="what the compute is worth per MWh the cluster draws"
    )

    @model_validator(mode="after")
    def _windows(self) -> AiClusterLimit:
        for a, b, _share in self.windows:
            if not 0 <= a < b <= 24:
                raise ValueError(f"window ({a}, {b}): need 0 ≤ start < end ≤ 24")
        total = sum(w[2] for w in self.windows)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"window shares must sum to 1, got {total:g}")
        error = _batch_room_error(self.windows, self.batch_hours_per_day, self.floor_fraction)
        if error:
            raise ValueError(error)
        return self


def _batch_room_error(
    windows: list[tuple[float, float, float]], batch_h: float, floor: float
) -> str | None:
    """Each span (x, y) between window bounds must hold the batch work of the windows inside it
    above the floor (overlapping windows share their hours; then every window's work fits)."""
    points = sorted({w[0] for w in windows} | {w[1] for w in windows})
    for x in points:
        for y in (q for q in points if q > x):
            inside = [w for w in windows if x <= w[0] and w[1] <= y]
            share = sum(w[2] for w in inside)
            room = (y - x) * (1.0 - floor)
            if inside and share * batch_h > room + 1e-9:
                what = (
                    f"window ({x:g}, {y:g})"
                    if len(inside) == 1 and inside[0][:2] == (x, y)
                    else f"the windows inside ({x:g}, {y:g})"
                )
                return (
                    f"{what} cannot hold {share:g} × {batch_h:g} h of batch work above the "
                    f"{floor:g} floor ({room:g} h at rated)"
                )
    return None


class ElectricBoilerLimit(_Strict):
    type: str
    existing_kw: float = Field(0.0, ge=0)
    max_kw: float = Field(0.0, ge=0, description="installable (new) capacity, kW of heat")
    carriers: list[Literal["heat", "dhw"]] = ["heat"]


@dataclass(frozen=True)
class Catalogued:
    """Marks a hub field whose items name a catalogue entry (``type``) of this spec's kind; the
    scenario check resolves every such field generically (:func:`_check_catalogue_types`)."""

    spec: type[_CatalogueEntry]


class HubSpec(_Strict):
    id: str = Field(min_length=1)
    contract_kw: float = Field(gt=0)
    electricity: DemandSpec
    roof_area_m2: float | None = Field(
        None, ge=0, description="shared by all PV types (and solar thermal)"
    )
    pv: Annotated[list[PvSpec], Catalogued(PvTypeSpec)] = []
    battery: Annotated[BatteryLimit | None, Catalogued(BatterySpec)] = None
    chargers: Annotated[list[ChargerLimit], Catalogued(ChargerSpec)] = []
    vehicles: list[VehicleSpec] = []
    # multi-energy hub (chapter 6): thermal demands and technologies
    heating: DemandSpec | None = None
    dhw: DemandSpec | None = None
    cooling: DemandSpec | None = None
    chp: Annotated[list[UnitLimit], Catalogued(ChpSpec)] = []
    heat_pumps: Annotated[list[UnitLimit], Catalogued(HeatPumpSpec)] = []
    absorption_chillers: Annotated[list[UnitLimit], Catalogued(AbsorptionChillerSpec)] = []
    puffer: Annotated[StorageLimit | None, Catalogued(ThermalStorageSpec)] = None
    bollitore: Annotated[StorageLimit | None, Catalogued(ThermalStorageSpec)] = None
    solar_thermal: Annotated[SolarThermalLimit | None, Catalogued(SolarThermalSpec)] = None
    boilers: Annotated[list[BoilerLimit], Catalogued(BoilerSpec)] = []
    electric_boilers: Annotated[list[ElectricBoilerLimit], Catalogued(ElectricBoilerSpec)] = []
    district_heating: bool = Field(
        False, description="may connect to the district-heating network (y_DH)"
    )
    # DM 414/2023 incentive (scenario `incentive:`): where the hub's POD sits and its PV plant
    cabina_primaria: str = Field(
        "cabina", min_length=1, description="primary substation of the hub's POD"
    )
    ai_cluster: Annotated[AiClusterLimit | None, Catalogued(AiClusterSpec)] = None
    member_kind: Literal[
        "household",
        "company",
        "public_body",
        "third_sector",
        "religious_body",
        "environmental_body",
    ] = Field(
        "company",
        description="the hub's CER member kind: households and public, third-sector, religious "
        "and environmental bodies are exempt from the grant's F (DM 127/2025)",
    )
    plant: PlantSpec | None = Field(
        None, description="the hub's renewable plant for the TIP (default: new, no grant)"
    )

    @model_validator(mode="after")
    def _thermal(self) -> HubSpec:
        for name in ("heating", "dhw", "cooling"):
            spec = getattr(self, name)
            if spec is not None and spec.column is None:
                raise ValueError(f"{name}: thermal demands need a data column")
        return self

    @model_validator(mode="after")
    def _fleet(self) -> HubSpec:
        if self.vehicles and not self.chargers:
            raise ValueError("vehicles need at least one charger option in chargers")
        names = [v.name for v in self.vehicles]
        if len(set(names)) != len(names):
            raise ValueError("vehicle names must be unique within a hub")
        return self


class BandPrices(_Strict):
    """Purchase price by ARERA time band (€/kWh, all-in). Give F1 and F23, or F1, F2 and F3."""

    F1: float = Field(ge=0)
    F2: float | None = Field(None, ge=0)
    F3: float | None = Field(None, ge=0)
    F23: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _complete(self) -> BandPrices:
        if self.F23 is None and (self.F2 is None or self.F3 is None):
            raise ValueError("give F23, or both F2 and F3")
        return self

    def price(self, band: str) -> float:
        if band == "F1":
            return self.F1
        value = getattr(self, band)
        return self.F23 if value is None else value  # type: ignore[return-value]


class Prices(_Strict):
    purchase_bands: BandPrices | None = None
    purchase_column: str | None = Field(None, description="hourly purchase price column, €/kWh")
    sale_eur_per_kwh: float | None = Field(None, ge=0)
    sale_column: str | None = Field(None, description="zonal price column, €/MWh (ritiro dedicato)")
    sale_factor: float = Field(1.0, ge=0, description="sale price = factor × zonal price")
    incentive_eur_per_mwh: float = Field(
        0.0, ge=0, description="on virtual-community shared energy"
    )
    valorisation_eur_per_mwh: float = Field(
        0.0,
        ge=0,
        description="the part of incentive_eur_per_mwh that is the ARERA valorisation (paid "
        "while the CER exists; the rest is TIP, paid 20 years)",
    )
    gas_eur_per_kwh: float = Field(
        0.0, ge=0, description="natural gas, all-in, per kWh of fuel (LHV)"
    )

    @model_validator(mode="after")
    def _given(self) -> Prices:
        if (self.purchase_bands is None) == (self.purchase_column is None):
            raise ValueError("give exactly one of purchase_bands or purchase_column")
        if (self.sale_eur_per_kwh is None) == (self.sale_column is None):
            raise ValueError("give exactly one of sale_eur_per_kwh or sale_column")
        if self.valorisation_eur_per_mwh > self.incentive_eur_per_mwh:
            raise ValueError("valorisation_eur_per_mwh is part of incentive_eur_per_mwh")
        return self


class IncentiveRules(_Strict):
    """The shared-energy incentive by the ledger's rules (ems/accounting/rules.py), hour by hour:
    TIP per plant from its power band, the hourly zonal price Pz and FC, reduced by F; plus the
    ARERA valorisation; on energy shared per cabina = min(renewable injection, withdrawals)."""

    rules: Literal["dm414"] = "dm414"
    region: str = Field(description="Italian region of the plants (FC: North +10, Centre +4)")
    pz_column: str = Field(description="hourly zonal price column, €/MWh")
    valorisation_eur_per_mwh: float = Field(
        11.22, ge=0, description="TRAS_E + BTAU (ARERA; 2024: 10.57 + 0.65)"
    )

    @model_validator(mode="after")
    def _known_region(self) -> IncentiveRules:
        from ems.accounting.config import _REGION_ALIASES

        key = self.region.strip().lower().replace("’", "'")
        if key not in _REGION_ALIASES:
            raise ValueError(f"unknown Italian region {self.region!r}")
        self.region = _REGION_ALIASES[key]
        return self


class Emissions(_Strict):
    grid_t_per_mwh: float = Field(0.2583, ge=0)
    gas_t_per_mwh: float = Field(0.205, ge=0)


class GrantOption(_Strict):
    """PNRR capital grant for CER plants (DM 414/2023 as amended by DM 127/2025): up to 40 % of
    the eligible cost of new renewable plants in towns up to 50,000 inhabitants; the TIP is then
    reduced by F = 0.5 × grant / 40 %."""

    pct: float = Field(40.0, gt=0, le=40, description="grant, % of the eligible cost")
    town_population: int | None = Field(
        None, ge=0, description="inhabitants of the town (eligible up to 50,000)"
    )


class AllocationPotSpec(_Strict):
    """One pot of the statute's allocation of the incentive (as the accounting's statute)."""

    share_pct: float = Field(100.0, gt=0, le=100)
    method: Literal["by_withdrawn", "by_injected", "fixed", "weights"] = "by_withdrawn"
    quotas: dict[str, float] | None = Field(
        None, description="fixed: hub id → % (sum 100); weights: hub id → weight"
    )


class Finance(_Strict):
    """Discounting and the 20-year cash flows (design/cashflow.py)."""

    interest_rate: float = Field(0.05, ge=0, le=1, description="also the NPV discount rate")
    horizon_y: int = Field(20, ge=1, le=60, description="cash-flow horizon, years")
    energy_escalation_per_y: float = Field(
        0.0, ge=-0.5, le=0.5, description="yearly change of purchase, sale and gas prices"
    )
    om_escalation_per_y: float = Field(0.0, ge=-0.5, le=0.5)
    pv_degradation_per_y: float = Field(0.005, ge=0, lt=0.1)
    tip_years: int = Field(20, ge=0, le=60, description="TIP paid from entry into service")
    salvage: Literal["linear", "none"] = Field(
        "linear", description="residual value of equipment at the end of the horizon"
    )
    gse_fee_fixed_eur_per_plant_y: float | None = Field(
        None,
        ge=0,
        description="GSE fee per plant and year (DM 106/2024; not sourced here: from your GSE "
        "contract, as in ems/data/accounting_parameters.yaml)",
    )
    gse_fee_variable_eur_per_kw_y: float | None = Field(
        None, ge=0, description="GSE fee per kW of plant and year (DM 106/2024)"
    )
    allocation: list[AllocationPotSpec] = Field(
        default_factory=lambda: [AllocationPotSpec()],
        description="the statute: how the incentive is split among the hubs (members)",
    )
    grant: GrantOption | None = Field(
        None, description="compare 'TIP only' with 'PNRR grant + TIP reduced by F'"
    )

    @model_validator(mode="after")
    def _pots(self) -> Finance:
        total = sum(p.share_pct for p in self.allocation)
        if abs(total - 100.0) > 1e-9:
            raise ValueError(f"allocation share_pct must sum to 100, got {total:g}")
        return self


class Objective(_Strict):
    kind: Literal["economic", "environmental", "mixed", "weighted"] = "economic"
    co2_price_eur_per_t: float = Field(0.0, ge=0)
    alpha: float = Field(0.5, ge=0, le=1)


class SolverOptions(_Strict):
    mip_rel_gap: float = Field(0.005, ge=0, le=1)
    time_limit_s: float = Field(600.0, gt=0)
    threads: int = Field(2, ge=1)
    sizing: Literal["monolithic", "relaxed_commitment", "benders"] = Field(
        "monolithic",
        description="relaxed_commitment: per-step integers (units on, modes, exclusivity) "
        "continuous in the sizing pass; its bound is a valid lower bound of the full problem; "
        "benders: the same relaxed sizing pass solved by Benders decomposition over the typical "
        "days (stops on mip_rel_gap or after max_rounds integer master solves; deterministic)",
    )
    verify_gap: float = Field(
        0.001,
        ge=0,
        le=1,
        description="relative gap of each verification day (sizes fixed, full integrality); "
        "0 when mip_rel_gap is 0",
    )
    max_rounds: int = Field(
        60,
        ge=1,
        description="benders: work limit, integer master solves (deterministic; "
        "time_limit_s is only a safety net)",
    )
    strengthen_rounds: int = Field(
        0,
        ge=0,
        description="benders: work limit, rounds of strengthened cuts (each day's MILP with its "
        "units on integer and the CHP unit counts held at the master's answer: the cut holds "
        "for that engine configuration) that raise the sizing bound above the relaxed optimum; "
        "candidate sizes are verified on the way (0 = off)",
    )
    proven_gap: float = Field(
        0.0,
        ge=0,
        le=1,
        description="benders with strengthen_rounds: stop once (best verified plan − bound) / "
        "plan is within this gap",
    )
    sizing_keep_integer: list[str] = Field(
        [],
        description="per-step variables kept integer in the relaxed sizing "
        "pass (e.g. x_give, x_take: the exchange rules (5)–(7))",
    )
    verify_by_day: bool | None = Field(
        None,
        description="re-solve the dispatch with sizes fixed and full "
        "integrality, day by day (default: on with relaxed_commitment)",
    )


class DistrictHeating(_Strict):
    """Network shared by the connected hubs, seed (8)–(12), (17), (21)."""

    eta: float = Field(0.9, gt=0, le=1, description="network efficiency η_DH of (17)")
    connection_capex_eur: float = Field(30000.0, ge=0, description="C_DH per connected hub (21)")
    lifetime_y: float = Field(30.0, gt=0)
    max_kw_per_hub: float | None = Field(
        None, gt=0, description="P_DH,max of (9)–(10); default from data"
    )
    exclusive: bool = Field(
        True,
        description="x_from + x_to ≤ y_DH binaries (11); without them a hub could "
        "dissipate CHP heat by injecting and withdrawing at once",
    )


class PhysicalLinks(_Strict):
    """Private electric network between the hubs of a physical community, seed (3)–(7), (14)."""

    max_kw_per_hub: float | None = Field(
        None, gt=0, description="P_el,max of (3)–(4); default from data"
    )


class Scenario(_Strict):
    extends: str | None = Field(
        None, description="base scenario file merged under this one (already applied)"
    )
    name: str
    community: Literal["independent", "virtual", "physical"]
    catalogue: str | None = Field(
        None, description="path of a catalogue YAML; default: the built-in one"
    )
    catalogue_overrides: dict[str, dict[str, Any]] = {}
    site: Site
    time: TimeSpec
    hubs: list[HubSpec] = Field(min_length=1)
    prices: Prices
    emissions: Emissions = Emissions()
    finance: Finance = Finance()
    objective: Objective = Objective()
    solver: SolverOptions = SolverOptions()
    district_heating: DistrictHeating = DistrictHeating()
    links: PhysicalLinks = PhysicalLinks()
    incentive: IncentiveRules | None = Field(
        None, description="DM 414/2023 incentive by the ledger's rules instead of the flat one"
    )

    # resolved after loading
    base_dir: Path = Field(Path("."), exclude=True)
    source_file: str = Field("<scenario>", exclude=True)

    @model_validator(mode="after")
    def _unique_hubs(self) -> Scenario:
        ids = [h.id for h in self.hubs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"hub ids must be unique, got {ids}")
        if self.incentive is not None and self.prices.incentive_eur_per_mwh > 0:
            raise ValueError(
                "give incentive (DM 414 rules) or prices.incentive_eur_per_mwh (flat), not both"
            )
        if self.incentive is not None and self.community != "virtual":
            raise ValueError("incentive: the DM 414 incentive is for a virtual community")
        return self

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p


# --------------------------------------------------------------------------- loaders
def _field_path(loc: tuple[Any, ...], root: dict[str, Any] | None = None) -> str:
    parts: list[str] = []
    node: Any = root
    for item in loc:
        if isinstance(item, int):
            label = None
            if isinstance(node, list) and 0 <= item < len(node) and isinstance(node[item], dict):
                label = node[item].get("id") or node[item].get("name")
            parts[-1:] = [f"{parts[-1] if parts else ''}[{label or item}]"]
        else:
            parts.append(str(item))
        try:
            node = node[item] if node is not None else None
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(p for p in parts if p)


def primary_error(exc: ValidationError) -> tuple[tuple[Any, ...], str]:
    """The error a user should read first: an unknown key before anything else (a typo such as
    ``scenaro:`` also makes ``scenario`` missing; the typo is the cause), with the closest known
    name when one is missing at the same level."""
    errors = exc.errors()
    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if not extra:
        err = errors[0]
        return tuple(err["loc"]), err["msg"].removeprefix("Value error, ")
    err = extra[0]
    loc = tuple(err["loc"])
    missing = [
        str(e["loc"][-1])
        for e in errors
        if e["type"] == "missing" and tuple(e["loc"][:-1]) == loc[:-1]
    ]
    close = difflib.get_close_matches(str(loc[-1]), missing, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return loc, f"unknown key {str(loc[-1])!r}{hint}"


def validation_to_config_error(file: str, exc: ValidationError, raw: Any = None) -> ConfigError:
    """First pydantic error → one ConfigError naming the field path (list items by id/name)."""
    loc, msg = primary_error(exc)
    field = _field_path(loc, raw if isinstance(raw, dict) else None) or "(top level)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return ConfigError(file, field, msg + suffix)


def parse_catalogue(
    raw: dict[str, Any],
    file: str,
    overrides: dict[str, dict[str, Any]] | None = None,
    overrides_file: str = "<scenario>",
) -> Catalogue:
    """A catalogue from its parsed YAML (``file`` names it in errors), with per-entry overrides
    (from a scenario, ``overrides_file``) applied."""
    entries = dict(raw.get("entries", raw))
    for key, patch in (overrides or {}).items():
        if key in entries:
            if not isinstance(patch, dict):
                raise ConfigError(
                    overrides_file, f"catalogue_overrides.{key}", "expected a mapping"
                )
            entries[key] = {**entries[key], **patch}
        else:
            entries[key] = patch
    try:
        return Catalogue(entries=entries)
    except ValidationError as exc:
        bad = {str(e["loc"][1]) for e in exc.errors() if len(e["loc"]) > 1}
        file = overrides_file if bad & set(overrides or {}) else file
        err = validation_to_config_error(file, exc)
        raise ConfigError(
            file,
            err.field.replace(
                "entries.", "catalogue_overrides." if file == overrides_file else "entries.", 1
            ),
            err.problem,
        ) from None


def merge_extends(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``extends: base.yaml``: mappings merge key by key, lists and scalars of ``top`` win."""
    out = dict(base)
    for key, value in top.items():
        out[key] = (
            merge_extends(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def parse_scenario(raw: dict[str, Any], file: str, base_dir: Path) -> Scenario:
    """Validate a parsed scenario; ``file`` names it in errors, relative paths resolve against
    ``base_dir``. Cross references to the catalogue: :func:`check_references`."""
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise validation_to_config_error(file, exc, raw) from None
    scenario.base_dir = base_dir
    scenario.source_file = file
    return scenario


def check_references(s: Scenario, cat: Catalogue, file: str) -> None:
    """Every technology type a hub names is in the catalogue with the right kind, and what a
    technology needs at its hub is there; the first problem → ConfigError naming the field."""
    for hub in s.hubs:
        where = f"hubs[{hub.id}]"
        try:
            _check_catalogue_types(hub, cat, where)
            _check_hub_electric(hub, where)
            _check_hub_thermal(hub, cat, where)
        except KeyError as exc:
            field, _, problem = str(exc.args[0]).partition(": ")
            raise ConfigError(file, field, problem) from None
    if s.time.days and s.time.typical_days_csv and s.time.weights:
        unknown = set(s.time.days) - set(s.time.weights)
        if unknown:
            raise ConfigError(file, "time.days", f"unknown typical days {sorted(unknown)}")


def _check_catalogue_types(hub: HubSpec, cat: Catalogue, where: str) -> None:
    """Every hub field marked :class:`Catalogued` names catalogue entries of its kind (the
    marker sits on the field, so a new technology's hub field is checked with no code here).
    Raises KeyError("field: problem")."""
    for name, info in HubSpec.model_fields.items():
        marker = next((m for m in info.metadata if isinstance(m, Catalogued)), None)
        value = getattr(hub, name)
        if marker is None or value is None:
            continue
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            at = f"{where}.{name}" + (f"[{i}]" if i is not None else "")
            cat.get(item.type, marker.spec, f"{at}.type")


def _check_hub_electric(hub: HubSpec, where: str) -> None:
    """PV has a size limit. Raises KeyError("field: problem")."""
    for i, pv in enumerate(hub.pv):
        if pv.max_kwp is None and hub.roof_area_m2 is None:
            raise KeyError(f"{where}.pv[{i}].max_kwp: give max_kwp or the hub's roof_area_m2")


def _check_hub_thermal(hub: HubSpec, cat: Catalogue, where: str) -> None:
    """Solar thermal has a size limit, a chiller a heat source, a cooling demand a supplier.
    Raises KeyError("field: problem")."""
    st = hub.solar_thermal
    if st is not None:
        if st.max_m2 is None and hub.roof_area_m2 is None:
            raise KeyError(f"{where}.solar_thermal.max_m2: give max_m2 or the hub's roof_area_m2")
    if hub.absorption_chillers and not (hub.chp or hub.district_heating):
        raise KeyError(
            f"{where}.absorption_chillers: a chiller needs CHP heat or district heating at the hub"
        )
    if hub.cooling is not None and not (
        hub.absorption_chillers
        or any("cooling" in cat.get(h.type, HeatPumpSpec, "").modes for h in hub.heat_pumps)
    ):
        raise KeyError(
            f"{where}.cooling: "
            "no cooling technology (heat pump with cooling mode or absorption chiller)"
        )
