"""Accounting use cases over the :class:`~ems.ports.ledger.LedgerStore` port (no I/O here).

- :func:`ingest` stores parsed meter / price rows (append-only, versioned) and recomputes the
  ledger hours they touch; replaying the same data appends nothing.
- :func:`recompute` recomputes a period from the raw data (after a configuration change).
- :func:`statements` builds the statements of a month or a year from the latest ledger rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from ems.ports.ledger import LedgerStore

from .config import AccountingConfig, Configuration
from .ledger import compute_hours, next_versions
from .readings import INJECTED, WITHDRAWN, ParseResult, RowError, hourly_energy, hourly_prices
from .statement import Statement, build_statement, settle_year
from .timeutil import HOUR_S, hours_between, local, month_bounds


def pod_roles(cfg: AccountingConfig) -> dict[str, frozenset[str]]:
    """POD → the directions it has in the configuration (plant → injected, member → withdrawn)."""
    roles: dict[str, set[str]] = defaultdict(set)
    for c in cfg.configurations:
        for p in c.plants:
            roles[p.pod].add(INJECTED)
        for m in c.members:
            roles[m.pod].add(WITHDRAWN)
    return {k: frozenset(v) for k, v in roles.items()}


def _pods(config: Configuration) -> list[str]:
    return sorted({p.pod for p in config.plants} | {m.pod for m in config.members})


def _zones(config: Configuration) -> list[str]:
    return sorted({p.market_zone for p in config.plants})  # type: ignore[misc]


@dataclass
class IngestSummary:
    files: list[tuple[str, str, int, int]] = field(
        default_factory=list
    )  # file, kind, good, bad rows
    new: int = 0
    unchanged: int = 0
    corrected: int = 0
    ledger_versions: int = 0
    errors: list[RowError] = field(default_factory=list)
    unknown_pods: set[str] = field(default_factory=set)
    older: int = 0  # readings older than the stored issue: ignored
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # file, as name, when


def _month_chunks(hours: Iterable[int]) -> list[list[int]]:
    chunks: dict[tuple[int, int], list[int]] = defaultdict(list)
    for h in hours:
        t = local(h)
        chunks[(t.year, t.month)].append(h)
    return [sorted(chunks[k]) for k in sorted(chunks)]


def recompute_hours(
    store: LedgerStore,
    cfg: AccountingConfig,
    config: Configuration,
    hours: Iterable[int],
    reason: str,
) -> int:
    """Recompute the given hours of ``config`` from raw data; append changed rows. Returns the
    number of new ledger versions."""
    appended = 0
    for chunk in _month_chunks(set(hours)):
        lo, hi = chunk[0], chunk[-1] + HOUR_S
        energy, partial = hourly_energy(store.readings(_pods(config), lo, hi))
        prices = hourly_prices(store.prices(_zones(config), lo, hi))
        computed = compute_hours(config, chunk, energy, partial, prices, cfg.valorisation_params)
        new = next_versions(store.latest_hashes(config.id, lo, hi), computed)
        if new:
            store.append_hours(new, reason)
            appended += len(new)
    return appended


def _store_file(
    store: LedgerStore,
    res: ParseResult,
    summary: IngestSummary,
    roles: Mapping[str, frozenset[str]],
    changed: Mapping[str, dict[str, set[int]]],
) -> None:
    """Store one parsed file's good rows; note the hours whose raw data changed."""
    summary.errors.extend(res.errors)
    summary.files.append((res.file, res.kind, len(res.readings) + len(res.prices), len(res.errors)))
    if res.readings:
        summary.unknown_pods |= {r.pod for r in res.readings if r.pod not in roles}
        out = store.add_readings(res.readings, source=res.file, issued=res.issued)
        for r in res.readings:
            if r.pod in out.changed_keys:
                changed["pod"][r.pod].add(r.start_utc - r.start_utc % HOUR_S)
    elif res.prices:
        out = store.add_prices(res.prices, source=res.file)
        for p in res.prices:
            if p.zone in out.changed_keys:
                changed["zone"][p.zone].add(p.start_utc - p.start_utc % HOUR_S)
    else:
        return
    summary.new += out.new
    summary.unchanged += out.unchanged
    summary.corrected += out.corrected
    summary.older += out.older


