"""Pure parsers for meter and zonal-price CSV text, and aggregation to local hours.

Accepted layouts are documented in ``docs/accounting.md``. In short:

- delimiter ``,`` or ``;`` (detected from the header); with ``;`` a decimal comma is accepted;
- header names are case-insensitive, with Italian aliases;
- time is either one ``timestamp`` column (ISO 8601, with a UTC offset or ``Z``; naive means
  Europe/Rome wall time and is refused where it is ambiguous or does not exist at the DST changes;
  ``dd/mm/yyyy HH:MM`` accepted), or ``date`` + ``hour`` (1..23/24/25, the GME/GSE hour index of
  the local day, or a clock time ``HH:MM`` = naive local start) or ``date`` + ``quarter``
  (1..92/96/100);
- timestamps are the **start** of the interval; intervals are 15 or 60 minutes (``interval_min``
  column, or inferred per POD/direction or zone: all on the hour → 60, otherwise 15).

Meter files (long): ``pod``, time, ``kwh`` (or ``wh``), optional ``direction`` (injected / withdrawn, or
immessa / prelevata). Without ``direction`` a POD that is only a plant is ``injected`` and a POD
that is only a member is ``withdrawn``; a POD that is both needs the column.
Meter files (wide, one row per POD and day): ``pod``, ``date``, optional ``direction``, and
``h1``…``h25`` (hours) or ``q1``…``q100`` (quarters) of the local day (see :func:`_parse_meter_wide`).
Energy is kept as integer Wh; kWh with more than 3 decimals are rounded half-even to 1 Wh.

Price files: time + ``zone`` + ``price_eur_per_mwh`` (long), or time + one column per zone
(``NORD``, ``CNOR``, …, wide). 15-min prices become the hourly arithmetic mean of the 4 quarters.

A bad row never stops the parse: it becomes a :class:`RowError` (file, line, problem) and the good
rows are returned.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from .config import MARKET_ZONES
from .timeutil import HOUR_S, local_midnight_utc, parse_local_naive

INJECTED = "injected"
WITHDRAWN = "withdrawn"
DIRECTIONS = (INJECTED, WITHDRAWN)

_DIRECTION_ALIASES = {
    "injected": INJECTED,
    "injection": INJECTED,
    "immessa": INJECTED,
    "immissione": INJECTED,
    "immessa_kwh": INJECTED,
    "export": INJECTED,
    "exported": INJECTED,
    "out": INJECTED,
    "withdrawn": WITHDRAWN,
    "withdrawal": WITHDRAWN,
    "prelevata": WITHDRAWN,
    "prelievo": WITHDRAWN,
    "import": WITHDRAWN,
    "imported": WITHDRAWN,
    "in": WITHDRAWN,
}
_COLS = {
    "pod": ("pod", "codice_pod", "pod_code"),
    "timestamp": (
        "timestamp",
        "datetime",
        "data_ora",
        "dataora",
        "start",
        "interval_start",
        "time_start",
    ),
    "date": ("date", "data", "giorno", "day"),
    "hour": ("hour", "ora", "h"),
    "quarter": ("quarter", "quarto", "quarto_ora", "qh"),
    "kwh": ("kwh", "e_kwh", "energy_kwh", "energia_kwh", "value_kwh"),
    "wh": ("wh", "e_wh", "energy_wh"),
    "direction": ("direction", "verso", "flow", "tipo"),
    "interval": ("interval_min", "duration_min", "minutes", "minuti", "interval"),
    "issued": ("issued", "issue_date", "data_emissione", "emissione", "data_rettifica"),
    "zone": ("zone", "zona", "market_zone"),
    "price": ("price_eur_per_mwh", "price", "prezzo", "pz", "eur_per_mwh", "prezzo_eur_mwh"),
}
MAX_KWH_PER_INTERVAL = Decimal(100_000)  # sanity bound: far above any CER POD


@dataclass(frozen=True, order=True)
class MeterReading:
    """Energy through a POD in one interval: ``wh`` integer Wh, interval start ``start_utc``."""

    pod: str
    direction: str
    start_utc: int
    duration_s: int
    wh: int


@dataclass(frozen=True, order=True)
class PricePoint:
    """Zonal price of one interval, €/MWh."""

    zone: str
    start_utc: int
    duration_s: int
    price_eur_per_mwh: Decimal


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.problem}"


@dataclass
class ParseResult:
    """What one file yielded: good rows and bad rows (never both lost)."""

    file: str
    kind: str  # "meter" | "price"
    readings: list[MeterReading] = field(default_factory=list)
    prices: list[PricePoint] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    sha256: str = ""  # content hash of the file (set by the reader): a replay is a no-op
    issued: str = ""  # issue date / version of the file (rettifica), ISO; '' = undated

    @classmethod
    def header_error(cls, file: str, kind: str, message: str) -> ParseResult:
        """A file refused as a whole: one error on its header line."""
        return cls(file, kind, errors=[RowError(file, 1, message)])


def _norm(h: str) -> str:
    return (
        h.strip()
        .lower()
        .replace(" ", "_")
        .replace("(", "")
        .replace(")", "")
        .replace("/", "_per_")
        .replace("€", "eur")
        .lstrip("\ufeff")
    )


def _find(header: list[str], key: str) -> int | None:
    for i, h in enumerate(header):
        if h in _COLS[key]:
            return i
    return None


def _decimal(text: str, comma_decimal: bool) -> Decimal:
    t = text.strip()
    if comma_decimal and "," in t:
        t = t.replace(".", "").replace(",", ".")
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return d


def _parse_timestamp(text: str) -> tuple[int, bool]:
    """Epoch seconds and whether the wall time had minute == 0 (used for interval inference)."""
    t = text.strip()
    if not t:
        raise ValueError("empty timestamp")
    dt: datetime | None = None
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        if "/" in t:
            for fmt in ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S"):
                try:
                    dt = datetime.strptime(t, fmt)
                    break
                except ValueError:
                    pass
    if dt is None:
        raise ValueError(f"{t!r} is not an ISO 8601 or dd/mm/yyyy HH:MM timestamp")
    if dt.second or dt.microsecond or dt.minute % 15:
        raise ValueError(f"{t!r} is not on a quarter hour")
    if dt.tzinfo is None:
        return parse_local_naive(dt), dt.minute == 0
    return int(dt.timestamp()), dt.astimezone(timezone.utc).minute == 0


def _parse_date(text: str) -> date:
    t = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d"):
        try:
            return datetime.strptime(t, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"{t!r} is not a date (YYYY-MM-DD, dd/mm/yyyy or YYYYMMDD)")


class _TimeReader:
    """Reads the interval start from a row, by timestamp or by date + hour/quarter index."""

    def __init__(self, header: list[str]) -> None:
        self.ts = _find(header, "timestamp")
        self.date = _find(header, "date")
        self.hour = _find(header, "hour")
        self.quarter = _find(header, "quarter")
        self.interval = _find(header, "interval")
        if self.ts is None and not (
            self.date is not None and (self.hour is not None or self.quarter is not None)
        ):
            raise ValueError(
                "no time columns: need 'timestamp', or 'date' with 'hour' or 'quarter'"
            )

    def read(self, row: list[str]) -> tuple[int, int | None, bool]:
        """(start epoch, duration in s if known, on-the-hour flag)."""
        duration: int | None = None
        if self.interval is not None and row[self.interval].strip():
            minutes = row[self.interval].strip()
            if minutes not in ("15", "60"):
                raise ValueError(f"interval {minutes!r} min: only 15 or 60 are accepted")
            duration = int(minutes) * 60
        if self.ts is not None:
            start, on_hour = _parse_timestamp(row[self.ts])
            return start, duration, on_hour
        day = _parse_date(row[self.date])  # type: ignore[index]
        midnight = local_midnight_utc(day)
        day_len = local_midnight_utc(date.fromordinal(day.toordinal() + 1)) - midnight
        if (
            self.hour is not None and ":" in row[self.hour]
        ):  # date + clock time of the interval start
            clock = row[self.hour].strip()
            try:
                hh, mm = (int(x) for x in clock.split(":")[:2])
                wall = datetime(day.year, day.month, day.day, hh, mm)
            except ValueError:
                raise ValueError(f"time {clock!r} is not HH:MM") from None
            if mm % 15:
                raise ValueError(f"time {clock!r} is not on a quarter hour")
            return parse_local_naive(wall), duration, mm == 0
        if self.hour is not None:
            idx, step = row[self.hour].strip(), HOUR_S
        else:
            idx, step = row[self.quarter].strip(), 900  # type: ignore[index]
        if not idx.isdigit() or not 1 <= int(idx) <= day_len // step:
            raise ValueError(f"index {idx!r} out of range 1..{day_len // step} for {day}")
        if duration is not None and duration != step:
            unit = "hour" if step == HOUR_S else "quarter"
            raise ValueError(f"interval {duration // 60} min contradicts the {unit} index")
        return midnight + (int(idx) - 1) * step, step, step == HOUR_S


def _reader(text: str) -> tuple[list[list[str]], bool]:
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    delim = ";" if first.count(";") > first.count(",") else ("\t" if "\t" in first else ",")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delim))
    return rows, delim != ","


def normalise_issued(text: str) -> str:
    """Issue date / time of a distributor's file as sortable ISO text (``YYYY-MM-DD`` or
    ``YYYY-MM-DDTHH:MM:SS``); accepts ISO, ``dd/mm/yyyy`` and ``dd/mm/yyyy HH:MM``."""
    t = text.strip()
    for fmt, date_only in (("%Y-%m-%d", True), ("%d/%m/%Y", True), ("%d/%m/%Y %H:%M", False)):
        try:
            dt = datetime.strptime(t, fmt)
            return dt.date().isoformat() if date_only else dt.isoformat()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(t).replace(tzinfo=None).isoformat()
    except ValueError:
        raise ValueError(
            f"issue date {t!r}: expected YYYY-MM-DD, dd/mm/yyyy or YYYY-MM-DDTHH:MM"
        ) from None


def _file_issued(rows: list[list[str]], header: list[str], res: ParseResult) -> None:
    """The file's issue date from an ``issued`` / ``data_emissione`` column: one value for the
    whole file (a file holding several issues is refused: split it by issue)."""
    i = _find(header, "issued")
    if i is None:
        return
    values = {r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()}
    try:
        issued = {normalise_issued(v) for v in values}
    except ValueError as exc:
        res.errors.append(RowError(res.file, 1, str(exc)))
        res.readings.clear()
        return
    if len(issued) > 1:
        res.errors.append(
            RowError(
                res.file,
                1,
                f"the file holds {len(issued)} issue dates ({', '.join(sorted(issued))}): "
                "split it by issue; nothing of it was read",
            )
        )
        res.readings.clear()
    elif issued:
        res.issued = issued.pop()


def parse_csv(
    text: str, file: str, pod_roles: Mapping[str, frozenset[str]] | None = None
) -> ParseResult:
    """Parse a meter or price CSV (detected from the header). ``pod_roles``: POD → directions it
    can have (from the configuration), used when the file has no direction column. A meter file
    may carry its issue date (rettifica) in an ``issued`` / ``data_emissione`` column."""
    try:
        rows, comma_decimal = _reader(text)
    except csv.Error as exc:  # e.g. a binary or spreadsheet file given by mistake
        return ParseResult.header_error(file, "meter", f"not a CSV file: {exc}")
    if not rows or not any(c.strip() for c in rows[0]):
        return ParseResult.header_error(file, "meter", "empty file or no header")
    header = [_norm(h) for h in rows[0]]
    if _find(header, "pod") is not None:
        res = _parse_meter(rows, header, file, comma_decimal, pod_roles or {})
        _file_issued(rows, header, res)
        return res
    if _find(header, "price") is not None or any(h.upper() in MARKET_ZONES for h in header):
        return _parse_prices(rows, header, file, comma_decimal)
    return ParseResult(
        file,
        "meter",
        errors=[
            RowError(
                file,
                1,
                f"header {rows[0]!r} is neither a meter file (needs 'pod') nor a price file "
                "(needs 'price_eur_per_mwh' or zone columns such as NORD)",
            )
        ],
    )


def _dedupe(
    file: str, items: list[tuple[int, tuple, object]], what: str, errors: list[RowError]
) -> list[tuple[tuple, object]]:
    """Rows ``(line, key, value)`` → unique ``(key, value)`` in first-seen order. The same
    interval twice with the same value is kept once; with different values **all** its rows are
    rejected (the file contradicts itself: neither value is taken)."""
    first: dict[tuple, tuple[int, object]] = {}
    conflicts: dict[tuple, list[int]] = {}
    for n, key, value in items:
        if key not in first:
            first[key] = (n, value)
        elif first[key][1] != value:
            conflicts.setdefault(key, [first[key][0]]).append(n)
    for lines in conflicts.values():
        for n in lines:
            others = ", ".join(str(m) for m in lines if m != n)
            errors.append(
                RowError(
                    file,
                    n,
                    f"same interval as line {others} with a different {what}: both rejected",
                )
            )
    return [(k, v) for k, (_, v) in first.items() if k not in conflicts]


def _energy_wh(text: str, comma_decimal: bool, unit_wh: bool = False) -> int:
    """A non-negative, plausible energy cell → integer Wh (half-even)."""
    kwh = _decimal(text, comma_decimal)
    if unit_wh:
        kwh = kwh / 1000
    if kwh < 0:
        raise ValueError(f"negative energy {kwh} kWh")
    if kwh > MAX_KWH_PER_INTERVAL:
        raise ValueError(f"{kwh} kWh in one interval is not plausible")
    return int((kwh * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _data_rows(
    rows: list[list[str]], header: list[str], file: str, errors: list[RowError]
) -> Iterator[tuple[int, list[str]]]:
    """The non-blank data rows as (line number, cells); a row whose field count is not the
    header's is reported and left out."""
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            errors.append(RowError(file, n, f"{len(row)} fields, header has {len(header)}"))
            continue
        yield n, row


