"""Local hours in Europe/Rome and ARERA time bands.

An hour is identified by the UTC epoch second of its start (``hour_utc``): unique through the DST
changes, where the local day has 23 hours (last Sunday of March) or 25 (last Sunday of October).
Every whole UTC hour is a whole local hour in Italy (offsets +1/+2), so aggregation to local hours
is aggregation to UTC hours, labelled in local time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from ems.profiles.calendar import national_holidays
from ems.tariffs import arera_band

ROME = ZoneInfo("Europe/Rome")
HOUR_S = 3600


def local_midnight_utc(day: date) -> int:
    """Epoch seconds of 00:00 Europe/Rome on ``day``."""
    return int(datetime(day.year, day.month, day.day, tzinfo=ROME).timestamp())


def hours_between(start_day: date, end_day: date) -> list[int]:
    """Hour starts (UTC epoch) of the local days ``start_day`` ≤ d < ``end_day``."""
    return list(range(local_midnight_utc(start_day), local_midnight_utc(end_day), HOUR_S))


def month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def local(hour_utc: int) -> datetime:
    """Aware local datetime of an hour start."""
    return datetime.fromtimestamp(hour_utc, ROME)


def local_day(hour_utc: int) -> date:
    return local(hour_utc).date()


def local_label(hour_utc: int) -> str:
    """ISO local time with offset, e.g. ``2024-10-27T02:00+02:00`` (unambiguous on DST days)."""
    return local(hour_utc).isoformat(timespec="minutes")


def utc_label(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def parse_local_naive(dt: datetime) -> int:
    """Epoch seconds of a naive Europe/Rome wall time.

    Raises ValueError for a time that does not exist (spring-forward gap) or is ambiguous
    (the repeated hour in October): such rows must carry an explicit UTC offset.
    """
    a = dt.replace(tzinfo=ROME, fold=0)
    b = dt.replace(tzinfo=ROME, fold=1)
    if a.utcoffset() != b.utcoffset():
        # either ambiguous (both exist) or non-existent (neither round-trips)
        back = datetime.fromtimestamp(a.timestamp(), ROME).replace(tzinfo=None)
        if back != dt:
            raise ValueError(f"{dt:%Y-%m-%d %H:%M} does not exist in Europe/Rome (DST change)")
        raise ValueError(
            f"{dt:%Y-%m-%d %H:%M} is ambiguous in Europe/Rome (DST change): "
            "give the UTC offset, e.g. +02:00 or +01:00"
        )
    return int(a.timestamp())


def time_band(hour_utc: int) -> str:
    """ARERA 181/06 band (F1/F2/F3) of the local Rome hour that starts at ``hour_utc``."""
    t = local(hour_utc)
    return arera_band(t.weekday(), t.hour, t.date() in national_holidays([t.year]))


def day_hours(day: date) -> list[int]:
    return hours_between(day, day + timedelta(days=1))