def ingest(
    store: LedgerStore, cfg: AccountingConfig, parsed: Sequence[ParseResult]
) -> IngestSummary:
    """Store the good rows of every parsed file and update the ledger hours they change. A file
    whose content hash was ingested before is skipped (a replay is a no-op)."""
    summary = IngestSummary()
    roles = pod_roles(cfg)
    changed: dict[str, dict[str, set[int]]] = {"pod": defaultdict(set), "zone": defaultdict(set)}
    for res in parsed:
        seen = store.file_ingested(res.sha256) if res.sha256 else None
        if seen is not None:
            summary.skipped.append((res.file, *seen))
            continue
        _store_file(store, res, summary, roles, changed)
        if res.sha256:
            store.record_file(res.sha256, res.file, res.issued)
    files = ", ".join(sorted({f for f, *_ in summary.files}))
    for config in cfg.configurations:
        hours: set[int] = set()
        for pod in _pods(config):
            hours |= changed["pod"].get(pod, set())
        zone_hours: set[int] = set()
        for zone in _zones(config):
            zone_hours |= changed["zone"].get(zone, set())
        if zone_hours:  # prices matter only where the configuration has meter data
            lo, hi = min(zone_hours), max(zone_hours) + HOUR_S
            hours |= zone_hours & store.reading_hours(_pods(config), lo, hi)
        if hours:
            summary.ledger_versions += recompute_hours(store, cfg, config, hours, f"ingest {files}")
    return summary


def recompute(
    store: LedgerStore, cfg: AccountingConfig, start: date, end: date, reason: str
) -> int:
    """Recompute every configuration over local days [start, end) from the stored raw data."""
    all_hours = hours_between(start, end)
    if not all_hours:
        return 0
    lo, hi = all_hours[0], all_hours[-1] + HOUR_S
    n = 0
    for config in cfg.configurations:
        n += recompute_hours(store, cfg, config, store.reading_hours(_pods(config), lo, hi), reason)
    return n


def period_days(month: str | None = None, year: int | None = None) -> tuple[date, date, str, bool]:
    """(first day, day after the last, label, annual?) of ``YYYY-MM`` or a year."""
    if month is not None:
        y, m = (int(x) for x in month.split("-"))
        start, end = month_bounds(y, m)
        return start, end, f"{y:04d}-{m:02d}", False
    assert year is not None
    return date(year, 1, 1), date(year + 1, 1, 1), f"{year:04d}", True


def statements(
    store: LedgerStore, cfg: AccountingConfig, start: date, end: date, label: str, annual: bool
) -> list[Statement]:
    """One statement per configuration over local days [start, end)."""
    hours = hours_between(start, end)
    lo, hi = hours[0], hours[-1] + HOUR_S
    out = []
    for c in cfg.configurations:
        rows = store.latest_hours(c.id, lo, hi)
        st = build_statement(cfg, c, rows, hours, label, annual)
        if annual:
            settle_year(st, _monthly_statements(cfg, c, rows, start, end))
        out.append(st)
    return out


def _monthly_statements(
    cfg: AccountingConfig, config: Configuration, rows: Sequence, start: date, end: date
) -> list[Statement]:
    """The monthly statements of [start, end) from the same ledger rows (for the conguaglio)."""
    out = []
    y, m = start.year, start.month
    while date(y, m, 1) < end:
        m_start, m_end = month_bounds(y, m)
        hours = hours_between(m_start, m_end)
        lo, hi = hours[0], hours[-1] + HOUR_S
        month_rows = [r for r in rows if lo <= r.hour_utc < hi]
        out.append(build_statement(cfg, config, month_rows, hours, f"{y:04d}-{m:02d}", False))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
