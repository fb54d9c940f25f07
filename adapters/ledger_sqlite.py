"""SQLite implementation of :class:`ems.ports.ledger.LedgerStore` (the default ledger store).

Append-only by construction: triggers abort any UPDATE or DELETE on the data tables. Every table
carries a ``version``; readers take the latest one. Money is stored as decimal text (exact).
Use ``":memory:"`` for tests.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from ems.accounting.ledger import CabinaHour, ConfigHour, MemberHour, PlantHour
from ems.accounting.readings import MeterReading, PricePoint
from ems.accounting.timeutil import HOUR_S, local_label
from ems.errors import DataError
from ems.ports.ledger import AuditEntry, StoreResult

SCHEMA_VERSION = 2  # 2: reading.issued (rettifica version), ingested_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reading (
  pod TEXT NOT NULL, direction TEXT NOT NULL, start_utc INTEGER NOT NULL, duration_s INTEGER NOT NULL,
  version INTEGER NOT NULL, wh INTEGER NOT NULL, source TEXT NOT NULL, recorded_at TEXT NOT NULL,
  PRIMARY KEY (pod, direction, start_utc, duration_s, version));
CREATE TABLE IF NOT EXISTS price (
  zone TEXT NOT NULL, start_utc INTEGER NOT NULL, duration_s INTEGER NOT NULL, version INTEGER NOT NULL,
  price_eur_per_mwh TEXT NOT NULL, source TEXT NOT NULL, recorded_at TEXT NOT NULL,
  PRIMARY KEY (zone, start_utc, duration_s, version));
CREATE TABLE IF NOT EXISTS ledger_config_hour (
  config_id TEXT NOT NULL, hour_utc INTEGER NOT NULL, version INTEGER NOT NULL,
  injected_wh INTEGER NOT NULL, withdrawn_wh INTEGER NOT NULL, shared_wh INTEGER NOT NULL,
  tip_eur TEXT NOT NULL, valorisation_eur TEXT NOT NULL, sale_eur TEXT NOT NULL,
  complete INTEGER NOT NULL, missing TEXT NOT NULL, cabine TEXT NOT NULL, config_fingerprint TEXT NOT NULL,
  content_hash TEXT NOT NULL, reason TEXT NOT NULL, recorded_at TEXT NOT NULL,
  PRIMARY KEY (config_id, hour_utc, version));
CREATE TABLE IF NOT EXISTS ledger_plant_hour (
  config_id TEXT NOT NULL, hour_utc INTEGER NOT NULL, version INTEGER NOT NULL, plant_id TEXT NOT NULL,
  injected_wh INTEGER, shared_wh INTEGER NOT NULL, tip_eligible INTEGER NOT NULL,
  price_eur_per_mwh TEXT, tip_rate_eur_per_mwh TEXT, tip_eur TEXT NOT NULL, valorisation_eur TEXT NOT NULL,
  sale_eur TEXT NOT NULL,
  PRIMARY KEY (config_id, hour_utc, version, plant_id));
CREATE TABLE IF NOT EXISTS ledger_member_hour (
  config_id TEXT NOT NULL, hour_utc INTEGER NOT NULL, version INTEGER NOT NULL, member_id TEXT NOT NULL,
  withdrawn_wh INTEGER, shared_share_wh TEXT NOT NULL,
  PRIMARY KEY (config_id, hour_utc, version, member_id));
CREATE TABLE IF NOT EXISTS ingested_file (
  sha256 TEXT PRIMARY KEY, name TEXT NOT NULL, issued TEXT NOT NULL, recorded_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, recorded_at TEXT NOT NULL, action TEXT NOT NULL,
  subject TEXT NOT NULL, detail TEXT NOT NULL);
"""
_TABLES = (
    "ingested_file",
    "reading",
    "price",
    "ledger_config_hour",
    "ledger_plant_hour",
    "ledger_member_hour",
    "audit",
)


@dataclass
class _Batch:
    """What one ingest of raw data stores: its new versions, audit entries, counts and the hours
    and keys (PODs or zones) it changed."""

    now: str
    new: int = 0
    same: int = 0
    corr: int = 0
    older: int = 0
    rows: list[tuple] = field(default_factory=list)
    audit: list[tuple] = field(default_factory=list)
    hours: set[int] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)

    def store(
        self, row: tuple, correction: tuple[str, str, str] | None, start_utc: int, key: str
    ) -> None:
        """A new version ``row``: the first of its interval, or a correction (audited as
        ``(action, subject, detail)``)."""
        self.rows.append(row)
        if correction is None:
            self.new += 1
        else:
            self.corr += 1
            self.audit.append((self.now, *correction))
        self.hours.add(start_utc - start_utc % HOUR_S)
        self.keys.add(key)

    def write(self, db: sqlite3.Connection, insert_sql: str, source: str, summary: str) -> None:
        """Rows and audit in one transaction, with an ``ingest`` entry when anything happened."""
        with db:
            db.executemany(insert_sql, self.rows)
            db.executemany(
                "INSERT INTO audit (recorded_at, action, subject, detail) VALUES (?,?,?,?)",
                self.audit,
            )
            if self.rows or self.older:
                db.execute(
                    "INSERT INTO audit (recorded_at, action, subject, detail) VALUES (?,?,?,?)",
                    (self.now, "ingest", source, summary),
                )

    def result(self) -> StoreResult:
        hours, keys = frozenset(self.hours), frozenset(self.keys)
        return StoreResult(self.new, self.same, self.corr, hours, keys, self.older)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