def _pod_direction(
    row: list[str], i_pod: int | None, i_dir: int | None, pod_roles: Mapping[str, frozenset[str]]
) -> tuple[str, str]:
    """(POD, direction) of one meter row; raises ValueError on an empty POD."""
    pod = row[i_pod].strip().upper()  # type: ignore[index]
    if not pod:
        raise ValueError("empty POD")
    return pod, _direction(row, i_dir, pod, pod_roles)


def _with_durations(
    file: str,
    pending: list[tuple[int, tuple, int, int | None, bool, object]],
    errors: list[RowError],
    misaligned: Callable[[int], str],
) -> list[tuple[int, tuple, object]]:
    """Rows (line, key, start, duration or None, on the hour, value) → (line, (*key, start,
    duration), value): a row without a duration takes its key's (:func:`_infer_durations`); an
    interval that does not start on a multiple of its duration is reported (``misaligned``)."""
    inferred = _infer_durations([(n, k, s, dur, oh) for n, k, s, dur, oh, _ in pending])
    items: list[tuple[int, tuple, object]] = []
    for n, key, start, dur, _, value in pending:
        duration = dur or inferred[key]
        if start % duration:
            errors.append(RowError(file, n, misaligned(duration)))
            continue
        items.append((n, (*key, start, duration), value))
    return items


