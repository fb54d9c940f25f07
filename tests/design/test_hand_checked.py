"""Tiny instances whose optimum is computed by hand.

Conventions: 2 steps of 12 h per typical day unless said otherwise, interest 0 % so the capital
recovery factor is 1/lifetime, one typical day weighing 365 days.
"""

from __future__ import annotations

import pytest

from design.study import run_study
from ems.model import results as res

DAYS = 365.0


def _hub(**kw):
    hub = {"id": "h1", "contract_kw": 100.0, "electricity": {"column": "load"}}
    hub.update(kw)
    return hub


@pytest.mark.parametrize("price, expect_kwp", [(0.30, 20.0), (0.02, 0.0)])
def test_pv_built_only_when_it_pays(scenario_factory, price, expect_kwp):
    # 10 kW load all day; PV yields 0.5 kW/kWp in the first 12 h, nothing after.
    # Self-consumed PV saves price × 0.5 × 12 h × 365 per kWp and year = 2190·price €/kWp/y,
    # against capex/lifetime = 100 €/kWp/y. Worth it iff price > 0.0457 €/kWh, up to the kWp
    # that just covers the 10 kW load (20 kWp); beyond that energy would be exported at 0 €.
    path = scenario_factory(
        {"load": [10, 10], "yield_a": [0.5, 0.0], "buy": [price, price]},
        [_hub(pv=[{"type": "pv_a", "max_kwp": 50}])],
    )
    r = run_study(path)
    kwp = r.design.built.tech("h1_pv_a").sizes()["kwp"]
    assert kwp == pytest.approx(expect_kwp, abs=1e-6)
    grid_cost = price * (10 * 24 - 0.5 * 12 * expect_kwp) * DAYS
    assert r.design.costs["total"] == pytest.approx(grid_cost + 100.0 * expect_kwp, rel=1e-6)


def test_roof_area_shared_between_pv_types(scenario_factory):
    # Roof 100 m²: pv_a takes 5 m²/kWp, pv_b 10 m²/kWp. Both pay; pv_a is better per m² (same
    # yield, cost per m² 200 vs 80 €/y... per kWp 100 vs 80 €/y, value per m² a: (V−100)/5 vs b: (V−80)/10).
    # With V = 0.3 × 2190 = 657 €/kWp/y, a: 111.4 €/m² > b: 57.7 €/m², so a takes the whole roof: 20 kWp.
    path = scenario_factory(
        {"load": [50, 50], "yield_a": [0.5, 0.0], "yield_b": [0.5, 0.0], "buy": [0.3, 0.3]},
        [_hub(roof_area_m2=100.0, pv=[{"type": "pv_a"}, {"type": "pv_b"}])],
    )
    r = run_study(path)
    a = r.design.built.tech("h1_pv_a").sizes()["kwp"]
    b = r.design.built.tech("h1_pv_b").sizes()["kwp"]
    assert a == pytest.approx(20.0)
    assert b == pytest.approx(0.0)
    assert a * 5 + b * 10 <= 100.0 + 1e-6


def test_battery_arbitrage_between_two_bands(scenario_factory):
    # Cheap 0.10 €/kWh in the first 12 h, dear 0.30 €/kWh after; load 1 kW all day.
    # A 5 kWh module (C-rate 1, lossless, 12 h steps) can move at most 12 kWh but holds 5 kWh:
    # each module shifts 5 kWh a day, saving 0.20 × 5 × 365 = 365 €/y for 50 €/y of capex.
    # Only 12 kWh of evening load exist → 2 modules shift 10 kWh; a third would shift 2 kWh
    # (146 €/y > 50 €/y) → 3 modules, 12 kWh shifted.
    path = scenario_factory(
        {"load": [1, 1], "buy": [0.10, 0.30]}, [_hub(battery={"type": "bat", "max_modules": 10})]
    )
    r = run_study(path)
    assert r.design.built.tech("h1_battery").sizes()["modules"] == pytest.approx(3)
    expected = (0.10 * (12 + 12) + 0.30 * 0) * DAYS + 3 * 50.0
    assert r.design.costs["total"] == pytest.approx(expected, rel=1e-6)
    asis_expected = (0.10 * 12 + 0.30 * 12) * DAYS
    assert r.asis.costs["total"] == pytest.approx(asis_expected, rel=1e-9)


