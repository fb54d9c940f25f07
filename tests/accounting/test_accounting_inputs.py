"""Meter and price CSV layouts, DST days, bad rows (clear error, good rows kept)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from ems.accounting import service
from ems.accounting.readings import INJECTED, WITHDRAWN, hourly_energy, hourly_prices, parse_csv
from ems.accounting.timeutil import ROME, day_hours, local_midnight_utc, time_band
from tests.accounting.acct_helpers import make_cfg, member, meter_csv, plant, pod

ROLES = {pod(1): frozenset({INJECTED}), pod(2): frozenset({WITHDRAWN})}


def _quarters(day: date) -> list[int]:
    start = local_midnight_utc(day)
    end = local_midnight_utc(date.fromordinal(day.toordinal() + 1))
    return list(range(start, end, 900))


def _dst_day_csvs(day: date) -> tuple[str, str]:
    """15-min meter data with explicit offsets (plant 1 kWh, member 0.5 kWh per quarter) and hourly
    NORD prices in the date + hour-index layout."""
    rows = []
    for t in _quarters(day):
        ts = datetime.fromtimestamp(t, ROME).isoformat()
        rows += [(pod(1), "injected", ts, "1.000"), (pod(2), "withdrawn", ts, "0.500")]
    n_hours = len(_quarters(day)) // 4
    prices = "date,hour,NORD\n" + "".join(
        f"{day.isoformat()},{h},100\n" for h in range(1, n_hours + 1)
    )
    return meter_csv(rows), prices


@pytest.mark.parametrize("day, hours", [(date(2024, 3, 31), 23), (date(2024, 10, 27), 25)])
def test_dst_days_have_23_and_25_hours(store, day: date, hours: int) -> None:
    cfg = make_cfg([plant("A", 1, 100)], [member("m", 2)])
    meter, prices = _dst_day_csvs(day)
    parsed = [parse_csv(meter, "m.csv", ROLES), parse_csv(prices, "p.csv")]
    assert not parsed[0].errors and not parsed[1].errors
    assert len(parsed[1].prices) == hours
    s = store()
    service.ingest(s, cfg, parsed)
    start, end, label, annual = service.period_days(month=f"{day:%Y-%m}")
    [st] = service.statements(s, cfg, start, end, label, annual)
    [d] = [d for d in st.daily if d.day == day]
    assert d.hours == hours and d.complete_hours == hours
    # each hour: inject 4 kWh, withdraw 2 kWh → shared 2 kWh
    assert d.shared_wh == 2_000 * hours
    # TIP: 100 €/MWh → min(120, 80 + 80) + 10 = 130 €/MWh × 2 kWh × hours
    assert d.tip_eur_exact == Decimal("0.26") * hours
    assert len(day_hours(day)) == hours


def test_october_repeated_hour_is_two_distinct_hours() -> None:
    text = meter_csv(
        [
            (pod(2), "withdrawn", "2024-10-27T02:00:00+02:00", "1"),
            (pod(2), "withdrawn", "2024-10-27T02:00:00+01:00", "2"),
        ]
    )
    res = parse_csv(text, "m.csv")
    assert not res.errors
    energy, _ = hourly_energy(res.readings)
    assert sorted(energy.values()) == [1000, 2000] and len(energy) == 2


@pytest.mark.parametrize(
    "ts, problem",
    [
        ("2024-10-27 02:00", "ambiguous"),
        ("2024-03-31 02:15", "does not exist"),
        ("2024-06-12 12:07", "quarter hour"),
        ("12 June", "not an ISO 8601"),
    ],
)
def test_naive_local_times_at_dst_are_refused(ts: str, problem: str) -> None:
    res = parse_csv(meter_csv([(pod(2), "withdrawn", ts, "1")]), "m.csv")
    assert not res.readings and len(res.errors) == 1
    assert res.errors[0].line == 2 and problem in res.errors[0].problem


def test_italian_semicolon_layout_with_decimal_comma_and_hour_index() -> None:
    text = (
        "POD;Data;Ora;Energia kWh;Verso\nIT001E00000002;12/06/2024;13;1,234;prelevata\n"
        "IT001E00000001;12/06/2024;13;2,5;immessa\n"
    )
    res = parse_csv(text, "e-distribuzione.csv")
    assert not res.errors
    noon = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())  # hour 13 = 12:00–13:00
    assert {(r.pod, r.direction, r.start_utc, r.duration_s, r.wh) for r in res.readings} == {
        (pod(2), WITHDRAWN, noon, 3600, 1234),
        (pod(1), INJECTED, noon, 3600, 2500),
    }


def test_direction_from_configuration_and_interval_inference() -> None:
    text = (
        "pod,timestamp,kwh\n"
        + "".join(f"{pod(1)},2024-06-12T12:{m:02d}:00+02:00,0.25\n" for m in (0, 15, 30, 45))
        + f"{pod(2)},2024-06-12T12:00:00+02:00,3\n"
    )
    res = parse_csv(text, "m.csv", ROLES)
    assert not res.errors
    durations = {(r.pod, r.direction): r.duration_s for r in res.readings}
    assert durations == {(pod(1), INJECTED): 900, (pod(2), WITHDRAWN): 3600}
    energy, partial = hourly_energy(res.readings)
    assert sorted(energy.values()) == [1000, 3000] and not partial
    # A POD that is both a plant and a member needs the direction column.
    both = {pod(1): frozenset({INJECTED, WITHDRAWN})}
    res = parse_csv(
        "pod,timestamp,kwh\n" + f"{pod(1)},2024-06-12T12:00:00+02:00,1\n", "m.csv", both
    )
    assert "direction column is required" in res.errors[0].problem


def test_partial_hour_is_incomplete_not_zero_filled() -> None:
    text = meter_csv(
        [(pod(1), "injected", f"2024-06-12T12:{m:02d}:00+02:00", "1") for m in (0, 15, 30)]
    )
    energy, partial = hourly_energy(parse_csv(text, "m.csv").readings)
    assert not energy and list(partial.values()) == ["3 of 4 quarter-hours"]


def test_fifteen_minute_prices_become_the_hourly_mean() -> None:
    text = "timestamp,zone,price_eur_per_mwh\n" + "".join(
        f"2024-06-12T12:{m:02d}:00+02:00,NORD,{p}\n"
        for m, p in ((0, 100), (15, 110), (30, 120), (45, 131))
    )
    text += (
        "2024-06-12T13:00:00+02:00,NORD,90\n2024-06-12T13:15:00+02:00,NORD,90\n"  # incomplete hour
    )
    res = parse_csv(text, "pz.csv")
    assert res.kind == "price" and not res.errors
    prices = hourly_prices(res.prices)
    noon = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    assert prices == {("NORD", noon): Decimal("115.25")}


def test_bad_rows_are_reported_with_file_and_line_and_good_rows_kept(store) -> None:
    text = (
        "pod,direction,timestamp,kwh\n"
        f"{pod(1)},injected,2024-06-12T12:00:00+02:00,4\n"  # 2 good
        f"{pod(1)},injected,2024-06-12T13:00:00+02:00,abc\n"  # 3 not a number
        f"{pod(2)},sideways,2024-06-12T12:00:00+02:00,1\n"  # 4 bad direction
        f"{pod(2)},withdrawn,2024-06-12T12:00:00+02:00,-1\n"  # 5 negative
        f"{pod(2)},withdrawn,2024-06-12T12:00:00+02:00\n"  # 6 missing field
        f"{pod(2)},withdrawn,2024-06-12T12:00:00+02:00,2\n"  # 7 conflicting duplicates:
        f"{pod(2)},withdrawn,2024-06-12T12:00:00+02:00,3\n"  # 8 both rejected
        f"{pod(2)},withdrawn,2024-06-12T13:00:00+02:00,2\n"  # 9 good
        f"{pod(2)},withdrawn,2024-06-12T13:00:00+02:00,2\n"  # 10 same value again: kept once
    )
    res = parse_csv(text, "meter-june.csv", ROLES)
    assert [(e.file, e.line) for e in res.errors] == [
        ("meter-june.csv", n) for n in (3, 4, 5, 6, 7, 8)
    ]
    assert "line 8 with a different value: both rejected" in str(res.errors[4])
    assert "not a number" in str(res.errors[0]) and str(res.errors[0]).startswith(
        "meter-june.csv:3: "
    )
    assert {(r.pod, r.wh) for r in res.readings} == {(pod(1), 4000), (pod(2), 2000)}
    cfg = make_cfg([plant("A", 1, 100)], [member("m", 2)])
    s = store()
    summary = service.ingest(s, cfg, [res])
    assert summary.new == 2 and len(summary.errors) == 6
    assert {r.wh for r in s.readings([pod(1), pod(2)], 0, 2**40)} == {4000, 2000}


def test_unrecognised_header() -> None:
    res = parse_csv("a,b\n1,2\n", "x.csv")
    assert res.errors[0].line == 1 and "neither a meter file" in res.errors[0].problem


def test_time_bands() -> None:
    def h(y, mo, d, hh):
        return int(datetime(y, mo, d, hh, tzinfo=ROME).timestamp())

    assert time_band(h(2024, 6, 12, 12)) == "F1"  # Wednesday noon
    assert time_band(h(2024, 6, 12, 7)) == "F2"
    assert time_band(h(2024, 6, 12, 22)) == "F2"
    assert time_band(h(2024, 6, 12, 23)) == "F3"
    assert time_band(h(2024, 6, 15, 12)) == "F2"  # Saturday
    assert time_band(h(2024, 6, 16, 12)) == "F3"  # Sunday
    assert time_band(h(2024, 8, 15, 12)) == "F3"  # Ferragosto (Thursday)


def test_readings_from_telemetry_counters() -> None:
    from ems.accounting.readings import readings_from_counters

    t0 = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    # counter samples (kWh): exactly on 12:00, 60 s after 12:15 (interpolated), on 12:30; a 20-min hole
    # around 12:45 (no boundary value), then 13:00 and 13:15 after a reset (counter goes down).
    samples = [
        (t0, Decimal("100.0")),
        (t0 + 840, Decimal("101.4")),
        (t0 + 960, Decimal("101.6")),
        (t0 + 1800, Decimal("103.0")),
        (t0 + 3600, Decimal("106.0")),
        (t0 + 4500, Decimal("1.0")),
    ]
    rs = readings_from_counters(pod(1), INJECTED, samples)
    assert [(r.start_utc - t0, r.wh) for r in rs] == [(0, 1500), (900, 1500)]
    assert all(r.duration_s == 900 for r in rs)


def test_wide_daily_layout_with_dst_days() -> None:
    # 27 Oct 2024 has 25 hours: h25 = 23:00–24:00 local; 31 Mar has 23, so h24 must stay empty.
    hdr = "POD;Data;Verso;" + ";".join(f"H{i:02d}" for i in range(1, 26)) + "\n"
    oct_ = f"{pod(2)};27/10/2024;prelevata;" + ";".join("1,5" for _ in range(25)) + "\n"
    mar = f"{pod(2)};31/03/2024;prelevata;" + ";".join(["2"] * 23 + ["", ""]) + "\n"
    bad = f"{pod(2)};31/03/2024;prelevata;" + ";".join(["2"] * 22 + ["x", "3", ""]) + "\n"
    res = parse_csv(hdr + oct_ + mar + bad.replace("31/03", "30/03"), "wide.csv")
    assert (
        len([r for r in res.readings if r.start_utc >= local_midnight_utc(date(2024, 10, 27))])
        == 25
    )
    last = max(res.readings, key=lambda r: r.start_utc)
    assert datetime.fromtimestamp(last.start_utc, ROME).isoformat() == "2024-10-27T23:00:00+01:00"
    # 30 March has 24 hours: H23 'x' is bad, H24 fine; the other 22 cells of that row are kept
    assert [(e.line, e.problem.split(":")[0]) for e in res.errors] == [(4, "column 'H23'")]
    assert (
        len(
            [
                r
                for r in res.readings
                if date(2024, 3, 30) == datetime.fromtimestamp(r.start_utc, ROME).date()
            ]
        )
        == 23
    )
    # a value in H24 on the 23-hour day is refused
    res = parse_csv(
        hdr + f"{pod(2)};31/03/2024;prelevata;" + ";".join(["2"] * 24 + [""]) + "\n", "w.csv"
    )
    assert len(res.readings) == 23 and "must be empty" in res.errors[0].problem


def test_date_plus_clock_time_layout() -> None:
    text = (
        "Data;Ora;POD;kWh;Verso\n"
        "12/06/2024;12:00;IT001E00000002;0,25;prelevata\n12/06/2024;12:15;IT001E00000002;0,25;prelevata\n"
        "12/06/2024;12:30;IT001E00000002;0,25;prelevata\n12/06/2024;12:45;IT001E00000002;0,25;prelevata\n"
        "27/10/2024;02:00;IT001E00000002;0,25;prelevata\n"
    )
    res = parse_csv(text, "clock.csv")
    noon = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    assert sorted((r.start_utc - noon, r.duration_s) for r in res.readings) == [
        (0, 900),
        (900, 900),
        (1800, 900),
        (2700, 900),
    ]
    [err] = res.errors
    assert err.line == 6 and "ambiguous" in err.problem


def _clock_labels(ends: bool) -> list[str]:
    minutes = range(15, 24 * 60 + 1, 15) if ends else range(0, 24 * 60, 15)
    return [f"{m // 60:02d}:{m % 60:02d}" for m in minutes]


@pytest.mark.parametrize("layout", ["ends", "starts", "ranges"])
def test_wide_layout_named_by_clock_time(layout: str) -> None:
    # A distributor's quarter-hour curve, one row per POD and day, 96 clock-labelled columns.
    if layout == "ranges":
        labels = [
            f"{a}-{b}" for a, b in zip(_clock_labels(False), _clock_labels(True), strict=True)
        ]
    else:
        labels = _clock_labels(layout == "ends")
    hdr = "POD;Data;Verso;" + ";".join(labels) + "\n"
    cells = [f"{i % 4},{i:03d}" for i in range(96)]  # quarter i: (i mod 4).i kWh
    res = parse_csv(hdr + f"{pod(2)};12/06/2024;prelevata;" + ";".join(cells) + "\n", "c.csv")
    assert res.errors == [] and len(res.readings) == 96
    first = min(res.readings, key=lambda r: r.start_utc)
    assert first.start_utc == local_midnight_utc(date(2024, 6, 12)) and first.wh == 0
    noon = int(datetime(2024, 6, 12, 12, tzinfo=ROME).timestamp())
    # 12:00–12:15 is quarter 48: 0.048 kWh → 48 Wh
    assert {r.start_utc: r.wh for r in res.readings}[noon] == 48
    assert all(r.duration_s == 900 for r in res.readings)


def test_clock_layout_on_dst_days_refuses_what_it_cannot_place() -> None:
    hdr = "POD;Data;Verso;" + ";".join(_clock_labels(True)) + "\n"
    # 31 March 2024: 02:00–03:00 does not exist; those 4 cells given → 4 errors, 92 readings kept
    row = f"{pod(2)};31/03/2024;prelevata;" + ";".join(["1"] * 96) + "\n"
    res = parse_csv(hdr + row, "mar.csv")
    assert len(res.readings) == 92 and len(res.errors) == 4
    assert all("does not exist" in e.problem for e in res.errors)
    # 31 March with those cells empty: 92 quarters, no error
    cells = ["" if 8 <= i < 12 else "1" for i in range(96)]
    res = parse_csv(hdr + f"{pod(2)};31/03/2024;prelevata;" + ";".join(cells) + "\n", "m2.csv")
    assert len(res.readings) == 92 and res.errors == []
    # 27 October: the repeated hour cannot be told apart by a clock label → its cells refused
    res = parse_csv(hdr + row.replace("31/03", "27/10"), "oct.csv")
    assert len(res.readings) == 92 and all("ambiguous" in e.problem for e in res.errors)
    # a header with clock times but neither 00:00 nor 24:00 is refused at line 1
    res = parse_csv("POD;Data;01:00;02:00\n" + f"{pod(2)};12/06/2024;1;1\n", "x.csv", ROLES)
    assert res.errors[0].line == 1 and "24:00" in res.errors[0].problem
