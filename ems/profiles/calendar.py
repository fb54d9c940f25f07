"""Calendar helpers: hourly standard-time year, Italian working days / holidays."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import holidays as _holidays
import numpy as np
import pandas as pd

from ems.errors import DataError

#: Offset of Italian local *standard* time (CET) from UTC, in hours.
CET_OFFSET_H = 1
#: pvlib/pandas time-zone name for a fixed UTC+1 offset (the sign is inverted in "Etc/").
CET_FIXED_TZ = "Etc/GMT-1"


def hourly_year(year: int = 2023, freq: str = "h") -> pd.DatetimeIndex:
    """Naive local-standard-time index covering one calendar year (8760 h, 8784 if leap)."""
    if not isinstance(year, (int, np.integer)) or not 1900 <= int(year) <= 2200:
        raise DataError(f"year: expected an integer between 1900 and 2200, got {year!r}")
    return pd.date_range(
        f"{int(year)}-01-01", f"{int(year) + 1}-01-01", freq=freq, inclusive="left"
    )


@lru_cache(maxsize=64)
def _italian_holidays(year: int) -> frozenset:
    return frozenset(_holidays.Italy(years=year).keys())


def national_holidays(years: Iterable[int]) -> set:
    """Set of ``datetime.date`` national holidays in Italy for the given years."""
    out: set = set()
    for y in years:
        out |= _italian_holidays(int(y))
    return out


def is_holiday_day(index: pd.DatetimeIndex, saturday_is_holiday: bool = True) -> np.ndarray:
    """Boolean array: True where the timestamp falls on a non-working day.

    Non-working = Sunday, an Italian national holiday (``holidays.Italy``), and — by default —
    Saturday (the campus is closed on Saturdays; ARERA band F2 also treats Saturday apart).
    """
    idx = pd.DatetimeIndex(index)
    hol = national_holidays(sorted(set(idx.year)))
    dates = idx.date
    dow = idx.dayofweek
    is_hol = np.fromiter((d in hol for d in dates), dtype=bool, count=len(idx))
    weekend = dow == 6
    if saturday_is_holiday:
        weekend |= dow == 5
    return np.asarray(weekend | is_hol)


def day_type(index: pd.DatetimeIndex) -> np.ndarray:
    """Array of ``"weekday" | "saturday" | "holiday"`` (Sunday and national holidays = holiday)."""
    idx = pd.DatetimeIndex(index)
    hol = is_holiday_day(idx, saturday_is_holiday=False)
    out = np.where(idx.dayofweek == 5, "saturday", "weekday").astype(object)
    out[hol] = "holiday"
    return out
