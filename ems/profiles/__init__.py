"""Profile library: synthetic weather, PV / solar-thermal yields, demand shapes, typical days.

Everything here is pure computation (no network, no files): callers pass an hourly index or
DataFrame and get pandas objects back.  Conventions:

* time index: naive *local standard time* (no DST), hourly, e.g. ``2023-01-01 00:00`` … ``2023-12-31
  23:00`` for a non-leap year (8760 rows).  Each timestamp labels the hour that *starts* at it.
* powers in kW (hourly mean), so the energy of one row is ``value × 1 h`` in kWh.
* bad arguments raise :class:`ems.errors.DataError` with a message naming the argument.
"""

from __future__ import annotations

from ems.profiles.calendar import hourly_year, is_holiday_day
from ems.profiles.prices import zonal_price
from ems.profiles.pv import pv_specific_yield, solar_thermal_output
from ems.profiles.shapes import (
    cooling_profile,
    dhw_profile,
    electric_profile,
    heating_profile,
    scale_to_total,
)
from ems.profiles.typical_days import TypicalDays, aggregate_typical_days
from ems.profiles.weather import GENOA, SiteClimate, synthetic_weather

__all__ = [
    "GENOA",
    "SiteClimate",
    "TypicalDays",
    "aggregate_typical_days",
    "cooling_profile",
    "dhw_profile",
    "electric_profile",
    "heating_profile",
    "hourly_year",
    "is_holiday_day",
    "scale_to_total",
    "pv_specific_yield",
    "solar_thermal_output",
    "synthetic_weather",
    "zonal_price",
]
