"""Synthetic hourly weather for a site, without network access.

Irradiance: pvlib clear-sky model (Ineichen–Perez, Linke turbidity from pvlib's bundled monthly
climatology, which works offline) multiplied by a daily "clearness" factor drawn from a seeded
random generator, then rescaled month by month so that the monthly global horizontal irradiation
(GHI) equals a documented climatological value.  Diffuse/direct split with the Erbs model.

Temperature: monthly mean daily temperature (smoothly interpolated between mid-month points and
then corrected so each month's mean equals the given value exactly) + a daily sinusoid (minimum
near sunrise, maximum mid-afternoon, amplitude larger on clear days) + a day-to-day AR(1)
anomaly from the same seeded generator.

The result is deterministic for a given ``seed``.  It is a *design* weather year, not a forecast:
it reproduces monthly energy and temperature levels and plausible day-to-day variability, not
any real day.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pvlib

from ems.errors import DataError
from ems.profiles.calendar import CET_FIXED_TZ


@dataclass(frozen=True)
class SiteClimate:
    """Location and monthly climatology of a site.

    Attributes:
        name: label for reports.
        latitude, longitude: degrees (north, east positive).
        altitude: metres above sea level.
        monthly_ghi_kwh_m2: 12 monthly sums of global horizontal irradiation, kWh/m².
        monthly_t_mean_c: 12 monthly means of the daily mean air temperature, °C.
        monthly_t_range_c: 12 mean daily temperature excursions (max − min), °C.
        source: citation of the numbers (goes into the assumptions document).
    """

    name: str
    latitude: float
    longitude: float
    altitude: float
    monthly_ghi_kwh_m2: tuple[float, ...]
    monthly_t_mean_c: tuple[float, ...]
    monthly_t_range_c: tuple[float, ...] = field(default=(6.0,) * 12)
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("monthly_ghi_kwh_m2", "monthly_t_mean_c", "monthly_t_range_c"):
            vals = getattr(self, name)
            if len(vals) != 12:
                raise DataError(f"{name}: expected 12 monthly values, got {len(vals)}")
        if any(v < 0 for v in self.monthly_ghi_kwh_m2):
            raise DataError("monthly_ghi_kwh_m2: values must be >= 0")
        if not -90 <= self.latitude <= 90:
            raise DataError(f"latitude: {self.latitude} out of range [-90, 90]")


#: Genoa (Opera Pia campus, SPEC §7: 44.40 N, 8.96 E, 50 m).
#: Annual GHI 1447 kWh/m² and mean temperature 15.8 °C: Int. J. Photoenergy 2017, art. 7540250,
#: Table 2 "Climate characteristics for selected locations" (Genova: 15.8 °C, 1447 kWh/m²·a).
#: The monthly split of GHI follows the usual PVGIS-SARAH shape for the Ligurian coast
#: (approximate values, rescaled to the annual 1447); monthly temperatures are approximate
#: climate normals for Genova (UNI 10349 order of magnitude, annual mean 15.6 °C).  See
#: design/cases/opera_pia/ASSUMPTIONS.md: these monthly values should be checked against
#: PVGIS and UNI 10349:2016 when network access is available.
GENOA = SiteClimate(
    name="Genova (Opera Pia)",
    latitude=44.40,
    longitude=8.96,
    altitude=50.0,
    monthly_ghi_kwh_m2=tuple(
        round(v * 1447.0 / 1495.0, 2)
        for v in (57, 75, 118, 150, 183, 196, 208, 179, 131, 92, 58, 48)
    ),
    monthly_t_mean_c=(8.0, 8.9, 11.1, 13.6, 17.2, 20.9, 23.9, 24.1, 21.0, 17.0, 12.4, 9.3),
    monthly_t_range_c=(5.5, 6.0, 6.0, 6.0, 6.0, 6.5, 7.0, 7.0, 6.5, 6.0, 5.5, 5.5),
    source=(
        "annual GHI 1447 kWh/m2 and T 15.8 C: Int. J. Photoenergy 2017 (7540250) Table 2; "
        "monthly split ~PVGIS-SARAH shape; monthly T ~ Genova normals (UNI 10349 order)"
    ),
)


def _check_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise DataError("index: expected a non-empty pandas DatetimeIndex")
    if index.tz is not None:
        raise DataError("index: expected naive local standard time (no time zone)")
    return index


def _daily_clearness(
    days: pd.DatetimeIndex, monthly_ratio: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Daily clear-sky index k_d in (0.05, 1]: Beta-distributed around the monthly ratio.

    Days are drawn independently but with persistence (AR(1) on a latent normal) so that sunny
    and cloudy spells of a few days appear, as in real weather.
    """
    n = len(days)
    z = np.empty(n)
    z[0] = rng.standard_normal()
    for i in range(1, n):
        z[i] = 0.55 * z[i - 1] + np.sqrt(1 - 0.55**2) * rng.standard_normal()
    u = 0.5 * (1.0 + np.vectorize(_erf)(z / np.sqrt(2.0)))  # uniform marginals, persistent
    out = np.empty(n)
    for i, d in enumerate(days):
        m = float(np.clip(monthly_ratio[d.month - 1], 0.1, 0.95))
        conc = 3.0  # Beta concentration: low → bimodal-ish clear / overcast mix
        a, b = m * conc, (1 - m) * conc
        out[i] = _beta_ppf(u[i], a, b)
    return np.clip(out, 0.05, 1.0)


