"""Hourly demand series from an annual total and a named shape.

Every function returns a pandas Series in kW (hourly mean power) on the given hourly index whose
sum × 1 h equals ``annual_mwh × 1000`` kWh (to floating-point precision).  Shapes are hand-written
and documented here (no external data); they are meant for design studies where only annual
totals are known (SPEC §7).

Electric shapes (24-h relative profiles for weekday / Saturday / holiday, times a monthly factor):

* ``office`` — 08–19 occupancy, low base load (≈30 % of the daytime level).
* ``school`` — teaching 08–17, strong summer (July–August) and Christmas reduction.
* ``campus`` (alias ``university``, ``residential_care``) — university campus with labs, servers
  and libraries: high base load (≈45 %), 08–19 plateau, evening tail to 21, August dip.
* ``flat`` — constant.

"Holiday" = Sunday or Italian national holiday (``holidays.Italy``); Saturday has its own profile.
The campus is also treated as closed (holiday profile) from 24 December to 6 January and during
the August closure week around Ferragosto (10–20 August) — typical of Italian universities.

Thermal shapes:

* heating — heating degree-hours ``max(0, T_base − T_amb)`` (T_base = 20 °C) inside the legal
  heating season (zone D: 1 November–15 April by DPR 412/93; the study extends it to
  15 October–15 April as in the brief), weighted by an occupancy schedule (plant on 06–18 on
  working days with a morning-start boost, off on holidays and Saturday half day) — DPR 74/2013
  allows 12 h/day in zone D.
* cooling — cooling degree-hours ``max(0, T_amb − T_base)`` (T_base = 22 °C, internal and solar
  gains make the building need cooling above ≈ 22 °C outdoor) plus an occupancy-driven internal
  gain term, June–September, plant on 08–19 on working days.
* DHW — flat daily draw with a morning (07–09), lunch (12–14) and evening (17–19) peak; holidays at
  30 % of the working-day level.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ems.errors import DataError
from ems.profiles.calendar import day_type

# ---------------------------------------------------------------------------------------------
# helpers


def _check_index(index: pd.DatetimeIndex, name: str = "index") -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise DataError(f"{name}: expected a non-empty pandas DatetimeIndex")
    if index.tz is not None:
        raise DataError(f"{name}: expected naive local standard time (no time zone)")
    return index


def _check_total(annual_mwh: float, name: str = "annual_mwh") -> float:
    try:
        v = float(annual_mwh)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected a number, got {annual_mwh!r}") from None
    if not np.isfinite(v) or v < 0:
        raise DataError(f"{name}: must be a finite number >= 0, got {annual_mwh!r}")
    return v


def scale_to_total(
    weights: np.ndarray | pd.Series,
    index: pd.DatetimeIndex,
    annual_mwh: float,
    name: str = "profile",
    dt_h: float = 1.0,
) -> pd.Series:
    """Scale non-negative ``weights`` so that Σ value × dt_h = annual_mwh × 1000 kWh.

    Raises DataError if the weights are all zero while the total is positive.
    """
    total_kwh = _check_total(annual_mwh) * 1000.0
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(index),):
        raise DataError(f"weights: length {w.shape} does not match index length {len(index)}")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise DataError("weights: must be finite and >= 0")
    s = w.sum() * dt_h
    if total_kwh == 0:
        return pd.Series(np.zeros(len(index)), index=index, name=name)
    if s <= 0:
        raise DataError(
            f"{name}: the shape is zero everywhere on this index; cannot scale to {annual_mwh} MWh"
        )
    out = w * (total_kwh / s)
    return pd.Series(out, index=index, name=name)


def _dt_hours(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        return 1.0
    return float(pd.Series(index).diff().median() / pd.Timedelta(hours=1))


# ---------------------------------------------------------------------------------------------
# electric shapes: relative level per hour 0..23 (hour-starting), by day type

_H = np.arange(24)


def _plateau(start: float, end: float, ramp: float = 1.5) -> np.ndarray:
    """0..1 plateau between start and end with linear ramps of ``ramp`` hours (at mid-hour)."""
    t = _H + 0.5
    up = np.clip((t - (start - ramp / 2)) / ramp, 0, 1)
    down = np.clip(((end + ramp / 2) - t) / ramp, 0, 1)
    return np.minimum(up, down)


def _mk(base: float, day: np.ndarray, peak: float = 1.0) -> np.ndarray:
    return base + (peak - base) * day


ELECTRIC_SHAPES: dict[str, dict[str, object]] = {
    "office": {
        "weekday": _mk(0.30, _plateau(8, 19)),
        "saturday": _mk(0.30, _plateau(8, 13), 0.45),
        "holiday": np.full(24, 0.28),
        # monthly factors (Jan..Dec): mild summer cooling bump, August holidays
        "monthly": (1.05, 1.03, 0.98, 0.95, 0.95, 1.02, 1.08, 0.85, 0.98, 0.98, 1.0, 1.02),
        "closures": (),
    },
    "school": {
        "weekday": _mk(0.20, _plateau(8, 17)),
        "saturday": _mk(0.20, _plateau(8, 13), 0.50),
        "holiday": np.full(24, 0.18),
        "monthly": (1.05, 1.05, 1.0, 0.95, 0.95, 0.8, 0.45, 0.35, 0.95, 1.0, 1.02, 1.0),
        "closures": (((12, 24), (1, 6)),),
    },
    "campus": {
        # labs, servers, libraries → high base; evening lectures/labs → tail to 21 h
        "weekday": _mk(0.45, 0.85 * _plateau(8, 18.5) + 0.15 * _plateau(8, 21)),
        "saturday": _mk(0.45, _plateau(8.5, 13.5), 0.60),
        "holiday": np.full(24, 0.42),
        # Jan–Feb exam session (busy), summer cooling with split units in Jun–Jul, August closure
        "monthly": (1.02, 1.02, 1.0, 0.97, 0.97, 1.03, 1.08, 0.80, 0.98, 1.0, 1.0, 0.98),
        "closures": (((12, 24), (1, 6)), ((8, 10), (8, 20))),
    },
    "flat": {
        "weekday": np.ones(24),
        "saturday": np.ones(24),
        "holiday": np.ones(24),
        "monthly": (1.0,) * 12,
        "closures": (),
    },
}
_ALIASES = {"university": "campus", "residential_care": "campus"}

#: Names accepted by :func:`electric_profile`.
ELECTRIC_SHAPE_NAMES = tuple(sorted(set(ELECTRIC_SHAPES) | set(_ALIASES)))


def _in_closure(index: pd.DatetimeIndex, closures) -> np.ndarray:
    """True for days inside any closure ((m1, d1), (m2, d2)) window, wrapping over new year."""
    md = index.month.to_numpy() * 100 + index.day.to_numpy()
    out = np.zeros(len(index), dtype=bool)
    for (m1, d1), (m2, d2) in closures:
        a, b = m1 * 100 + d1, m2 * 100 + d2
        out |= ((md >= a) & (md <= b)) if a <= b else ((md >= a) | (md <= b))
    return out


def _interp_hour(profile: np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    """Profile value at each timestamp (piecewise-constant per hour; works for sub-hourly steps)."""
    return profile[index.hour.to_numpy()]


def electric_profile(
    index: pd.DatetimeIndex,
    annual_mwh: float,
    shape: str = "campus",
    base_fraction: float | None = None,
    name: str = "elec_kw",
) -> pd.Series:
    """Hourly electric demand (kW) following ``shape`` and summing to ``annual_mwh``.

    Args:
        index: naive local-standard-time DatetimeIndex (hourly or finer).
        annual_mwh: energy over the index, MWh (>= 0).
        shape: one of :data:`ELECTRIC_SHAPE_NAMES`.
        base_fraction: optional override of the night/holiday base level relative to the
            weekday peak (0..1), e.g. 0.6 for a building with heavy laboratories.
    """
    index = _check_index(index)
    if not isinstance(shape, str) or (shape not in ELECTRIC_SHAPES and shape not in _ALIASES):
        raise DataError(
            f"shape: unknown electric shape {shape!r}; expected one of {list(ELECTRIC_SHAPE_NAMES)}"
        )
    _check_total(annual_mwh)
    spec = ELECTRIC_SHAPES[_ALIASES.get(shape, shape)]
    profiles = {k: np.asarray(spec[k], dtype=float) for k in ("weekday", "saturday", "holiday")}
    if base_fraction is not None:
        if not 0 <= base_fraction <= 1:
            raise DataError(f"base_fraction: {base_fraction} out of range [0, 1]")
        for k, p in profiles.items():
            old_base = p.min()
            span = max(p.max() - old_base, 1e-12) if k == "weekday" else 1.0
            if k == "weekday":
                profiles[k] = base_fraction + (p - old_base) / span * (1 - base_fraction)
            else:
                rel = p - old_base
                profiles[k] = base_fraction + rel * (1 - base_fraction) / max(1 - old_base, 1e-12)
    dtype = day_type(index)
    closed = _in_closure(index, spec["closures"])
    dtype = np.where(closed, "holiday", dtype)
    w = np.empty(len(index))
    for k in ("weekday", "saturday", "holiday"):
        sel = dtype == k
        w[sel] = _interp_hour(profiles[k], index[sel])
    w *= np.asarray(spec["monthly"], dtype=float)[index.month.to_numpy() - 1]
    return scale_to_total(w, index, annual_mwh, name=name, dt_h=_dt_hours(index))


# ---------------------------------------------------------------------------------------------
# thermal shapes


def _season_mask(
    index: pd.DatetimeIndex, start: tuple[int, int], end: tuple[int, int]
) -> np.ndarray:
    return _in_closure(index, (((start[0], start[1]), (end[0], end[1])),))


def _temperature(t_amb: pd.Series | np.ndarray, index: pd.DatetimeIndex) -> np.ndarray:
    t = np.asarray(t_amb, dtype=float)
    if t.shape != (len(index),):
        raise DataError(f"t_amb: length {t.shape} does not match index length {len(index)}")
    if not np.all(np.isfinite(t)):
        raise DataError("t_amb: contains NaN or infinite values")
    return t


HEATING_SCHEDULE: Mapping[str, np.ndarray] = {
    # plant on 06–18 (12 h, DPR 74/2013 zone D), morning boost to recover the night setback
    "weekday": np.where((_H >= 6) & (_H < 18), 1.0, 0.0)
    + np.where((_H >= 6) & (_H < 8), 0.35, 0.0),
    "saturday": np.where((_H >= 6) & (_H < 13), 0.8, 0.0)
    + np.where((_H >= 6) & (_H < 8), 0.25, 0.0),
    "holiday": np.zeros(24),
}


def heating_profile(
    index: pd.DatetimeIndex,
    annual_mwh: float,
    t_amb: pd.Series | np.ndarray,
    t_base_c: float = 20.0,
    season: tuple[tuple[int, int], tuple[int, int]] = ((10, 15), (4, 15)),
    holiday_fraction: float = 0.0,
    inertia: float = 0.7,
    name: str = "heat_kw",
) -> pd.Series:
    """Hourly space-heating demand (kW) from heating degree-hours of ``t_amb``.

    weight_h = max(0, t_base − T_amb,h) × schedule(day type, hour) inside ``season``
    ((month, day) start, (month, day) end, inclusive, may wrap over new year).
    ``holiday_fraction`` keeps some anti-frost/holiday heating (fraction of the weekday
    schedule level, applied all day 06–18) — 0 by default (buildings closed).
    ``inertia`` (0..1) blends the hourly temperature with the daily mean
    (T_eff = (1 − inertia)·T_h + inertia·T_day) to mimic the building's thermal mass.
    """
    index = _check_index(index)
    _check_total(annual_mwh)
    t = _temperature(t_amb, index)
    if not 0 <= holiday_fraction <= 1:
        raise DataError(f"holiday_fraction: {holiday_fraction} out of range [0, 1]")
    if not 0 <= inertia <= 1:
        raise DataError(f"inertia: {inertia} out of range [0, 1]")
    # Building thermal mass: the load follows a blend of the hourly and the daily-mean temperature.
    t_day = pd.Series(t, index=index).groupby(index.normalize()).transform("mean").to_numpy()
    t_eff = (1.0 - inertia) * t + inertia * t_day
    dh = np.maximum(0.0, t_base_c - t_eff)
    dtype = day_type(index)
    sched = np.empty(len(index))
    hol_sched = np.where((_H >= 6) & (_H < 18), holiday_fraction, 0.0)
    for k in ("weekday", "saturday", "holiday"):
        sel = dtype == k
        prof = hol_sched if k == "holiday" else HEATING_SCHEDULE[k]
        sched[sel] = _interp_hour(np.asarray(prof), index[sel])
    w = dh * sched * _season_mask(index, *season)
    return scale_to_total(w, index, annual_mwh, name=name, dt_h=_dt_hours(index))


def cooling_profile(
    index: pd.DatetimeIndex,
    annual_mwh: float,
    t_amb: pd.Series | np.ndarray,
    t_base_c: float = 22.0,
    season: tuple[tuple[int, int], tuple[int, int]] = ((6, 1), (9, 30)),
    internal_gain_c: float = 2.0,
    name: str = "cool_kw",
) -> pd.Series:
    """Hourly cooling demand (kW) from cooling degree-hours, June–September, working hours.

    weight_h = (max(0, T_amb − t_base) + internal_gain_c) × occupancy(08–19 working days,
    08–13 Saturday at 50 %) when T_amb > t_base − internal_gain_c, inside ``season``.
    """
    index = _check_index(index)
    _check_total(annual_mwh)
    t = _temperature(t_amb, index)
    dtype = day_type(index)
    occ = np.zeros(len(index))
    wk = np.where((_H >= 8) & (_H < 19), 1.0, 0.0)
    sat = np.where((_H >= 8) & (_H < 13), 0.5, 0.0)
    for k, prof in (("weekday", wk), ("saturday", sat)):
        sel = dtype == k
        occ[sel] = _interp_hour(prof, index[sel])
    drive = np.maximum(0.0, t - t_base_c + internal_gain_c)
    w = drive * occ * _season_mask(index, *season)
    return scale_to_total(w, index, annual_mwh, name=name, dt_h=_dt_hours(index))


DHW_DAY = (
    0.15
    + np.where((_H >= 7) & (_H < 9), 1.0, 0.0)
    + np.where((_H >= 12) & (_H < 14), 0.8, 0.0)
    + np.where((_H >= 17) & (_H < 19), 0.6, 0.0)
    + np.where((_H >= 9) & (_H < 17), 0.25, 0.0)
)


def dhw_profile(
    index: pd.DatetimeIndex,
    annual_mwh: float,
    holiday_fraction: float = 0.3,
    name: str = "dhw_kw",
) -> pd.Series:
    """Hourly domestic-hot-water demand (kW): flat daily base with morning/lunch/evening peaks.

    Saturdays at the mean of working day and holiday; holidays at ``holiday_fraction``.
    """
    index = _check_index(index)
    _check_total(annual_mwh)
    if not 0 <= holiday_fraction <= 1:
        raise DataError(f"holiday_fraction: {holiday_fraction} out of range [0, 1]")
    dtype = day_type(index)
    f = np.where(
        dtype == "weekday",
        1.0,
        np.where(dtype == "saturday", (1 + holiday_fraction) / 2, holiday_fraction),
    )
    w = _interp_hour(DHW_DAY, index) * f
    return scale_to_total(w, index, annual_mwh, name=name, dt_h=_dt_hours(index))
