"""The append-only ledger: replay, corrections with audit trail, gaps in a month, statements."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from ems.accounting import service
from ems.accounting.readings import parse_csv
from ems.accounting.statement import render_markdown
from ems.accounting.timeutil import ROME, hours_between
from tests.accounting.acct_helpers import make_cfg, member, meter_csv, plant, pod

CFG = make_cfg([plant("A", 1, 100)], [member("h", 2), member("c", 3, kind="company")])
ROLES = service.pod_roles(CFG)


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, ROME).isoformat()


def _month_files(skip_member_hours: set[int] = frozenset()) -> list:
    """June 2024, hourly: plant 10 kWh 08–17 local, member h 3 kWh and c 2 kWh every hour; NORD 100."""
    hours = hours_between(date(2024, 6, 1), date(2024, 7, 1))
    rows = []
    for t in hours:
        local_h = datetime.fromtimestamp(t, ROME).hour
        rows.append((pod(1), "injected", _iso(t), "10" if 8 <= local_h < 18 else "0"))
        if t not in skip_member_hours:
            rows.append((pod(2), "withdrawn", _iso(t), "3"))
        rows.append((pod(3), "withdrawn", _iso(t), "2"))
    prices = "timestamp,zone,price_eur_per_mwh\n" + "".join(f"{_iso(t)},NORD,100\n" for t in hours)
    return [parse_csv(meter_csv(rows), "june.csv", ROLES), parse_csv(prices, "pz.csv")]


def _june(s):
    start, end, label, annual = service.period_days(month="2024-06")
    [st] = service.statements(s, CFG, start, end, label, annual)
    return st


def test_full_month_statement(store) -> None:
    s = store()
    service.ingest(s, CFG, _month_files())
    st = _june(s)
    assert st.hours_expected == st.hours_complete == 720
    # 30 days × 10 sunny hours × min(10, 5) = 1500 kWh shared
    assert (
        st.shared_wh == 1_500_000 and st.injected_wh == 3_000_000 and st.withdrawn_wh == 3_600_000
    )
    # TIP 1.5 MWh × 130 = 195.00 €; valorisation 1.5 × 11.22 = 16.83 €; sale 3 MWh × 100 = 300.00 €
    assert (st.tip_eur, st.valorisation_eur, st.sale_eur) == (
        Decimal("195.00"),
        Decimal("16.83"),
        Decimal("300.00"),
    )
    assert st.missing == [] and st.corrected_hours == 0
    # ratio 50 % < 55 %: no surplus; allocation by shared share 3:2 of 211.83 € → 127.098 / 84.732
    assert {m.member_id: m.allocation_eur for m in st.members} == {
        "h": Decimal("127.10"),
        "c": Decimal("84.73"),
    }
    assert sum(m.allocation_eur for m in st.members) == st.incentive_eur


def test_replay_is_idempotent(store) -> None:
    s = store()
    first = service.ingest(s, CFG, _month_files())
    snap = s.snapshot()
    audit_len = len(s.audit())
    again = service.ingest(s, CFG, _month_files())
    assert first.ledger_versions == 720 and again.ledger_versions == 0
    assert again.new == 0 and again.corrected == 0 and again.unchanged == first.new
    assert s.snapshot() == snap and len(s.audit()) == audit_len


def test_gap_in_one_meter_is_flagged_not_zero_filled(store) -> None:
    d = datetime(2024, 6, 10, 9, tzinfo=ROME)
    gap = {
        int((d + timedelta(hours=i)).timestamp()) for i in range(3)
    }  # 09:00–11:59 local, sunny hours
    s = store()
    service.ingest(s, CFG, _month_files(skip_member_hours=gap))
    st = _june(s)
    assert st.hours_complete == 717
    # 3 sunny hours out of the totals: 1500 − 3 × 5 = 1485 kWh
    assert st.shared_wh == 1_485_000
    # measured in those hours from the meters that did report (c: 2 kWh): a lower bound, shown apart
    assert st.incomplete_shared_wh_lower_bound == 6_000
    [rng] = st.missing
    assert rng.subject.startswith(pod(2)) and rng.hours == 3
    assert rng.first_hour == "2024-06-10T09:00+02:00" and rng.last_hour == "2024-06-10T11:00+02:00"
    md = render_markdown("Test", [st], {})
    assert "Incomplete data" in md and "3 of 720 hours lack" in md and "717 / 720" in md
    assert pod(2) in md.split("### Missing data")[1]


def test_month_without_any_data_lists_every_expected_meter(store) -> None:
    st = _june(store())
    assert st.hours_complete == 0 and st.shared_wh == 0
    assert {r.hours for r in st.missing} == {720} and len(st.missing) == 3


def test_late_correction_makes_a_new_version_with_audit_trail(store) -> None:
    s = store()
    service.ingest(s, CFG, _month_files())
    t = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    fix = parse_csv(meter_csv([(pod(2), "withdrawn", _iso(t), "8")]), "late.csv", ROLES)
    summary = service.ingest(s, CFG, [fix])
    assert summary.corrected == 1 and summary.ledger_versions == 1
    v1, v2 = s.versions("cer1", t)
    assert (v1.version, v2.version) == (1, 2)
    assert v1.shared_wh == 5_000 and v2.shared_wh == 10_000  # old figures are kept
    actions = [(a.action, a.subject) for a in s.audit()]
    assert any(a == "reading_corrected" and pod(2) in subj for a, subj in actions)
    assert any(a == "ledger_version" and "cer1" in subj for a, subj in actions)
    st = _june(s)
    assert st.corrected_hours == 1 and st.shared_wh == 1_505_000
    # the same correction again changes nothing
    assert service.ingest(s, CFG, [fix]).ledger_versions == 0


def test_late_price_updates_the_hours_it_touches(store) -> None:
    s = store()
    service.ingest(s, CFG, _month_files())
    t = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    res = parse_csv(f"timestamp,zone,price_eur_per_mwh\n{_iso(t)},NORD,200\n", "pz-fix.csv")
    assert service.ingest(s, CFG, [res]).ledger_versions == 1
    [row] = [r for r in s.latest_hours("cer1", t, t + 3600)]
    # Pz 200: min(120, 80 + 0) + 10 = 90 €/MWh × 5 kWh = 0.45 €
    assert row.tip_eur == Decimal("0.45") and row.version == 2


def test_store_is_append_only(store) -> None:
    s = store()
    service.ingest(s, CFG, _month_files())
    for sql in (
        "UPDATE ledger_config_hour SET shared_wh = 0",
        "DELETE FROM reading",
        "DELETE FROM audit",
        "UPDATE ledger_member_hour SET withdrawn_wh = 1",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            s.db.execute(sql)


def test_configuration_change_is_detected_and_recompute_versions_it(store) -> None:
    s = store()
    service.ingest(s, CFG, _month_files())
    granted = make_cfg(
        [plant("A", 1, 100, grant=40)], [member("h", 2), member("c", 3, kind="company")]
    )
    start, end, label, annual = service.period_days(month="2024-06")
    [st] = service.statements(s, granted, start, end, label, annual)
    assert st.stale_hours == 720
    # the configuration fingerprint is part of each row: every hour gets a version naming it
    assert service.recompute(s, granted, start, end, "grant added") == 720
    [st] = service.statements(s, granted, start, end, label, annual)
    # F = 0.5 except on the household's 3/5 of the withdrawal (natural persons are exempt, DM
    # 127/2025): 195.00 × (1 − 0.5 × 2/5) = 156.00
    assert st.tip_eur == Decimal("156.00")
    assert st.stale_hours == 0
    assert service.recompute(s, granted, start, end, "again") == 0


def test_sqlite_store_implements_the_port() -> None:
    from adapters.ledger_sqlite import SqliteLedgerStore
    from ems.ports.ledger import LedgerStore

    s = SqliteLedgerStore(":memory:")
    assert isinstance(s, LedgerStore)
    s.close()


def test_two_configurations_and_a_prosumer_are_kept_apart(store) -> None:
    from ems.accounting.config import parse_accounting_config

    cfg = parse_accounting_config(
        {
            "community": "X",
            "configurations": [
                {"id": "north", "plants": [plant("A", 1, 100)], "members": [member("m1", 2)]},
                # prosumer: the same POD 3 is plant B and member m3 (needs the direction column)
                {
                    "id": "south",
                    "plants": [plant("B", 3, 50, region="Puglia")],
                    "members": [member("m3", 3), member("m4", 4)],
                },
            ],
        },
        "x.yaml",
    )
    t = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    ts = _iso(t)
    meter = meter_csv(
        [
            (pod(1), "injected", ts, "10"),
            (pod(2), "withdrawn", ts, "4"),
            (pod(3), "injected", ts, "6"),
            (pod(3), "withdrawn", ts, "1"),
            (pod(4), "withdrawn", ts, "2"),
        ]
    )
    prices = f"timestamp,NORD,SUD\n{ts},100,50\n"
    roles = service.pod_roles(cfg)
    s = store()
    service.ingest(s, cfg, [parse_csv(meter, "m.csv", roles), parse_csv(prices, "p.csv")])
    [north] = s.latest_hours("north", t, t + 3600)
    [south] = s.latest_hours("south", t, t + 3600)
    assert (north.shared_wh, south.shared_wh) == (4_000, 3_000)  # min(10, 4); min(6, 1 + 2)
    # north: 130 €/MWh × 4 kWh = 0.52 €;
    # south (Puglia, no FC, Pz 50): min(120, 80 + 130) = 120 × 3 kWh = 0.36 €
    assert (north.tip_eur, south.tip_eur) == (Decimal("0.52"), Decimal("0.36"))
    assert south.sale_eur == Decimal("0.3")  # 6 kWh × 50 €/MWh
