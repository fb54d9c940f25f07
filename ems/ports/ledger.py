"""Ledger store port: what incentive accounting needs from a database (SQLite by default).

Everything is append-only:

- raw meter readings and zonal prices are kept with a version per interval: the same value again
  is a no-op (replay), a different value is a correction (new version + audit entry);
- ledger rows (:class:`~ems.accounting.ledger.ConfigHour` with its plant and member rows) are kept
  with a version per configuration-hour; readers see the latest version;
- the audit trail records every correction and every new ledger version with its reason.

Adapters implement :class:`LedgerStore`; the core (:mod:`ems.accounting.service`) uses only this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from ems.accounting.ledger import ConfigHour
    from ems.accounting.readings import MeterReading, PricePoint


@dataclass(frozen=True)
class StoreResult:
    """Outcome of adding raw data: counts and the hours (UTC starts) whose data changed."""

    new: int
    unchanged: int
    corrected: int
    changed_hours: frozenset[int]
    changed_keys: frozenset[str]  # PODs (meter data) or zones (prices) with changes
    older: int = 0  # readings of an older issue than the stored one: ignored


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    recorded_at: str  # ISO UTC
    action: str  # reading_corrected, price_corrected, ledger_version, ingest
    subject: str
    detail: str


@runtime_checkable
class LedgerStore(Protocol):
    """Append-only store of raw accounting data, ledger versions and the audit trail."""

    def add_readings(
        self, readings: Iterable[MeterReading], source: str, issued: str = ""
    ) -> StoreResult:
        """Store meter readings of a file issued on ``issued`` (ISO date/time of the distributor's
        file or rettifica, '' = undated): identical → unchanged; different value → new version
        (audited) unless the stored one has a later issue (then ignored, counted in ``older``)."""
        ...

    def file_ingested(self, sha256: str) -> tuple[str, str] | None:
        """(name, recorded_at) if a file with this content hash was ingested before."""
        ...

    def record_file(self, sha256: str, name: str, issued: str) -> None:
        """Remember an ingested file (replaying it is then a no-op)."""
        ...

    def readings(self, pods: Sequence[str], start_utc: int, end_utc: int) -> list[MeterReading]:
        """Latest version of every reading of ``pods`` starting in [start_utc, end_utc)."""
        ...

    def add_prices(self, prices: Iterable[PricePoint], source: str) -> StoreResult:
        """Store zonal prices with the same versioning as readings."""
        ...

    def prices(self, zones: Sequence[str], start_utc: int, end_utc: int) -> list[PricePoint]: ...

    def reading_hours(self, pods: Sequence[str], start_utc: int, end_utc: int) -> set[int]:
        """Hours (UTC starts) in [start_utc, end_utc) with at least one reading of ``pods``."""
        ...

    def latest_hashes(
        self, config_id: str, start_utc: int, end_utc: int
    ) -> dict[int, tuple[int, str]]:
        """hour → (latest version, content hash) of the ledger rows in the range."""
        ...

    def append_hours(self, records: Sequence[ConfigHour], reason: str) -> None:
        """Append ledger rows (each with its version set); never overwrite."""
        ...

    def latest_hours(self, config_id: str, start_utc: int, end_utc: int) -> list[ConfigHour]:
        """Latest version of each configuration-hour in the range, by hour."""
        ...

    def versions(self, config_id: str, hour_utc: int) -> list[ConfigHour]:
        """Every version of one configuration-hour, oldest first (audit)."""
        ...

    def audit(self, since_seq: int = 0) -> list[AuditEntry]: ...

    def record_audit(self, action: str, subject: str, detail: str) -> None: ...


__all__ = ["AuditEntry", "LedgerStore", "StoreResult"]
