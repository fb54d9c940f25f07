"""The demo's KPI table: whole cost first on multi-energy sites, baseline said, change column,
no all-zero rows."""

from __future__ import annotations

from adapters.sim.simulate import kpi_table


def _rows(text: str) -> list[str]:
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("KPI"))
    return lines[head + 1 :]


def test_multi_energy_table_leads_with_cost_including_gas():
    ems = {"net_cost_eur": 417.0, "gas_eur": 560.0, "chp_om_eur": 34.0, "total_cost_eur": 1011.0,
           "cost_eur": 430.0, "ev_kwh": 0.0, "grid_import_kwh": 812.4}  # fmt: skip
    base = {"net_cost_eur": 700.0, "gas_eur": 650.0, "chp_om_eur": 35.0, "total_cost_eur": 1385.0,
            "cost_eur": 710.0, "ev_kwh": 0.0, "grid_import_kwh": 1200.0}  # fmt: skip
    text = kpi_table(ems, base)
    assert text.startswith("baseline = the same plant")  # the console says what the baseline is
    rows = _rows(text)
    assert rows[0].startswith("net cost incl. gas and CHP O&M (€)")
    assert "1011.00" in rows[0] and "1385.00" in rows[0] and "-374.00 (-27 %)" in rows[0]
    elec = next(r for r in rows if r.startswith("net cost, electricity only"))
    assert "417.00" in elec and "-283.00 (-40 %)" in elec
    assert not any(r.startswith("EV energy") for r in rows)  # zero on both sides: left out
    assert "-387.6 (-32 %)" in next(r for r in rows if r.startswith("grid import"))


def test_electric_site_has_plain_net_cost_and_equal_marker():
    text = kpi_table(
        {"net_cost_eur": 10.0, "shared_kwh": 5.0}, {"net_cost_eur": 12.0, "shared_kwh": 5.0}
    )
    rows = _rows(text)
    assert rows[0].startswith("net cost (€)") and "-2.00 (-17 %)" in rows[0]
    assert rows[1].startswith("shared energy") and rows[1].rstrip().endswith(" ±0")


def test_every_row_a_technology_declares_is_printed_in_its_order():
    """The table has no list of kinds: each technology's plant device declares its rows
    (``kpi_table_rows``), the table prints them in their declared order (once each)."""
    from adapters.sim.simulate import kpi_rows, tech_rows

    rows = tech_rows()
    keys = [r.key for r in rows]
    assert len(keys) == len(set(keys))
    assert {"chp_kwh", "ev_kwh", "eboiler_kwh", "pv_kwh"} <= set(keys)  # from their modules
    printed = [k for k, _label, _nd in kpi_rows({k: 1.0 for k in keys}, {})]
    assert printed == [r.key for r in sorted(rows, key=lambda r: r.order)]


def test_a_percentage_kpi_changes_in_points_and_no_negative_zero_prints():
    """A percentage KPI's change is in percentage points, not % of itself; a change (or its
    relative part) that rounds to nothing prints as ±0, never as -0."""
    ems = {"self_consumption_pct": 94.6, "grid_import_kwh": 3344.9, "net_cost_eur": -0.004,
           "shared_kwh": 119.96}  # fmt: skip
    base = {"self_consumption_pct": 89.6, "grid_import_kwh": 3345.0, "net_cost_eur": 5.0,
            "shared_kwh": 120.0}  # fmt: skip
    text = kpi_table(ems, base)
    rows = {r.split(" (")[0]: r for r in _rows(text)}
    sc = rows["PV self-consumption"]
    assert sc.rstrip().endswith("+5.0 pp") and "%)" not in sc.split("89.6")[1], sc
    assert rows["grid import"].rstrip().endswith("-0.1 (±0 %)"), rows["grid import"]
    assert rows["shared energy"].rstrip().endswith("±0"), rows["shared energy"]
    assert rows["net cost"].split()[-5:] == ["0.00", "5.00", "-5.00", "(-100", "%)"]
    assert "-0 %" not in text and " -0.00 " not in text and "-0.0 " not in text


def test_the_devices_status_is_one_readable_line():
    from adapters.sim.simulate import devices_line

    status = {
        "ocpp": {"connected": 3, "configured": 3, "refused_unknown": 0, "refused_auth": 1,
                 "profiles_sent": 96, "profiles_accepted": 95, "profiles_rejected": 1,
                 "profiles_failed": 0, "uncontrollable": [], "profile_latency_p95_s": 0.0123},
        "modbus": {"devices": 5, "answering": 4, "writes_ok": 96, "timeout": 2},
    }  # fmt: skip
    assert devices_line(status) == (
        "devices: 3/3 OCPP charge points connected; charging profiles sent 96, accepted 95, "
        "rejected 1, failed 0 (p95 0.012 s); connections refused 1; "
        "4/5 Modbus units answering; setpoint writes read back 96; errors timeout 2"
    )
    assert devices_line({"modbus": {"devices": 2, "answering": 2}}) == (
        "devices: 2/2 Modbus units answering; setpoint writes read back 0"
    )