class SqliteLedgerStore:
    """Append-only ledger in one SQLite file."""

    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path)
            self.db.executescript(_SCHEMA)
            cols = {r[1] for r in self.db.execute("PRAGMA table_info(reading)")}
            if "issued" not in cols:  # schema 1 → 2: undated readings
                self.db.execute("ALTER TABLE reading ADD COLUMN issued TEXT NOT NULL DEFAULT ''")
            for t in _TABLES:
                for op in ("UPDATE", "DELETE"):
                    self.db.execute(
                        f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} "
                        f"BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END"
                    )
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{path}: not a usable ledger database ({exc})") from None

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ raw data
    def _latest_raw(
        self,
        table: str,
        keycol: str,
        valcol: str,
        keys: set[str],
        lo: int,
        hi: int,
        extra: str = "",
    ) -> dict[tuple, tuple]:
        """key → (version, value[, issued]) of the latest version per interval."""
        out: dict[tuple, tuple] = {}
        for k in keys:
            cols = (
                f"{keycol}, {extra + ', ' if extra else ''}start_utc, duration_s, version, {valcol}"
                + (", issued" if table == "reading" else "")
            )
            for row in self.db.execute(
                f"SELECT {cols} FROM {table} WHERE {keycol} = ? AND start_utc >= ? AND start_utc < ? "
                f"ORDER BY version",
                (k, lo, hi),
            ):
                if table == "reading":
                    *key, version, value, issued = row
                    out[tuple(key)] = (version, value, issued)
                else:
                    *key, version, value = row
                    out[tuple(key)] = (version, value)
        return out

    def add_readings(
        self, readings: Iterable[MeterReading], source: str, issued: str = ""
    ) -> StoreResult:
        """``issued``: version / issue date of the file (ISO, '' = undated). An older issue never
        overwrites a newer one (ignored, audited); an undated file never overwrites a dated
        reading; between equal issues (or undated) the later ingest is a correction."""
        rs = list(readings)
        if not rs:
            return StoreResult(0, 0, 0, frozenset(), frozenset())
        lo, hi = min(r.start_utc for r in rs), max(r.start_utc for r in rs) + 1
        latest = self._latest_raw(
            "reading", "pod", "wh", {r.pod for r in rs}, lo, hi, extra="direction"
        )
        b = _Batch(_now())
        for r in rs:
            key = (r.pod, r.direction, r.start_utc, r.duration_s)
            prev = latest.get(key)
            if prev is not None and prev[1] == r.wh:
                b.same += 1
                continue
            subject = f"{r.pod} {r.direction} {local_label(r.start_utc)}"
            if prev is not None and prev[2] and issued < prev[2]:
                b.older += 1
                b.audit.append(
                    (
                        b.now,
                        "older_version_ignored",
                        subject,
                        f"{r.wh} Wh issued {issued or 'undated'} from {source} is older than the "
                        f"stored {prev[1]} Wh issued {prev[2]}",
                    )
                )
                continue
            version = prev[0] + 1 if prev else 1
            latest[key] = (version, r.wh, issued)
            correction = None
            if prev is not None:
                detail = (
                    f"{prev[1]} Wh -> {r.wh} Wh (version {version}, issued "
                    f"{issued or 'undated'}, from {source})"
                )
                correction = ("reading_corrected", subject, detail)
            b.store((*key, version, r.wh, source, b.now, issued), correction, r.start_utc, r.pod)
        b.write(
            self.db,
            "INSERT INTO reading (pod, direction, start_utc, duration_s, version, wh, source, "
            "recorded_at, issued) VALUES (?,?,?,?,?,?,?,?,?)",
            source,
            f"{b.new} new and {b.corr} corrected meter readings, {b.older} older ignored",
        )
        return b.result()

    def file_ingested(self, sha256: str) -> tuple[str, str] | None:
        """(name, recorded_at) of an already ingested file with this content hash, or None."""
        row = self.db.execute(
            "SELECT name, recorded_at FROM ingested_file WHERE sha256 = ?", (sha256,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def record_file(self, sha256: str, name: str, issued: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO ingested_file VALUES (?,?,?,?)",
                (sha256, name, issued, _now()),
            )

    def readings(self, pods: Sequence[str], start_utc: int, end_utc: int) -> list[MeterReading]:
        latest = self._latest_raw(
            "reading", "pod", "wh", set(pods), start_utc, end_utc, extra="direction"
        )
        return [
            MeterReading(pod, d, s, dur, int(v[1]))
            for (pod, d, s, dur), v in sorted(latest.items())
        ]

    def reading_hours(self, pods: Sequence[str], start_utc: int, end_utc: int) -> set[int]:
        out: set[int] = set()
        for pod in pods:
            for (s,) in self.db.execute(
                "SELECT DISTINCT start_utc - (start_utc % 3600) FROM reading WHERE pod = ? AND "
                "start_utc >= ? AND start_utc < ?",
                (pod, start_utc, end_utc),
            ):
                out.add(int(s))
        return out

    def add_prices(self, prices: Iterable[PricePoint], source: str) -> StoreResult:
        ps = list(prices)
        if not ps:
            return StoreResult(0, 0, 0, frozenset(), frozenset())
        lo, hi = min(p.start_utc for p in ps), max(p.start_utc for p in ps) + 1
        latest = self._latest_raw(
            "price", "zone", "price_eur_per_mwh", {p.zone for p in ps}, lo, hi
        )
        b = _Batch(_now())
        for p in ps:
            prev = latest.get((p.zone, p.start_utc, p.duration_s))
            if prev is not None and Decimal(str(prev[1])) == p.price_eur_per_mwh:
                b.same += 1
                continue
            version = prev[0] + 1 if prev else 1
            latest[(p.zone, p.start_utc, p.duration_s)] = (version, str(p.price_eur_per_mwh))
            correction = None
            if prev is not None:
                detail = (
                    f"{prev[1]} -> {p.price_eur_per_mwh} EUR/MWh (version {version}, from {source})"
                )
                correction = ("price_corrected", f"{p.zone} {local_label(p.start_utc)}", detail)
            row = (p.zone, p.start_utc, p.duration_s, version, str(p.price_eur_per_mwh), source)
            b.store((*row, b.now), correction, p.start_utc, p.zone)
        b.write(
            self.db,
            "INSERT INTO price VALUES (?,?,?,?,?,?,?)",
            source,
            f"{b.new} new and {b.corr} corrected prices",
        )
        return b.result()

    def prices(self, zones: Sequence[str], start_utc: int, end_utc: int) -> list[PricePoint]:
        latest = self._latest_raw(
            "price", "zone", "price_eur_per_mwh", set(zones), start_utc, end_utc
        )
        return [
            PricePoint(z, s, d, Decimal(str(v))) for (z, s, d), (_, v) in sorted(latest.items())
        ]

    # ------------------------------------------------------------------ ledger
    def latest_hashes(
        self, config_id: str, start_utc: int, end_utc: int
    ) -> dict[int, tuple[int, str]]:
        out: dict[int, tuple[int, str]] = {}
        for h, v, digest in self.db.execute(
            "SELECT hour_utc, version, content_hash FROM ledger_config_hour WHERE config_id = ? AND "
            "hour_utc >= ? AND hour_utc < ? ORDER BY version",
            (config_id, start_utc, end_utc),
        ):
            out[h] = (v, digest)
        return out

    def append_hours(self, records: Sequence[ConfigHour], reason: str) -> None:
        now = _now()
        with self.db:
            for r in records:
                self.db.execute(
                    "INSERT INTO ledger_config_hour VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.config_id,
                        r.hour_utc,
                        r.version,
                        r.injected_wh,
                        r.withdrawn_wh,
                        r.shared_wh,
                        str(r.tip_eur),
                        str(r.valorisation_eur),
                        str(r.sale_eur),
                        int(r.complete),
                        json.dumps(list(r.missing)),
                        json.dumps(
                            [
                                [c.cabina, c.injected_wh, c.withdrawn_wh, c.shared_wh]
                                for c in r.cabine
                            ]
                        ),
                        r.config_fingerprint,
                        r.content_hash(),
                        reason,
                        now,
                    ),
                )
                self.db.executemany(
                    "INSERT INTO ledger_plant_hour VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            r.config_id,
                            r.hour_utc,
                            r.version,
                            p.plant_id,
                            p.injected_wh,
                            p.shared_wh,
                            int(p.tip_eligible),
                            None if p.price_eur_per_mwh is None else str(p.price_eur_per_mwh),
                            None if p.tip_rate_eur_per_mwh is None else str(p.tip_rate_eur_per_mwh),
                            str(p.tip_eur),
                            str(p.valorisation_eur),
                            str(p.sale_eur),
                        )
                        for p in r.plants
                    ],
                )
                self.db.executemany(
                    "INSERT INTO ledger_member_hour VALUES (?,?,?,?,?,?)",
                    [
                        (
                            r.config_id,
                            r.hour_utc,
                            r.version,
                            m.member_id,
                            m.withdrawn_wh,
                            str(m.shared_share_wh),
                        )
                        for m in r.members
                    ],
                )
                if r.version > 1:
                    self.db.execute(
                        "INSERT INTO audit (recorded_at, action, subject, detail) VALUES (?,?,?,?)",
                        (
                            now,
                            "ledger_version",
                            f"{r.config_id} {local_label(r.hour_utc)}",
                            f"version {r.version}: {reason}",
                        ),
                    )

    def _load(self, config_id: str, keys: list[tuple[int, int]]) -> list[ConfigHour]:
        out = []
        for h, v in keys:
            row = self.db.execute(
                "SELECT injected_wh, withdrawn_wh, shared_wh, tip_eur, valorisation_eur, sale_eur, "
                "complete, missing, cabine, config_fingerprint FROM ledger_config_hour WHERE "
                "config_id = ? AND hour_utc = ? AND version = ?",
                (config_id, h, v),
            ).fetchone()
            plants = tuple(
                PlantHour(
                    pid,
                    inj,
                    sh,
                    bool(el),
                    _dec(pz),
                    _dec(rate),
                    Decimal(tip),
                    Decimal(val),
                    Decimal(sale),
                )
                for pid, inj, sh, el, pz, rate, tip, val, sale in self.db.execute(
                    "SELECT plant_id, injected_wh, shared_wh, tip_eligible, price_eur_per_mwh, "
                    "tip_rate_eur_per_mwh, tip_eur, valorisation_eur, sale_eur FROM ledger_plant_hour "
                    "WHERE config_id = ? AND hour_utc = ? AND version = ? ORDER BY rowid",
                    (config_id, h, v),
                )
            )
            members = tuple(
                MemberHour(mid, wd, Decimal(share))
                for mid, wd, share in self.db.execute(
                    "SELECT member_id, withdrawn_wh, shared_share_wh FROM ledger_member_hour WHERE "
                    "config_id = ? AND hour_utc = ? AND version = ? ORDER BY rowid",
                    (config_id, h, v),
                )
            )
            out.append(
                ConfigHour(
                    config_id,
                    h,
                    row[0],
                    row[1],
                    row[2],
                    Decimal(row[3]),
                    Decimal(row[4]),
                    Decimal(row[5]),
                    bool(row[6]),
                    tuple(json.loads(row[7])),
                    tuple(CabinaHour(*c) for c in json.loads(row[8])),
                    plants,
                    members,
                    row[9],
                    version=v,
                )
            )
        return out

    def latest_hours(self, config_id: str, start_utc: int, end_utc: int) -> list[ConfigHour]:
        latest = self.latest_hashes(config_id, start_utc, end_utc)
        return self._load(config_id, [(h, latest[h][0]) for h in sorted(latest)])

    def versions(self, config_id: str, hour_utc: int) -> list[ConfigHour]:
        vs = [
            v
            for (v,) in self.db.execute(
                "SELECT version FROM ledger_config_hour WHERE config_id = ? AND hour_utc = ? "
                "ORDER BY version",
                (config_id, hour_utc),
            )
        ]
        return self._load(config_id, [(hour_utc, v) for v in vs])

    def audit(self, since_seq: int = 0) -> list[AuditEntry]:
        return [
            AuditEntry(*row)
            for row in self.db.execute(
                "SELECT seq, recorded_at, action, subject, detail FROM audit WHERE seq > ? "
                "ORDER BY seq",
                (since_seq,),
            )
        ]

    def record_audit(self, action: str, subject: str, detail: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO audit (recorded_at, action, subject, detail) VALUES (?,?,?,?)",
                (_now(), action, subject, detail),
            )

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every ledger row without timestamps (for tests: replay must not change it)."""
        return {
            "config": list(
                self.db.execute(
                    "SELECT config_id, hour_utc, version, content_hash FROM ledger_config_hour "
                    "ORDER BY 1, 2, 3"
                )
            ),
            "plant": list(self.db.execute("SELECT * FROM ledger_plant_hour ORDER BY 1, 2, 3, 4")),
            "member": list(self.db.execute("SELECT * FROM ledger_member_hour ORDER BY 1, 2, 3, 4")),
            "reading": list(
                self.db.execute(
                    "SELECT pod, direction, start_utc, duration_s, version, wh FROM reading "
                    "ORDER BY 1, 2, 3, 4, 5"
                )
            ),
        }


__all__ = ["SqliteLedgerStore"]
