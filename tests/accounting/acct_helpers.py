"""Helpers for the accounting tests: small configurations, hours, CSV text.

(A uniquely named module, so it never clashes with another directory's ``conftest``.)"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.accounting_io import load_year_parameters
from ems.accounting.config import AccountingConfig, parse_accounting_config
from ems.accounting.ledger import ConfigHour, compute_hours
from ems.accounting.readings import INJECTED, WITHDRAWN
from ems.accounting.timeutil import ROME

# A Wednesday (not a holiday) in June 2024, 12:00 local = 10:00 UTC.
NOON = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())


def pod(n: int) -> str:
    return f"IT001E{n:08d}"


def plant(
    pid: str,
    n: int,
    kw: Any,
    entry: str = "2024-01-01",
    region: str = "Liguria",
    cp: str = "CP1",
    grant: Any = 0,
    technology: str = "pv",
    owner: str | None = None,
) -> dict:
    d = {
        "id": pid,
        "pod": pod(n),
        "power_kw": str(kw),
        "entry_into_service": entry,
        "region": region,
        "cabina_primaria": cp,
        "capital_grant_pct": str(grant),
        "technology": technology,
    }
    if owner:
        d["owner"] = owner
    return d


def member(mid: str, n: int, kind: str = "household", cp: str = "CP1") -> dict:
    return {"id": mid, "pod": pod(n), "kind": kind, "cabina_primaria": cp}


def make_cfg(
    plants: list[dict],
    members: list[dict],
    statute: dict | None = None,
    valorisation: dict | None = None,
) -> AccountingConfig:
    c: dict = {"id": "cer1", "plants": plants, "members": members}
    if statute:
        c["statute"] = statute
    data: dict = {"community": "Test CER", "configurations": [c]}
    if valorisation:
        data["valorisation"] = valorisation
    return parse_accounting_config(data, "test.yaml", load_year_parameters())


def one_hour(
    cfg: AccountingConfig,
    inj_kwh: dict[int, Any],
    wd_kwh: dict[int, Any],
    pz: Any = 110,
    hour: int = NOON,
    zone: str = "NORD",
) -> ConfigHour:
    """Ledger row of one hour: ``inj_kwh`` / ``wd_kwh`` map POD number → kWh."""
    energy = {(pod(n), INJECTED, hour): int(Decimal(str(v)) * 1000) for n, v in inj_kwh.items()}
    energy |= {(pod(n), WITHDRAWN, hour): int(Decimal(str(v)) * 1000) for n, v in wd_kwh.items()}
    zones = {p.market_zone for c in cfg.configurations for p in c.plants}
    prices = {(z, hour): Decimal(str(pz)) for z in zones}
    [row] = compute_hours(
        cfg.configurations[0], [hour], energy, {}, prices, cfg.valorisation_params
    )
    return row


def meter_csv(rows: list[tuple[str, str, str, str]]) -> str:
    """rows of (pod, direction, ISO timestamp, kWh) → a meter CSV."""
    return "pod,direction,timestamp,kwh\n" + "".join(f"{p},{d},{t},{k}\n" for p, d, t, k in rows)