def _infer_durations(items: list[tuple[int, object, int, int | None, bool]]) -> dict[object, int]:
    """Per key: 3600 if every timestamp of that key is on the hour, else 900."""
    on_hour: dict[object, bool] = defaultdict(lambda: True)
    for _, key, _, dur, oh in items:
        if dur is None:
            on_hour[key] = on_hour[key] and oh
    return {k: (HOUR_S if v else 900) for k, v in on_hour.items()}


_WIDE_RE = re.compile(r"^(h|ora_?|q|quarto_?)0*(\d{1,3})$")


def _wide_columns(header: list[str]) -> dict[int, tuple[int, int]]:
    """Columns of the wide daily layout: index → (step in s, 1-based interval of the day)."""
    out: dict[int, tuple[int, int]] = {}
    for i, h in enumerate(header):
        m = _WIDE_RE.match(h)
        if m and int(m.group(2)) >= 1:
            out[i] = (HOUR_S if m.group(1).startswith(("h", "ora")) else 900, int(m.group(2)))
    return out


_CLOCK_RE = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_RANGE_RE = re.compile(r"^(\d{1,2})[:.](\d{2})_?-_?(\d{1,2})[:.](\d{2})$")


def _clock_columns(header: list[str]) -> dict[int, tuple[int, int]]:
    """Columns of the wide layout named by clock time: index → (step in s, wall-clock start in
    minutes from local midnight). Accepted: ranges ``00:00-00:15`` … ``23:45-24:00``, or bare
    times that are interval **ends** when the header has ``24:00`` (``00:15`` … ``24:00``) or
    **starts** when it has ``00:00`` (``00:00`` … ``23:45``). Raises ValueError otherwise."""
    ranges: dict[int, tuple[int, int]] = {}
    bare: dict[int, int] = {}
    for i, h in enumerate(header):
        m = _RANGE_RE.match(h)
        if m:
            a = int(m.group(1)) * 60 + int(m.group(2))
            b = int(m.group(3)) * 60 + int(m.group(4))
            if b - a not in (15, 60):
                raise ValueError(f"column {h!r}: an interval of 15 or 60 minutes expected")
            ranges[i] = ((b - a) * 60, a)
            continue
        m = _CLOCK_RE.match(h)
        if m:
            bare[i] = int(m.group(1)) * 60 + int(m.group(2))
    if ranges:
        return ranges
    if not bare:
        return {}
    minutes = sorted(bare.values())
    step = min(b - a for a, b in zip(minutes, minutes[1:], strict=False)) if len(bare) > 1 else 60
    if step not in (15, 60):
        raise ValueError(f"clock columns {step} minutes apart: 15 or 60 expected")
    if 24 * 60 in minutes:
        return {i: (step * 60, m - step) for i, m in bare.items()}
    if 0 in minutes:
        return {i: (step * 60, m) for i, m in bare.items()}
    raise ValueError(
        "clock-time columns must include 24:00 (interval ends) or 00:00 (interval starts), or "
        "be ranges such as 00:00-00:15"
    )


