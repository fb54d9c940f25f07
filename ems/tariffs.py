"""ARERA time bands (delibera 181/06) and band-based purchase prices.

F1: Mon–Fri 08–19; F2: Mon–Fri 07–08 and 19–23, Sat 07–23; F3: the rest, Sundays and national
holidays. F23 = F2 ∪ F3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ems.profiles.calendar import national_holidays


def arera_band(weekday: int, hour: int, holiday: bool) -> str:
    """Band of one local hour: ``weekday`` 0 = Monday, ``hour`` 0–23, ``holiday`` national holiday."""
    if holiday or weekday == 6:
        return "F3"
    if weekday == 5:
        return "F2" if 7 <= hour < 23 else "F3"
    if 8 <= hour < 19:
        return "F1"
    if hour == 7 or 19 <= hour < 23:
        return "F2"
    return "F3"


def arera_bands(index: pd.DatetimeIndex) -> np.ndarray:
    """Bands of a local-time index (naive or tz-aware in local time)."""
    idx = pd.DatetimeIndex(index)
    hol = national_holidays(sorted(set(idx.year)))
    return np.array([arera_band(ts.weekday(), ts.hour, ts.date() in hol) for ts in idx])


def typical_day_band(kind: str, hour: int) -> str:
    """Band of an hour of a typical day: a weekday, or a holiday (F3 all day)."""
    return arera_band(0, hour, False) if kind == "weekday" else "F3"