def test_asis_cost_and_co2_equal_hand_computation(scenario_factory):
    # AS-IS: no new plants; only the existing 4 kWp of PV; grid covers the rest.
    load = [10, 20, 30, 40]
    buy = [0.2, 0.3, 0.3, 0.2]
    yld = [0.0, 0.5, 0.5, 0.0]
    path = scenario_factory(
        {"load": load, "yield_a": yld, "buy": buy},
        [_hub(pv=[{"type": "pv_a", "max_kwp": 10, "existing_kwp": 4}])],
        extra={"emissions": {"grid_t_per_mwh": 0.25}},
    )
    r = run_study(path)
    dt = 6.0
    imports = [p_kw - 4 * y for p_kw, y in zip(load, yld, strict=True)]
    cost = sum(b * i * dt for b, i in zip(buy, imports, strict=False)) * DAYS
    co2 = sum(imports) * dt * DAYS * 0.25 / 1000
    assert r.asis.costs["total"] == pytest.approx(cost, rel=1e-9)
    assert r.asis.costs["co2_t"] == pytest.approx(co2, rel=1e-9)
    assert r.asis.costs["capex"] == 0.0


def test_ev_leaves_with_its_energy_and_charges_only_when_present(scenario_factory):
    # 24 h steps of 1 h. Vehicle arrives 08:00, leaves 12:00, needs 20 kWh. PV (existing 30 kWp,
    # free) yields only 10:00–12:00; the grid is dear. V1G (11 kW) lets it charge 2 × 10 kWh from PV.
    hours = list(range(24))
    yld = [0.5 if h in (10, 11) else 0.0 for h in hours]
    vehicle = {
        "name": "car",
        "battery_kwh": 50,
        "p_max_kw": 11,
        "need_kwh_per_day": 20,
        "arrival_h": 8,
        "departure_h": 12,
        "soc_arrival": 0.3,
        "days": "all",
        "taper_soc": 1.0,
    }
    path = scenario_factory(
        {"load": [0.0] * 24, "yield_a": yld, "buy": [0.5] * 24},
        [
            _hub(
                pv=[{"type": "pv_a", "max_kwp": 30, "existing_kwp": 30}],
                chargers=[{"type": "v1g", "max_units": 2}, {"type": "dumb", "max_units": 2}],
                vehicles=[vehicle],
            )
        ],
    )
    r = run_study(path)
    ev = res.series(r.design.built, "h1_ev", "p_charge_kw")
    by_hour = ev.groupby(level=3).sum()
    assert by_hour.sum() == pytest.approx(20.0, abs=1e-6)  # 1 h steps, lossless
    assert all(by_hour[h] == pytest.approx(0.0, abs=1e-7) for h in hours if not 8 <= h < 12)
    assert by_hour[10] + by_hour[11] == pytest.approx(20.0, abs=1e-6)  # all from PV
    assert r.design.built.tech("h1_ev").sizes() == {"chargers_v1g": 1.0, "chargers_dumb": 0.0}


def test_dumb_charger_delivers_full_power_from_arrival(scenario_factory):
    vehicle = {
        "name": "car",
        "battery_kwh": 40,
        "p_max_kw": 7,
        "need_kwh_per_day": 10,
        "arrival_h": 9,
        "departure_h": 17,
        "soc_arrival": 0.2,
        "days": "all",
        "taper_soc": 1.0,
    }
    path = scenario_factory(
        {"load": [0.0] * 24, "buy": [0.2] * 24},
        [_hub(chargers=[{"type": "dumb", "max_units": 1}], vehicles=[vehicle])],
    )
    r = run_study(path)
    fl = res.flows(r.design.built)
    ev = fl[fl["label"] == "EV charging"].set_index("step")["kw"]
    assert [-ev[h] for h in (9, 10, 11, 12)] == pytest.approx([3.7, 3.7, 2.6, 0.0])
    assert -ev.sum() == pytest.approx(10.0)