def _direction(
    row: list[str], i_dir: int | None, pod: str, pod_roles: Mapping[str, frozenset[str]]
) -> str:
    if i_dir is not None and row[i_dir].strip():
        d = _DIRECTION_ALIASES.get(row[i_dir].strip().lower())
        if d is None:
            raise ValueError(f"direction {row[i_dir].strip()!r}: use injected or withdrawn")
        return d
    roles = pod_roles.get(pod)
    if roles is None:
        raise ValueError(f"POD {pod} is not in the configuration and the row has no direction")
    if len(roles) != 1:
        raise ValueError(
            f"POD {pod} is both a plant and a member: the direction column is required"
        )
    return next(iter(roles))


def _parse_meter_wide(
    rows: list[list[str]],
    header: list[str],
    file: str,
    comma_decimal: bool,
    pod_roles: Mapping[str, frozenset[str]],
    cols: dict[int, tuple[int, int]],
    clock: bool = False,
) -> ParseResult:
    """One row per POD and local day, one column per hour (``h1``…``h25``, ``ora1``…) or quarter
    (``q1``…``q100``, ``quarto1``…) of the day, numbered from local midnight as GME/GSE do: a 23-hour
    day leaves ``h24``/``h25`` empty, a 25-hour day fills ``h25``. Empty cells are missing data.
    With ``clock`` the columns are wall-clock times (:func:`_clock_columns`): a value in the
    skipped hour of the March DST day, or in the repeated hour of the October one (which clock
    labels cannot tell apart), is reported; use the indexed or long layout for those days."""
    steps = {step for step, _ in cols.values()}
    if len(steps) > 1:
        return ParseResult.header_error(file, "meter", "wide layout mixes hour and quarter columns")
    res = ParseResult(file, "meter")
    i_pod, i_dir, i_date = _find(header, "pod"), _find(header, "direction"), _find(header, "date")
    items: list[tuple[int, tuple, object]] = []
    for n, row in _data_rows(rows, header, file, res.errors):
        try:
            pod, d = _pod_direction(row, i_pod, i_dir, pod_roles)
            day = _parse_date(row[i_date])  # type: ignore[index]
        except ValueError as exc:
            res.errors.append(RowError(file, n, str(exc)))
            continue
        midnight = local_midnight_utc(day)
        day_len = local_midnight_utc(date.fromordinal(day.toordinal() + 1)) - midnight
        for i, (step, idx) in sorted(cols.items(), key=lambda kv: kv[1][1]):
            cell = row[i].strip()
            if not cell:
                continue
            try:
                if clock:
                    wall = datetime(day.year, day.month, day.day) + timedelta(minutes=idx)
                    start = parse_local_naive(wall)
                elif idx > day_len // step:
                    raise ValueError(
                        f"{day} has {day_len // step} intervals, column {rows[0][i].strip()!r} "
                        "must be empty"
                    )
                else:
                    start = midnight + (idx - 1) * step
                wh = _energy_wh(cell, comma_decimal)
            except ValueError as exc:
                res.errors.append(RowError(file, n, f"column {rows[0][i].strip()!r}: {exc}"))
                continue
            items.append((n, (pod, d, start, step), wh))
    for (pod, d, start, step), wh in _dedupe(file, items, "value", res.errors):
        res.readings.append(MeterReading(pod, d, start, step, wh))  # type: ignore[arg-type]
    return res