def _erf(x: float) -> float:
    import math

    return math.erf(x)


def _beta_ppf(q: float, a: float, b: float) -> float:
    """Inverse CDF of Beta(a, b) by bisection on the regularized incomplete beta (no scipy)."""
    import math

    # numerical CDF on a fine grid (cached per (a, b))
    key = (round(a, 6), round(b, 6))
    grid = _BETA_CACHE.get(key)
    if grid is None:
        x = np.linspace(1e-6, 1 - 1e-6, 4001)
        logpdf = (
            (a - 1) * np.log(x)
            + (b - 1) * np.log1p(-x)
            - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
        )
        pdf = np.exp(logpdf)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(x))])
        cdf /= cdf[-1]
        grid = (x, cdf)
        _BETA_CACHE[key] = grid
    x, cdf = grid
    return float(np.interp(q, cdf, x))


_BETA_CACHE: dict = {}


def synthetic_weather(
    index: pd.DatetimeIndex,
    site: SiteClimate = GENOA,
    seed: int = 42,
) -> pd.DataFrame:
    """Hourly synthetic weather for ``site`` on ``index`` (naive local standard time, UTC+1).

    Returns a DataFrame with columns ``ghi``, ``dni``, ``dhi`` (W/m², hourly means),
    ``ghi_clear`` (clear-sky GHI), ``t_amb_c`` (°C), ``solar_zenith`` and ``solar_azimuth``
    (degrees, at mid-hour), ``dni_extra`` (W/m²).  Monthly GHI sums equal
    ``site.monthly_ghi_kwh_m2`` for every complete month in the index.
    """
    index = _check_index(index)
    if not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed: expected an integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))

    # Solar position at mid-hour (hourly means are better represented at the half hour).
    mid = (index + pd.Timedelta(minutes=30)).tz_localize(CET_FIXED_TZ)
    loc = pvlib.location.Location(site.latitude, site.longitude, altitude=site.altitude)
    solpos = loc.get_solarposition(mid)
    try:
        linke = pvlib.clearsky.lookup_linke_turbidity(mid, site.latitude, site.longitude)
    except Exception:  # pragma: no cover - pvlib data file missing
        linke = pd.Series(3.5, index=mid)
    cs = loc.get_clearsky(mid, model="ineichen", solar_position=solpos, linke_turbidity=linke)
    ghi_cs = cs["ghi"].to_numpy(dtype=float, copy=True)
    ghi_cs[solpos["apparent_elevation"].to_numpy() <= 0] = 0.0

    months = index.month.to_numpy()
    target_month = np.asarray(site.monthly_ghi_kwh_m2, dtype=float) * 1000.0  # Wh/m²
    cs_month = np.array([ghi_cs[months == m].sum() for m in range(1, 13)])
    # Ratio of target to clear-sky per month: valid only for full months; partial months use it too.
    days_in_month = np.array([pd.Period(f"2001-{m:02d}").days_in_month for m in range(1, 13)])
    hours_present = np.array([(months == m).sum() for m in range(1, 13)])
    full = hours_present >= days_in_month * 24
    ratio = np.where(cs_month > 0, target_month / np.maximum(cs_month, 1e-9), 0.6)
    ratio = np.where(full, ratio, np.clip(ratio, 0.3, 0.9))

    days = pd.DatetimeIndex(np.unique(index.normalize()))
    kd = _daily_clearness(days, ratio, rng)
    kd_hour = pd.Series(kd, index=days).reindex(index.normalize()).to_numpy()
    ghi = ghi_cs * kd_hour
    # Exact monthly rescale with a cap at 1.0 × clear sky; redistribute the clipped excess.
    for m in range(1, 13):
        sel = months == m
        if not sel.any() or not full[m - 1] or ghi[sel].sum() <= 0:
            continue
        g, c = ghi[sel], ghi_cs[sel]
        for _ in range(20):
            g = g * (target_month[m - 1] / g.sum())
            over = g > c
            if not over.any():
                break
            g = np.minimum(g, c)
            free = g < c
            deficit = target_month[m - 1] - g.sum()
            if deficit <= 1e-9 or not free.any():
                break
            g[free] *= 1 + deficit / g[free].sum()
        ghi[sel] = g

    dni_extra = pvlib.irradiance.get_extra_radiation(mid).to_numpy()
    zen = solpos["zenith"].to_numpy()
    erbs = pvlib.irradiance.erbs(ghi, zen, mid.dayofyear.to_numpy(), min_cos_zenith=0.065)
    dni = np.nan_to_num(np.asarray(erbs["dni"], dtype=float))
    dhi = np.nan_to_num(np.asarray(erbs["dhi"], dtype=float))

    t_amb = _temperature(index, site, kd_hour, rng)

    return pd.DataFrame(
        {
            "ghi": ghi,
            "dni": dni,
            "dhi": dhi,
            "ghi_clear": ghi_cs,
            "t_amb_c": t_amb,
            "solar_zenith": zen,
            "solar_azimuth": solpos["azimuth"].to_numpy(),
            "dni_extra": dni_extra,
        },
        index=index,
    )


