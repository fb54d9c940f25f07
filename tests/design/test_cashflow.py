"""Cash flows of a design, hand-checked on a two-hub virtual community.

Hub A builds 10 kWp of PV (1,000 €/kWp, 10 years) and has no load; hub B has a 10 kW load.
Two 12 h steps, PV yields 0.5 kW/kWp in the second: A exports 5 kW for 12 h a day, all of it
shared with B: 5 × 12 × 365 = 21,900 kWh/y = 21.9 MWh/y. Sale 0.05 €/kWh, incentive 110 €/MWh of
which 10 €/MWh valorisation (so TIP 100 €/MWh), interest 0 %, 20 years.
"""

from __future__ import annotations

import pytest

from design.cashflow import (
    cash_flow_variants,
    discounted_payback_y,
    grant_eligible_cost_eur,
    irr,
    npv,
)
from design.study import run_study

SHARED_MWH = 21.9
SALE = 21_900 * 0.05  # 1,095 €/y to A


def _scenario(factory, **finance):
    return factory(
        {"load_a": [0.0, 0.0], "load_b": [10.0, 10.0], "yield_a": [0.0, 0.5], "buy": [0.3, 0.3]},
        [
            {
                "id": "A",
                "contract_kw": 100,
                "electricity": {"column": "load_a"},
                "pv": [{"type": "pv_a", "max_kwp": 10}],
            },
            {"id": "B", "contract_kw": 100, "electricity": {"column": "load_b"}},
        ],
        community="virtual",
        prices={
            "purchase_column": "buy",
            "sale_eur_per_kwh": 0.05,
            "incentive_eur_per_mwh": 110,
            "valorisation_eur_per_mwh": 10,
        },
        extra={
            "finance": {
                "interest_rate": 0.0,
                "pv_degradation_per_y": 0.0,
                "gse_fee_fixed_eur_per_plant_y": 30.0,
                "gse_fee_variable_eur_per_kw_y": 1.5,
                **finance,
            }
        },
    )


def _flows(variant, subject):
    sub = variant.flows[variant.flows["subject"] == subject].sort_values("year")
    return sub.set_index("year")


def test_tip_only_flows_and_allocation_by_withdrawal(scenario_factory):
    r = run_study(_scenario(scenario_factory))
    assert r.design.built.tech("A_pv_a").sizes()["kwp"] == pytest.approx(10.0)
    (v,) = cash_flow_variants(r)
    a, b, com = _flows(v, "A"), _flows(v, "B"), _flows(v, "community")
    assert len(a) == 21
    assert a.loc[0, "capex"] == pytest.approx(-10_000)
    assert a.loc[10, "replacement"] == pytest.approx(-10_000)  # lifetime 10 < horizon 20
    assert a["salvage"].sum() == pytest.approx(0.0)  # the replacement ends with the horizon
    assert a.loc[1:, "sale"].tolist() == pytest.approx([SALE] * 20)
    assert com.loc[1, "tip"] == pytest.approx(SHARED_MWH * 100)
    assert com.loc[1, "valorisation"] == pytest.approx(SHARED_MWH * 10)
    fees = 30.0 + 1.5 * 10  # one new plant (A's PV) + 10 kW
    assert com.loc[1, "gse_fees"] == pytest.approx(-fees)
    # by_withdrawn: B is the only member withdrawing in the sharing hours → it gets it all
    distributable = SHARED_MWH * 110 - fees
    assert b.loc[1, "incentive_allocated"] == pytest.approx(distributable, abs=0.01)
    assert a["incentive_allocated"].sum() == pytest.approx(0.0)
    assert com["net"].abs().max() == pytest.approx(0.0, abs=0.01)  # a pure transfer
    # B's bills do not change (its load is still bought), A has none
    assert b["bill_savings"].abs().max() == pytest.approx(0.0, abs=1e-6)
    total = v.metrics["total"]
    assert total["npv_eur"] == pytest.approx(-20_000 + 20 * (SALE + distributable), abs=0.5)
    assert total["discounted_payback_y"] == pytest.approx(10_000 / (SALE + distributable), rel=1e-3)
    assert v.metrics["A"]["npv_eur"] == pytest.approx(-20_000 + 20 * SALE, abs=0.01)
    # the sum of the members is the community total, year by year
    members = v.flows[v.flows["subject"] != "total"].groupby("year")["net"].sum()
    assert members.tolist() == pytest.approx(_flows(v, "total")["net"].tolist(), abs=1e-6)