def _parse_meter_daily(
    rows: list[list[str]],
    header: list[str],
    file: str,
    comma_decimal: bool,
    pod_roles: Mapping[str, frozenset[str]],
) -> ParseResult | None:
    """The wide daily layouts (a ``date`` column and no time column): indexed ``h1``/``q1``… or
    clock-time columns; None if the header is not one of them."""
    if _find(header, "date") is None or any(
        _find(header, k) is not None for k in ("timestamp", "hour", "quarter")
    ):
        return None
    wide = _wide_columns(header)
    if wide:
        return _parse_meter_wide(rows, header, file, comma_decimal, pod_roles, wide)
    try:
        clock = _clock_columns(header)
    except ValueError as exc:
        return ParseResult.header_error(file, "meter", str(exc))
    if clock:
        return _parse_meter_wide(rows, header, file, comma_decimal, pod_roles, clock, True)
    return None


def _misaligned_interval(duration: int) -> str:
    where = "whole hour" if duration == HOUR_S else "quarter hour"
    return f"a {duration // 60}-min interval must start on a {where}"


def _parse_meter(
    rows: list[list[str]],
    header: list[str],
    file: str,
    comma_decimal: bool,
    pod_roles: Mapping[str, frozenset[str]],
) -> ParseResult:
    daily = _parse_meter_daily(rows, header, file, comma_decimal, pod_roles)
    if daily is not None:
        return daily
    try:
        tr = _TimeReader(header)
    except ValueError as exc:
        return ParseResult.header_error(file, "meter", str(exc))
    i_pod, i_dir = _find(header, "pod"), _find(header, "direction")
    i_kwh, i_wh = _find(header, "kwh"), _find(header, "wh")
    if i_kwh is None and i_wh is None:
        return ParseResult.header_error(file, "meter", "no energy column: need 'kwh' (or 'wh')")
    res = ParseResult(file, "meter")
    pending: list[tuple[int, tuple, int, int | None, bool, object]] = []
    for n, row in _data_rows(rows, header, file, res.errors):
        try:
            pod, d = _pod_direction(row, i_pod, i_dir, pod_roles)
            start, dur, on_hour = tr.read(row)
            if i_kwh is not None:
                wh = _energy_wh(row[i_kwh], comma_decimal)
            else:
                wh = _energy_wh(row[i_wh], comma_decimal, unit_wh=True)  # type: ignore[index]
        except ValueError as exc:
            res.errors.append(RowError(file, n, str(exc)))
            continue
        pending.append((n, (pod, d), start, dur, on_hour, wh))
    items = _with_durations(file, pending, res.errors, _misaligned_interval)
    for (pod, d, start, duration), wh in _dedupe(file, items, "value", res.errors):
        res.readings.append(MeterReading(pod, d, start, duration, wh))  # type: ignore[arg-type]
    return res


