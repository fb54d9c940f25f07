"""Horizon forecasts for the controller (SPEC §4): PV, loads, prices. Pure functions of history.

- PV: pvlib clear-sky specific yield × a correction learned from recent measurements (ratio of
  measured to clear-sky energy over the last daylight hours), relaxing with lead time towards the
  climatological ratio of the site profile.
- Loads: the same weekday and time over recent weeks (history), blended with the typical-day
  profile by how much history there is; the first hour also leans on the latest measurement.
- Prices: purchase from the ARERA bands of the scenario; sale and Pz from the live day-ahead feed
  (``market/price/pz`` over MQTT) where it covers the horizon, the zonal-price profile elsewhere.

Missing or NaN history falls back to the profile, never to zeros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import pvlib

from ems.config.schema import BandPrices
from ems.profiles.calendar import CET_FIXED_TZ, is_holiday_day
from ems.tariffs import arera_bands


@dataclass
class SiteProfile:
    """Typical-day profiles of a site: mean by (month, working day/holiday, hour) of an hourly
    year (``design/cases/<site>/data/hourly.csv``, local standard time)."""

    hourly: pd.DataFrame
    table: pd.DataFrame = field(init=False)
    _dense: np.ndarray = field(init=False, repr=False)  # [month, holiday, hour, column]
    _col_pos: dict[str, int] = field(init=False, repr=False)
    _keys_cache: dict[bytes, tuple[np.ndarray, ...]] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        idx = pd.DatetimeIndex(self.hourly.index)
        keys = pd.DataFrame(
            {"month": idx.month, "hol": is_holiday_day(idx).astype(int), "hour": idx.hour},
            index=idx,
        )
        self.table = (
            self.hourly.select_dtypes("number")
            .groupby([keys["month"], keys["hol"], keys["hour"]])
            .mean()
        )
        # the same table as a dense array (NaN where the year has no such day type and hour), so
        # a lookup is one fancy index instead of a pandas reindex per column and call
        self._col_pos = {c: i for i, c in enumerate(self.table.columns)}
        self._dense = np.full((13, 2, 24, len(self._col_pos)), np.nan)
        month, hol, hour = (self.table.index.get_level_values(i).to_numpy() for i in range(3))
        self._dense[month, hol, hour, :] = self.table.to_numpy(dtype=float)

    def columns(self) -> list[str]:
        return list(self.table.columns)

    def at(self, column: str, times_utc: pd.DatetimeIndex) -> np.ndarray:
        """Profile values of ``column`` at UTC instants (looked up in local standard time,
        linear between hours; a (month, day type, hour) the year lacks gives 0, or the value of
        the hour before for the hour after)."""
        if column not in self._col_pos:
            raise KeyError(column)
        month, hol, hour, month_next, hour_next, frac = self._keys(times_utc)
        col = self._dense[..., self._col_pos[column]]
        a = np.nan_to_num(col[month, hol, hour], nan=0.0)
        b = col[month_next, hol, hour_next]
        b = np.where(np.isnan(b), a, b)
        return a + (b - a) * frac

    def _keys(self, times_utc: pd.DatetimeIndex) -> tuple[np.ndarray, ...]:
        """(month, holiday, hour) of each instant and of the hour after, and the fraction of the
        hour: computed once per set of instants (a step looks up many columns at the same times)."""
        times = pd.DatetimeIndex(times_utc)
        tag = times.asi8.tobytes() + str(times.tz).encode()
        hit = self._keys_cache.get(tag)
        if hit is not None:
            return hit
        local = times.tz_convert(CET_FIXED_TZ).tz_localize(None)
        nxt = local + pd.Timedelta(hours=1)
        keys = (
            local.month.to_numpy(),
            is_holiday_day(local).astype(int),
            local.hour.to_numpy(),
            nxt.month.to_numpy(),
            nxt.hour.to_numpy(),
            (local.minute + local.second / 60.0).to_numpy() / 60.0,
        )
        if len(self._keys_cache) >= 8:
            self._keys_cache.clear()
        self._keys_cache[tag] = keys
        return keys


@lru_cache(maxsize=8)
def _location(lat: float, lon: float, altitude_m: float) -> pvlib.location.Location:
    return pvlib.location.Location(lat, lon, altitude=altitude_m)


def clearsky_yield(
    times_utc: pd.DatetimeIndex,
    lat: float,
    lon: float,
    altitude_m: float = 0.0,
    performance_ratio: float = 0.85,
) -> np.ndarray:
    """Clear-sky specific yield (kW/kWp) at the middle of each step: PR × GHI_clear / 1 kW/m²."""
    times = pd.DatetimeIndex(times_utc)
    utc = times.tz is not None and str(times.tz) == "UTC"  # what the controller passes
    if utc and len(times) > 1 and times[1] > times[0]:
        t0, n, step = times[0], len(times), times[1] - times[0]
        day0 = t0.floor("D")
        per_day, rest = divmod(pd.Timedelta(days=1), step)
        offset, off_rest = divmod(t0 - day0, step)
        if not rest and not off_rest and (times[1:] - times[:-1] == step).all():
            # whole days on the step's grid, computed once and sliced: a receding horizon asks
            # for the same instants shifted by one step (the values are per instant, identical)
            days = -(-(offset + n) // per_day)
            block = _clearsky_days(day0, days, step, lat, lon, altitude_m, performance_ratio)
            return block[offset : offset + n].copy()
    return _clearsky(times, lat, lon, altitude_m, performance_ratio)


@lru_cache(maxsize=16)
def _clearsky_days(
    day0: pd.Timestamp,
    days: int,
    step: pd.Timedelta,
    lat: float,
    lon: float,
    altitude_m: float,
    performance_ratio: float,
) -> np.ndarray:
    n = days * (pd.Timedelta(days=1) // step)
    return _clearsky(
        pd.date_range(day0, periods=n, freq=step), lat, lon, altitude_m, performance_ratio
    )


def _clearsky(
    times: pd.DatetimeIndex, lat: float, lon: float, altitude_m: float, performance_ratio: float
) -> np.ndarray:
    if len(times) > 1:
        mid = times + (times[1] - times[0]) / 2
    else:
        mid = times + pd.Timedelta(minutes=7.5)
    cs = _location(lat, lon, altitude_m).get_clearsky(mid, model="ineichen")
    return np.clip(performance_ratio * cs["ghi"].to_numpy() / 1000.0, 0.0, 1.2)


@dataclass
class Forecaster:
    """Forecasts over a horizon of step starts (UTC, tz-aware)."""

    profile: SiteProfile
    lat: float
    lon: float
    altitude_m: float = 0.0
    purchase_bands: BandPrices | None = None
    purchase_column: str | None = None  # €/kWh column of the profile (instead of bands)
    sale_column: str | None = None  # €/MWh column of the profile
    sale_eur_per_kwh: float | None = None
    sale_factor: float = 1.0
    weeks: int = 4
    history_weight_max: float = 0.7
    pv_correction_tau_h: float = 3.0

    # ---- loads
    def load_kw(
        self,
        column: str,
        times: pd.DatetimeIndex,
        history: pd.Series | None = None,
        latest_kw: float | None = None,
    ) -> np.ndarray:
        """Load forecast: same weekday/time of the last ``weeks`` weeks blended with the profile."""
        prof = self.profile.at(column, times)
        out = prof.copy()
        if history is not None and len(history):
            h = _clean(history)
            stack = []
            for k in range(1, self.weeks + 1):
                stack.append(h.reindex(times - pd.Timedelta(days=7 * k)).to_numpy(dtype=float))
            arr = np.vstack(stack)
            n_valid = np.sum(~np.isnan(arr), axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(
                    n_valid > 0,
                    np.nansum(np.nan_to_num(arr, nan=0.0), axis=0) / np.maximum(n_valid, 1),
                    prof,
                )
            w = self.history_weight_max * n_valid / self.weeks
            out = w * mean + (1 - w) * prof
        if latest_kw is not None and latest_kw == latest_kw and len(times):
            # persistence of the current deviation, fading over about an hour
            lead_h = (times - times[0]).total_seconds().to_numpy() / 3600.0
            out = out + (latest_kw - out[0]) * np.exp(-lead_h / 1.0)
        out = np.where(np.isfinite(out), out, prof)  # never NaN, never zeros for missing data
        return np.clip(out, 0.0, None)

    # ---- weather
    def temperature(
        self,
        column: str,
        times: pd.DatetimeIndex,
        latest_c: float | None = None,
        tau_h: float = 6.0,
    ) -> np.ndarray:
        """Outdoor temperature (°C): the typical-day profile plus the current deviation from it
        (a measured value, e.g. a weather station) fading with a ``tau_h`` time constant. Without a
        profile column: the measurement held, else 15 °C. Never NaN."""
        if column in self.profile.columns():
            prof = self.profile.at(column, times)
        else:
            prof = np.full(
                len(times), latest_c if latest_c is not None and latest_c == latest_c else 15.0
            )
        out = prof.copy()
        if latest_c is not None and latest_c == latest_c and len(times):
            lead_h = (times - times[0]).total_seconds().to_numpy() / 3600.0
            out = out + (float(latest_c) - prof[0]) * np.exp(-lead_h / tau_h)
        return np.where(np.isfinite(out), out, 15.0)

    def solar_thermal(
        self, column: str, times: pd.DatetimeIndex, pv_correction: float | None = None
    ) -> np.ndarray:
        """Solar-thermal specific output (kW/m²): clear sky × the column's climatological ratio
        (as :meth:`pv_yield`), scaled by the PV's current cloud correction relative to its own
        climatology when one is given (no collector telemetry needed)."""
        out = self.pv_yield(column, times)
        if pv_correction is not None and pv_correction == pv_correction:
            lead_h = (times - times[0]).total_seconds().to_numpy() / 3600.0
            a = np.exp(-lead_h / self.pv_correction_tau_h)
            out = out * (a * float(np.clip(pv_correction, 0.0, 1.5)) + (1 - a))
        return np.clip(out, 0.0, 1.2)

    # ---- PV
    def pv_correction(
        self,
        column: str,
        measured_yield: pd.Series | None,
        now: pd.Timestamp,
        lookback_h: float = 3.0,
    ) -> float | None:
        """Measured / clear-sky energy over the last ``lookback_h`` daylight hours (None: no data)."""
        if measured_yield is None or not len(measured_yield):
            return None
        h = _clean(measured_yield)
        h = h[(h.index > now - pd.Timedelta(hours=lookback_h)) & (h.index <= now)]
        if h.empty:
            return None
        cs = clearsky_yield(pd.DatetimeIndex(h.index), self.lat, self.lon, self.altitude_m)
        if cs.sum() < 0.05 * len(cs) * 0.25 or cs.max() < 0.05:  # night or dawn: not informative
            return None
        return float(np.clip(h.to_numpy().sum() / max(cs.sum(), 1e-6), 0.0, 1.3))

    def pv_yield(
        self,
        column: str,
        times: pd.DatetimeIndex,
        measured_yield: pd.Series | None = None,
        now: pd.Timestamp | None = None,
    ) -> np.ndarray:
        """Specific-yield forecast (kW/kWp): clear sky × correction (learned, then climatological)."""
        cs = clearsky_yield(times, self.lat, self.lon, self.altitude_m)
        prof = self.profile.at(column, times) if column in self.profile.columns() else cs * 0.7
        with np.errstate(invalid="ignore", divide="ignore"):
            clim = np.where(cs > 0.02, np.clip(prof / np.maximum(cs, 1e-6), 0.0, 1.3), 0.0)
        k_clim = float(np.average(clim, weights=cs)) if cs.sum() > 0 else 0.7
        k_now = self.pv_correction(column, measured_yield, now if now is not None else times[0])
        if k_now is None:
            k = np.full(len(times), k_clim)
        else:
            lead_h = (times - times[0]).total_seconds().to_numpy() / 3600.0
            a = np.exp(-lead_h / self.pv_correction_tau_h)
            k = a * k_now + (1 - a) * k_clim
        return np.clip(cs * k, 0.0, 1.2)

    # ---- prices
    def price_buy(self, times: pd.DatetimeIndex, tz: str = "Europe/Rome") -> np.ndarray:
        if self.purchase_bands is not None:
            local = pd.DatetimeIndex(times).tz_convert(tz).tz_localize(None)
            return np.array([self.purchase_bands.price(b) for b in arera_bands(local)])
        assert self.purchase_column is not None
        return self.profile.at(self.purchase_column, times)

    def pz_eur_per_mwh(self, times: pd.DatetimeIndex, feed: pd.Series | None = None) -> np.ndarray:
        """Zonal price Pz (€/MWh): the live feed where it covers a quarter hour (a series on the
        UTC quarter-hour grid, see ``PlantState.pz_feed``), the site's zonal-price profile elsewhere
        (with a fixed sale price and no profile: that price)."""
        if self.sale_column is not None:
            base = self.profile.at(self.sale_column, times).astype(float)
        else:
            base = np.full(
                len(times), (self.sale_eur_per_kwh or 0.0) * 1000.0 / max(self.sale_factor, 1e-9)
            )
        if feed is not None and len(feed):
            live = feed.reindex(pd.DatetimeIndex(times).floor("15min")).to_numpy(dtype=float)
            base = np.where(np.isfinite(live), live, base)
        return base

    def profile_column(
        self, column: str, times: pd.DatetimeIndex, feed: pd.Series | None = None
    ) -> np.ndarray:
        """Any other column of the profile year at ``times``; with a live ``feed`` (UTC quarter
        hours) its values where it covers a step (the zonal price of the DM 414 incentive)."""
        base = self.profile.at(column, times).astype(float)
        if feed is not None and len(feed):
            live = feed.reindex(pd.DatetimeIndex(times).floor("15min")).to_numpy(dtype=float)
            base = np.where(np.isfinite(live), live, base)
        return base

    def price_sell(self, times: pd.DatetimeIndex, feed: pd.Series | None = None) -> np.ndarray:
        """Sale price (€/kWh): the contract's fixed price, else ``sale_factor`` × Pz (feed or profile)."""
        if self.sale_eur_per_kwh is not None:
            return np.full(len(times), self.sale_eur_per_kwh)
        assert self.sale_column is not None
        return self.sale_factor * self.pz_eur_per_mwh(times, feed) / 1000.0


def _clean(s: pd.Series) -> pd.Series:
    """Numeric, finite, sorted, unique-index history."""
    s = pd.to_numeric(s, errors="coerce")
    s = s[np.isfinite(s.to_numpy(dtype=float))]
    s = s[~s.index.duplicated(keep="last")]
    return s.sort_index()
