"""Synthetic hourly zonal electricity price (day-ahead, €/MWh) at a given average level.

Shape: a typical Italian day-ahead (MGP) daily profile of the years 2019–2022 — night trough at
03–04 h, morning ramp with a peak at 08–09 h, a midday dip (solar), and the evening peak at
19–20 h — flattened on Saturdays, Sundays and national holidays (× 0.88 level, half the
swing).  The series is then scaled so its *time average* over the index equals ``mean_eur_mwh``
exactly.  It is a documented stand-in for the GME hourly NORD/PUN series, which the seed does not
reproduce in its text (Figure 11 is an image); replace it with the real series for real studies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ems.errors import DataError
from ems.profiles.calendar import is_holiday_day

#: Relative weekday profile, hours 0..23 (mean 1.0 before normalisation).
WEEKDAY_SHAPE = np.array(
    [
        0.92,
        0.86,
        0.83,
        0.81,
        0.82,
        0.87,
        0.97,
        1.07,
        1.12,
        1.10,
        1.04,
        1.00,
        0.96,
        0.93,
        0.94,
        0.98,
        1.03,
        1.10,
        1.18,
        1.25,
        1.24,
        1.15,
        1.04,
        0.96,
    ]
)
HOLIDAY_LEVEL = 0.88
HOLIDAY_SWING = 0.5


def zonal_price(
    index: pd.DatetimeIndex, mean_eur_mwh: float, name: str = "zonal_price_eur_per_mwh"
) -> pd.Series:
    """Hourly price series (€/MWh) with the documented daily/weekly shape and the given mean."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) == 0:
        raise DataError("index: expected a non-empty pandas DatetimeIndex")
    try:
        level = float(mean_eur_mwh)
    except (TypeError, ValueError):
        raise DataError(f"mean_eur_mwh: expected a number, got {mean_eur_mwh!r}") from None
    if not np.isfinite(level) or level < 0:
        raise DataError(f"mean_eur_mwh: must be a finite number >= 0, got {mean_eur_mwh!r}")
    shape = WEEKDAY_SHAPE / WEEKDAY_SHAPE.mean()
    h = index.hour.to_numpy()
    hol = is_holiday_day(index, saturday_is_holiday=True)
    w = np.where(hol, HOLIDAY_LEVEL * (1 + HOLIDAY_SWING * (shape[h] - 1)), shape[h])
    return pd.Series(w * level / w.mean(), index=index, name=name)