def _parse_prices(
    rows: list[list[str]], header: list[str], file: str, comma_decimal: bool
) -> ParseResult:
    try:
        tr = _TimeReader(header)
    except ValueError as exc:
        return ParseResult.header_error(file, "price", str(exc))
    i_zone, i_price = _find(header, "zone"), _find(header, "price")
    wide = {i: h.upper() for i, h in enumerate(header) if h.upper() in MARKET_ZONES}
    if i_price is not None and i_zone is None:
        return ParseResult.header_error(file, "price", "price column without a 'zone' column")
    res = ParseResult(file, "price")
    pending: list[tuple[int, tuple, int, int | None, bool, object]] = []
    for n, row in _data_rows(rows, header, file, res.errors):
        try:
            start, dur, on_hour = tr.read(row)
            parsed = _price_values(row, i_zone, i_price, wide, comma_decimal)
        except ValueError as exc:
            res.errors.append(RowError(file, n, str(exc)))
            continue
        for z, p in parsed:
            pending.append((n, (z,), start, dur, on_hour, p))
    items = _with_durations(
        file, pending, res.errors, lambda dur: f"a {dur // 60}-min price must start on a whole hour"
    )
    for (z, start, duration), p in _dedupe(file, items, "price", res.errors):
        res.prices.append(PricePoint(z, start, duration, p))  # type: ignore[arg-type]
    return res