def _temperature(
    index: pd.DatetimeIndex, site: SiteClimate, kd_hour: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    t_month = np.asarray(site.monthly_t_mean_c, dtype=float)
    rng_month = np.asarray(site.monthly_t_range_c, dtype=float)
    doy = index.dayofyear.to_numpy() + index.hour.to_numpy() / 24.0
    # Mid-month anchors, periodic interpolation.
    mid_doy = np.array(
        [15.5, 45.0, 74.5, 105.0, 135.5, 166.0, 196.5, 227.5, 258.0, 288.5, 319.0, 349.5]
    )
    xp = np.concatenate([mid_doy - 365, mid_doy, mid_doy + 365])
    base = np.interp(doy, xp, np.tile(t_month, 3))
    base_range = np.interp(doy, xp, np.tile(rng_month, 3))
    # Daily sinusoid: min at 06:00, max at 15:00 (asymmetric cosine approximated by a shifted cos).
    hour = index.hour.to_numpy() + 0.5
    diurnal = -np.cos(2 * np.pi * (hour - 3.0) / 24.0) * 0.5  # min ~03-06, max ~15
    amp = base_range * (0.6 + 0.6 * kd_hour)  # clear days swing more
    # Day-to-day anomaly, AR(1), sigma 1.5 °C.
    days = pd.DatetimeIndex(np.unique(index.normalize()))
    a = np.empty(len(days))
    a[0] = 0.0
    for i in range(1, len(days)):
        a[i] = 0.7 * a[i - 1] + np.sqrt(1 - 0.49) * 1.5 * rng.standard_normal()
    anom = pd.Series(a, index=days).reindex(index.normalize()).to_numpy()
    t = base + amp * diurnal + anom
    # Exact monthly means.
    months = index.month.to_numpy()
    for m in range(1, 13):
        sel = months == m
        if sel.any():
            t[sel] += t_month[m - 1] - t[sel].mean()
    return t