def test_shared_energy_is_the_hourly_minimum(scenario_factory):
    # Hub A has 40 kWp existing PV and no load; hub B has a load. Exports of A and imports of B
    # per step are fixed, so shared = min(Σ export, Σ import) step by step.
    yld = [0.0, 0.25, 0.5, 0.25]
    load_b = [10.0, 30.0, 5.0, 10.0]
    path = scenario_factory(
        {"load_a": [0.0] * 4, "load_b": load_b, "yield_a": yld, "buy": [0.3] * 4},
        [
            {
                "id": "A",
                "contract_kw": 100,
                "electricity": {"column": "load_a"},
                "pv": [{"type": "pv_a", "max_kwp": 40, "existing_kwp": 40}],
            },
            {"id": "B", "contract_kw": 100, "electricity": {"column": "load_b"}},
        ],
        community="virtual",
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.05, "incentive_eur_per_mwh": 110},
    )
    r = run_study(path)
    shared = res.series(r.design.built, "community", "shared_kw")
    export = [40 * y for y in yld]
    expect = [min(e, p_kw) for e, p_kw in zip(export, load_b, strict=True)]
    assert list(shared.values) == pytest.approx(expect, abs=1e-6)
    assert r.design.kpis["shared_energy_mwh_per_y"] == pytest.approx(sum(expect) * 6 * DAYS / 1000)
    assert r.design.costs["revenue_incentive"] == pytest.approx(sum(expect) * 6 * DAYS * 0.110)
    # invariant: shared ≤ min(injected, withdrawn) every step
    fl = res.flows(r.design.built)
    for t in range(4):
        inj = -fl[(fl.label == "grid export") & (fl.step == t)]["kw"].sum()
        wd = fl[(fl.label == "grid import") & (fl.step == t)]["kw"].sum()
        assert shared.iloc[t] <= min(inj, wd) + 1e-6


@pytest.mark.parametrize("community, expect_modules", [("independent", 0), ("virtual", 2)])
def test_incentive_moves_a_battery_into_the_virtual_community(
    scenario_factory, community, expect_modules
):
    # Hub A: 20 kWp existing PV, yields 0.5 in the first half of the day, no load. Hub B: load only
    # in the second half (10 kW). Sale 0.05 €/kWh at any time; B buys at 0.30.
    # Independent: a battery at A only moves export in time — same sale price — worth 0 → none.
    # Virtual (incentive 118 €/MWh): shifting 10 kWh... each module moves 5 kWh from noon export
    # (no shared energy: B takes nothing then) to evening export (shared with B's load):
    # 5 × 0.118 × 365 = 215 €/y > 50 €/y capex; B's evening load is 10 kW × 12 h = 120 kWh, A's
    # surplus 120 kWh; C-rate 1 on 12 h steps caps nothing, energy does: modules = as many as pay
    # up to the 10 kWh the max (2 modules) allows.
    path = scenario_factory(
        {"load_a": [0.0, 0.0], "load_b": [0.0, 10.0], "yield_a": [0.5, 0.0], "buy": [0.3, 0.3]},
        [
            {
                "id": "A",
                "contract_kw": 100,
                "electricity": {"column": "load_a"},
                "pv": [{"type": "pv_a", "max_kwp": 20, "existing_kwp": 20}],
                "battery": {"type": "bat", "max_modules": 2},
            },
            {"id": "B", "contract_kw": 100, "electricity": {"column": "load_b"}},
        ],
        community=community,
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.05, "incentive_eur_per_mwh": 118},
    )
    r = run_study(path)
    assert r.design.built.tech("A_battery").sizes()["modules"] == pytest.approx(expect_modules)
    if community == "virtual":
        assert r.design.kpis["shared_energy_mwh_per_y"] == pytest.approx(10 * DAYS / 1000)