def _price_values(
    row: list[str],
    i_zone: int | None,
    i_price: int | None,
    wide: Mapping[int, str],
    comma_decimal: bool,
) -> list[tuple[str, Decimal]]:
    """(zone, €/MWh) of one price row, long (zone + price) or wide (one column per zone)."""
    if i_price is not None:
        zone = row[i_zone].strip().upper()  # type: ignore[index]
        if zone not in MARKET_ZONES:
            raise ValueError(f"zone {zone!r} is not one of {sorted(MARKET_ZONES)}")
        values = [(zone, row[i_price])]
    else:
        values = [(z, row[i]) for i, z in wide.items() if row[i].strip()]
    parsed = [(z, _decimal(v, comma_decimal)) for z, v in values]
    for _, p in parsed:
        if abs(p) > 10_000:
            raise ValueError(f"price {p} €/MWh is not plausible")
    return parsed


def hourly_energy(
    readings: Iterable[MeterReading],
) -> tuple[dict[tuple[str, str, int], int], dict[tuple[str, str, int], str]]:
    """Sum readings to hours: ``{(pod, direction, hour_utc): wh}`` and the incomplete hours with a
    reason. An hour is complete with its 4 quarter-hours, or with an hourly reading; a partial
    hour is *not* summed (never zero-filled): it is reported as incomplete."""
    quarters: dict[tuple[str, str, int], dict[int, int]] = defaultdict(dict)
    hourly: dict[tuple[str, str, int], int] = {}
    for r in readings:
        if r.duration_s == HOUR_S:
            hourly[(r.pod, r.direction, r.start_utc)] = r.wh
        else:
            h = r.start_utc - r.start_utc % HOUR_S
            quarters[(r.pod, r.direction, h)][r.start_utc] = r.wh
    energy: dict[tuple[str, str, int], int] = {}
    partial: dict[tuple[str, str, int], str] = {}
    for key in set(quarters) | set(hourly):
        q = quarters.get(key, {})
        if len(q) == 4:
            energy[key] = sum(q.values())
        elif key in hourly:
            energy[key] = hourly[key]
        else:
            partial[key] = f"{len(q)} of 4 quarter-hours"
    return energy, partial