def test_grant_variant_cuts_capex_and_tip_by_f(scenario_factory):
    r = run_study(
        _scenario(
            scenario_factory,
            grant={"pct": 40, "town_population": 3_000},
            allocation=[{"method": "by_injected"}],
        )
    )
    tip_only, grant = cash_flow_variants(r)
    assert grant.eligible and "eligible" in grant.note
    a = _flows(grant, "A")
    # 10 kW ≤ 20 kW: eligible up to 1,500 €/kW → the whole 10,000 €; 40 % of it
    assert a.loc[0, "capex"] == pytest.approx(-6_000)
    assert a.loc[10, "replacement"] == pytest.approx(-10_000)  # no grant on the replacement
    com = _flows(grant, "community")
    assert com.loc[1, "tip"] == pytest.approx(SHARED_MWH * 100 * 0.5)  # F = 0.5 at 40 %
    assert com.loc[1, "valorisation"] == pytest.approx(SHARED_MWH * 10)  # F leaves it alone
    # by_injected: the plant's owner A gets the incentive
    fees = 30.0 + 1.5 * 10
    assert a.loc[1, "incentive_allocated"] == pytest.approx(SHARED_MWH * 60 - fees, abs=0.01)
    assert tip_only.metrics["total"]["investment_eur"] == pytest.approx(10_000)
    assert grant.metrics["total"]["investment_eur"] == pytest.approx(6_000)


def test_tip_ends_after_twenty_years_and_pv_degrades(scenario_factory):
    r = run_study(_scenario(scenario_factory, horizon_y=25, pv_degradation_per_y=0.05))
    (v,) = cash_flow_variants(r)
    com, a = _flows(v, "community"), _flows(v, "A")
    assert com.loc[20, "tip"] > 0 and com.loc[21, "tip"] == 0.0
    assert com.loc[21, "valorisation"] > 0  # the valorisation goes on
    # year 3: PV × 0.95²; its lost output was exported (no load at A) → sale and sharing fall
    assert a.loc[3, "sale"] == pytest.approx(SALE * 0.95**2)
    assert com.loc[3, "tip"] == pytest.approx(SHARED_MWH * 0.95**2 * 100, abs=1e-6)
    # lifetime 10 in 25 years: bought at 0, replaced at 10 and 20; the last one has 5 of 10
    # years left → half its cost back
    assert a.loc[25, "salvage"] == pytest.approx(5_000)


def test_financial_helpers_by_hand():
    assert irr([-100.0, 110.0]) == pytest.approx(0.10)
    assert irr([-100.0, 60.0, 60.0]) == pytest.approx(0.130662, abs=1e-6)
    assert irr([100.0, 10.0]) is None  # no sign change
    assert npv([-100.0, 110.0], 0.10) == pytest.approx(0.0)
    assert discounted_payback_y([-100.0, 50.0, 50.0, 50.0], 0.0) == pytest.approx(2.0)
    assert discounted_payback_y([-100.0, 40.0, 40.0, 40.0], 0.0) == pytest.approx(2.5)
    assert discounted_payback_y([-100.0, 10.0], 0.0) is None
    assert grant_eligible_cost_eur(50_000, 30) == pytest.approx(36_000)  # 1,200 €/kW cap
    assert grant_eligible_cost_eur(10_000, 30) == pytest.approx(10_000)


def test_grant_f_spares_the_energy_of_exempt_members(scenario_factory):
    # B (the only member withdrawing) is a public body: F does not apply to its shared energy
    # (DM 127/2025), so the grant variant keeps the whole TIP.
    path = _scenario(scenario_factory, grant={"pct": 40, "town_population": 3_000})
    import yaml

    data = yaml.safe_load(path.read_text())
    data["hubs"][1]["member_kind"] = "public_body"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _tip_only, grant = cash_flow_variants(run_study(path))
    assert _flows(grant, "community").loc[1, "tip"] == pytest.approx(SHARED_MWH * 100)
    assert "not applied to the 100 % of shared energy" in grant.note
