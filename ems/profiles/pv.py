"""Specific PV yield (kW per kWp) and solar-thermal output (kW per m²) from hourly weather.

PV chain (pvlib): plane-of-array transposition (Hay–Davies, isotropic-ground albedo 0.2) →
incidence-angle modifier on the beam (ASHRAE, b0 = 0.05) → cell temperature (SAPM model, mounting
per module type) → PVWatts DC power with a module-type temperature coefficient → flat system
losses (soiling, mismatch, wiring, inverter, availability; PVGIS default 14 %).

Module types (datasheet-typical values, see ASSUMPTIONS.md):

* ``mono`` — monocrystalline silicon, γ = −0.37 %/K, open rack on flat roofs (tilt 30°, south);
* ``thin_film`` — thin film (CdTe/CIGS class), γ = −0.25 %/K, close-mount on pitched roofs and
  canopies (tilt 15°, south).

Solar thermal: flat-plate collector, efficiency on aperture area
η = η0 − a1·(Tm − Ta)/G − a2·(Tm − Ta)²/G, output = max(0, η·G_poa).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pvlib

from ems.errors import DataError

_REQUIRED = ("ghi", "dni", "dhi", "t_amb_c", "solar_zenith", "solar_azimuth", "dni_extra")


@dataclass(frozen=True)
class PVModuleType:
    """Thermal/electrical parameters of a PV technology.

    Attributes:
        gamma_pdc: power temperature coefficient, 1/K (negative).
        sapm_mount: key of ``pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS['sapm']``.
        tilt, azimuth: default orientation in degrees (azimuth 180 = south).
        kwp_per_m2: installed kWp per m² of roof (module efficiency × packing), for area limits.
    """

    gamma_pdc: float
    sapm_mount: str
    tilt: float
    azimuth: float
    kwp_per_m2: float


PV_TYPES: dict[str, PVModuleType] = {
    "mono": PVModuleType(-0.0037, "open_rack_glass_polymer", 30.0, 180.0, 0.20),
    "thin_film": PVModuleType(-0.0025, "close_mount_glass_glass", 15.0, 180.0, 0.12),
}

#: PVGIS default "system loss" (cables, inverter, soiling, mismatch): 14 %.
DEFAULT_SYSTEM_LOSSES = 0.14


def _check_weather(weather: pd.DataFrame) -> None:
    if not isinstance(weather, pd.DataFrame):
        raise DataError("weather: expected a DataFrame from ems.profiles.weather.synthetic_weather")
    missing = [c for c in _REQUIRED if c not in weather.columns]
    if missing:
        raise DataError(f"weather: missing columns {missing}")


def poa_irradiance(
    weather: pd.DataFrame, tilt: float, azimuth: float, albedo: float = 0.2
) -> pd.DataFrame:
    """Plane-of-array irradiance components (W/m²) with Hay–Davies sky diffuse."""
    _check_weather(weather)
    if not 0 <= tilt <= 90:
        raise DataError(f"tilt: {tilt} out of range [0, 90] degrees")
    if not 0 <= azimuth <= 360:
        raise DataError(f"azimuth: {azimuth} out of range [0, 360] degrees")
    poa = pvlib.irradiance.get_total_irradiance(
        surface_tilt=tilt,
        surface_azimuth=azimuth,
        solar_zenith=weather["solar_zenith"],
        solar_azimuth=weather["solar_azimuth"],
        dni=weather["dni"],
        ghi=weather["ghi"],
        dhi=weather["dhi"],
        dni_extra=weather["dni_extra"],
        model="haydavies",
        albedo=albedo,
    )
    aoi = pvlib.irradiance.aoi(tilt, azimuth, weather["solar_zenith"], weather["solar_azimuth"])
    iam = pvlib.iam.ashrae(aoi, b=0.05)
    poa = poa.fillna(0.0)
    poa["poa_effective"] = poa["poa_direct"] * iam.fillna(0.0) + poa["poa_diffuse"]
    poa["aoi"] = aoi
    return poa


def pv_specific_yield(
    weather: pd.DataFrame,
    module: str = "mono",
    tilt: float | None = None,
    azimuth: float | None = None,
    system_losses: float = DEFAULT_SYSTEM_LOSSES,
) -> pd.Series:
    """AC output per kWp installed (kW/kWp) for each hour of ``weather``.

    Args:
        weather: output of :func:`ems.profiles.weather.synthetic_weather` (or the same columns
            from measurements).
        module: ``"mono"`` or ``"thin_film"`` (see :data:`PV_TYPES`).
        tilt, azimuth: orientation in degrees; default from the module type.
        system_losses: fraction lost between DC at STC-rating and AC meter (0..0.5).
    """
    if module not in PV_TYPES:
        raise DataError(f"module: unknown PV type {module!r}; expected one of {sorted(PV_TYPES)}")
    if not 0 <= system_losses < 0.5:
        raise DataError(f"system_losses: {system_losses} out of range [0, 0.5)")
    p = PV_TYPES[module]
    tilt = p.tilt if tilt is None else float(tilt)
    azimuth = p.azimuth if azimuth is None else float(azimuth)
    poa = poa_irradiance(weather, tilt, azimuth)
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][p.sapm_mount]
    wind = pd.Series(
        1.5, index=weather.index
    )  # coastal mean wind ~ 1.5 m/s at roof level (assumed)
    t_cell = pvlib.temperature.sapm_cell(poa["poa_global"], weather["t_amb_c"], wind, **params)
    pdc = pvlib.pvsystem.pvwatts_dc(poa["poa_effective"], t_cell, pdc0=1.0, gamma_pdc=p.gamma_pdc)
    out = (pdc * (1.0 - system_losses)).clip(lower=0.0).fillna(0.0)
    out[weather["ghi"] <= 0] = 0.0
    out.name = f"pv_{module}_kw_per_kwp"
    return out


def solar_thermal_output(
    weather: pd.DataFrame,
    tilt: float = 30.0,
    azimuth: float = 180.0,
    eta0: float = 0.78,
    a1: float = 3.5,
    a2: float = 0.015,
    t_mean_c: float = 50.0,
) -> pd.Series:
    """Useful heat of a flat-plate collector per m² of aperture (kW/m²), hourly.

    η = η0 − a1·ΔT/G − a2·ΔT²/G with ΔT = t_mean_c − T_amb (EN 12975 / ISO 9806 form).
    Defaults are typical glazed flat-plate values (η0 0.78, a1 3.5 W/m²K, a2 0.015 W/m²K²) and a
    mean fluid temperature of 50 °C (DHW preheating).
    """
    if not 0 < eta0 <= 1:
        raise DataError(f"eta0: {eta0} out of range (0, 1]")
    if a1 < 0 or a2 < 0:
        raise DataError("a1/a2: heat-loss coefficients must be >= 0")
    poa = poa_irradiance(weather, tilt, azimuth)
    g = poa["poa_global"].clip(lower=0.0)
    dt = t_mean_c - weather["t_amb_c"]
    q = eta0 * g - a1 * dt - a2 * dt**2  # W/m²
    q = q.where(g > 0, 0.0).clip(lower=0.0) / 1000.0
    q.name = "solar_thermal_kw_per_m2"
    return q