def hourly_prices(points: Iterable[PricePoint]) -> dict[tuple[str, int], Decimal]:
    """``{(zone, hour_utc): €/MWh}``: the hourly price, or the mean of the 4 quarter-hour prices
    (an hour with fewer than 4 quarters and no hourly price has no price)."""
    quarters: dict[tuple[str, int], dict[int, Decimal]] = defaultdict(dict)
    hourly: dict[tuple[str, int], Decimal] = {}
    for p in points:
        if p.duration_s == HOUR_S:
            hourly[(p.zone, p.start_utc)] = p.price_eur_per_mwh
        else:
            quarters[(p.zone, p.start_utc - p.start_utc % HOUR_S)][p.start_utc] = (
                p.price_eur_per_mwh
            )
    out = dict(hourly)
    for key, q in quarters.items():
        if len(q) == 4 and key not in out:
            out[key] = sum(q.values(), Decimal(0)) / 4
    return out


def readings_from_counters(
    pod: str,
    direction: str,
    samples: Iterable[tuple[int, Decimal]],
    interval_s: int = 900,
    max_gap_s: int = 300,
) -> list[MeterReading]:
    """Meter readings from cumulative energy counters (kWh) as the telemetry adapters store them.

    The counter is linearly interpolated at each interval boundary from the samples on either side,
    provided both lie within ``max_gap_s`` of it; an interval whose boundaries cannot be
    interpolated, or where the counter goes down (meter reset or swap), yields no reading — it is
    missing, never zero. Telemetry is a fallback: the distributor's data, when ingested later for the
    same interval, is a correction with its own version.
    """
    pts = sorted((int(t), Decimal(v)) for t, v in samples)
    if len(pts) < 2:
        return []
    values: dict[int, Decimal] = {}
    j = 0
    first = pts[0][0] - pts[0][0] % interval_s
    for b in range(first, pts[-1][0] + 1, interval_s):
        while j + 1 < len(pts) and pts[j + 1][0] <= b:
            j += 1
        t0, v0 = pts[j]
        if t0 == b:
            values[b] = v0
            continue
        if t0 > b or j + 1 >= len(pts):
            continue
        t1, v1 = pts[j + 1]
        if b - t0 <= max_gap_s and t1 - b <= max_gap_s:
            values[b] = v0 + (v1 - v0) * Decimal(b - t0) / Decimal(t1 - t0)
    out = []
    for b, v in sorted(values.items()):
        nxt = values.get(b + interval_s)
        if nxt is None or nxt < v:
            continue
        wh = int(((nxt - v) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        out.append(MeterReading(pod, direction, b, interval_s, wh))
    return out