def test_balances_close_in_every_result(scenario_factory):
    hours = list(range(24))
    yld = [max(0.0, 1 - abs(h - 12) / 6) for h in hours]
    vehicle = {
        "name": "car",
        "battery_kwh": 50,
        "p_max_kw": 11,
        "need_kwh_per_day": 15,
        "arrival_h": 8,
        "departure_h": 18,
        "days": "all",
    }
    path = scenario_factory(
        {
            "load_a": [20.0] * 24,
            "load_b": [5.0 + h % 5 for h in hours],
            "yield_a": yld,
            "buy": [0.25 if 8 <= h < 19 else 0.15 for h in hours],
        },
        [
            {
                "id": "A",
                "contract_kw": 60,
                "electricity": {"column": "load_a"},
                "pv": [{"type": "pv_a", "max_kwp": 60}],
                "battery": {"type": "bat", "max_modules": 6},
                "chargers": [{"type": "v1g", "max_units": 1}],
                "vehicles": [vehicle],
            },
            {
                "id": "B",
                "contract_kw": 60,
                "electricity": {"column": "load_b"},
                "battery": {"type": "bat", "max_modules": 4},
            },
        ],
        community="virtual",
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.06, "incentive_eur_per_mwh": 118},
    )
    r = run_study(path)
    for run in (r.asis, r.design):
        assert res.balance_residuals(run.built) < 1e-6
        fl = res.flows(run.built)
        assert abs(fl.groupby(["hub", "period", "step"])["kw"].sum()).max() < 1e-6
    assert r.design.record.gap is not None and r.design.record.gap <= 1e-6
    assert r.design.costs["total"] <= r.asis.costs["total"] + 1e-6


def test_asis_of_a_virtual_community_shares_nothing_without_plants(scenario_factory):
    # Without exclusivity an LP could import and export at once to "share" energy and earn the
    # incentive. AS-IS has no plants: shared energy and incentive must be zero.
    path = scenario_factory(
        {"load_a": [5.0, 5.0], "load_b": [3.0, 3.0], "buy": [0.3, 0.3]},
        [
            {"id": "A", "contract_kw": 50, "electricity": {"column": "load_a"}},
            {"id": "B", "contract_kw": 50, "electricity": {"column": "load_b"}},
        ],
        community="virtual",
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.28, "incentive_eur_per_mwh": 118},
    )
    r = run_study(path)
    assert r.asis.kpis["shared_energy_mwh_per_y"] == pytest.approx(0.0, abs=1e-9)
    assert r.asis.costs["revenue_incentive"] == pytest.approx(0.0, abs=1e-6)
    assert r.asis.costs["total"] == pytest.approx(0.3 * 8.0 * 24 * DAYS)


def test_continuous_sizes_when_integer_is_false(scenario_factory):
    # Battery as above but `integer: false`: exactly the 12 kWh of evening load (2.4 modules),
    # 10 €/kWh/y of capex for 0.20 × 365 = 73 €/kWh/y of saving.
    path = scenario_factory(
        {"load": [1, 1], "buy": [0.10, 0.30]},
        [_hub(battery={"type": "bat", "max_modules": 10, "integer": False})],
    )
    r = run_study(path)
    assert r.design.built.tech("h1_battery").sizes()["kwh"] == pytest.approx(12.0, abs=1e-6)
    assert r.design.costs["total"] == pytest.approx(0.10 * 24 * DAYS + 12 * 10.0, rel=1e-6)
    # PV: 10 kW load, 0.3 kW/kWp for 12 h, 0.20 €/kWh: a kWp saves 262.8 €/y for 100 €/y until
    # the load is covered at 33.33 kWp; in 1 kWp steps the 34th would save only 87.6 €/y → 33
    for integer, expect in ((True, 33.0), (False, 100.0 / 3.0)):
        path = scenario_factory(
            {"load": [10, 10], "yield_a": [0.3, 0.0], "buy": [0.2, 0.2]},
            [_hub(pv=[{"type": "pv_a", "max_kwp": 50, "integer": integer}])],
        )
        kwp = run_study(path).design.built.tech("h1_pv_a").sizes()["kwp"]
        assert kwp == pytest.approx(expect, abs=1e-6), integer
