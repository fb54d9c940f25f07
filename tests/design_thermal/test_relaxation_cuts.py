"""Hand-checked instances for the valid inequalities of the sizing pass (per-step integers relaxed):
they never change the integer optimum, and they close the relaxation where a unit runs "in part".

CHP ``chp100``: fuel = 2.25·P + 25·u (kW), heat = 0.5·fuel, minimum load 50 kWe per unit on.
One typical day of one 24-h step weighted 365 days: annual cost = 8760 × the hourly cost.
"""

from __future__ import annotations

import pyomo.environ as pyo
import pytest

from adapters.config_io import load_scenario
from design.data import prepare
from design.study import yield_columns
from ems.model import results as res
from ems.model.assembly import techs_from_scenario
from ems.model.builder import build_model, relax_operational_integers
from ems.model.solve import SolverSession

H = 8760.0


def _solve(path, *, relaxed: bool, cuts: bool = True):
    s, cat = load_scenario(path)
    st = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in st.data.max(numeric_only=True).items()}
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=False, peaks=peaks)
    built = build_model(
        techs, st.grid, st.data, interest_rate=s.finance.interest_rate, limits=limits
    )
    if not cuts:
        for name in ("covered_when_off", "heat_finds_sink"):
            for c in built.model.component_objects(pyo.Constraint, descend_into=True):
                if c.local_name == name:
                    c.deactivate()
    if relaxed:
        relax_operational_integers(built)
    rec = SolverSession(built.model, mip_rel_gap=0.0, time_limit_s=60).solve("cuts")
    assert res.balance_residuals(built) < 1e-6
    return built, rec.objective


def _val(built, tech, var, idx):
    return pyo.value(built.model.component(built.tech(tech).block_name).component(var)[idx])


def _part_load_case(scenario_factory, chp_types):
    """Load 60 kW at 0.30 €/kWh, heating 200 kW with a boiler (η 0.9) as backup, one existing unit
    of each CHP type."""
    return scenario_factory(
        {"load": [60.0], "heat": [200.0], "buy": [0.30]},
        [
            {
                "id": "h1",
                "contract_kw": 200.0,
                "electricity": {"column": "load"},
                "heating": {"column": "heat"},
                "chp": [{"type": t, "max_units": 0, "existing_units": 1} for t in chp_types],
                "boilers": [{"type": "boil", "existing_kw": 400.0}],
            }
        ],
    )


def test_electric_off_cover_closes_the_part_load_relaxation(scenario_factory):
    # Load 60 kW at 0.30 €/kWh, heating 200 kW (boiler η 0.9 as backup), gas 0.05 €/kWh, sale 0.
    # Integer optimum: one unit at 60 kWe: fuel 160 kW (8 €/h), CHP heat 80 kW, boiler 120/0.9 kW of
    # gas (6.667 €/h) → 14.667 €/h. The relaxation without the cut runs 0.6 "unit" at full-load
    # efficiency: fuel 135 + 15 = 150 kW, heat 75 kW → 7.5 + 125/0.9 × 0.05 = 14.444 €/h. With the
    # cut (import + PV + battery ≥ 60·(1 − u)), 0.6 unit means importing 24 kW: the relaxation
    # runs the whole unit, as the integer plan does.
    path = _part_load_case(scenario_factory, ["chp100"])
    built, integer = _solve(path, relaxed=False)
    assert integer == pytest.approx(H * (8.0 + 120 / 0.9 * 0.05), rel=1e-6)
    assert _val(built, "h1_chp100", "p_el_kw", ("d1", 0)) == pytest.approx(60.0, abs=1e-5)
    _b, loose = _solve(path, relaxed=True, cuts=False)
    assert loose == pytest.approx(H * (7.5 + 125 / 0.9 * 0.05), rel=1e-6)
    built, tight = _solve(path, relaxed=True)
    assert tight == pytest.approx(integer, rel=1e-6)
    assert _val(built, "h1_chp100", "u_on", ("d1", 0)) == pytest.approx(1.0, abs=1e-6)


def test_off_cover_counts_a_small_unit_by_its_own_output(scenario_factory):
    # The instance above with a chp20 (fuel 2.25·P + 5·u, 20 kWe, minimum 10 kWe) beside the chp100.
    # Integer optimum unchanged: chp100 at 60 kWe, 14.667 €/h (chp100 at 50 + chp20 at 10 costs
    # fuel 165 kW (8.25 €) + boiler 117.5/0.9 kW of gas (6.528 €) = 14.778 €/h).
    # The first form of the cut, import ≥ 60·(1 − u100 − u20), is slack as soon as the small unit
    # runs: the relaxation ran chp20 at full load and 0.4 of chp100 at full load, 14.444 €/h, the
    # same as without any cut. The rounding form counts a chp20 unit as its own 20 kW:
    # import ≥ 60 − 60·u100 − 20·u20. Its relaxation: u20 = 1 at 10 kWe, u100 = 2/3 at 50 kWe
    # (import 0 = 60 − 40 − 20): fuel 135 + 16.667 + 5 = 156.667 kW (7.833 €), CHP heat 78.333 kW,
    # boiler 121.667/0.9 kW of gas (6.759 €) → 14.593 €/h, two thirds of the way to the optimum.
    path = _part_load_case(scenario_factory, ["chp100", "chp20"])
    built, integer = _solve(path, relaxed=False)
    assert integer == pytest.approx(H * (8.0 + 120 / 0.9 * 0.05), rel=1e-6)
    assert _val(built, "h1_chp20", "u_on", ("d1", 0)) == pytest.approx(0.0, abs=1e-6)
    _b, loose = _solve(path, relaxed=True, cuts=False)
    assert loose == pytest.approx(H * (7.5 + 125 / 0.9 * 0.05), rel=1e-6)
    built, tight = _solve(path, relaxed=True)
    assert tight == pytest.approx(H * (156.667 / 20 + (200 - 78.3333) / 0.9 * 0.05), rel=1e-5)
    assert _val(built, "h1_chp100", "u_on", ("d1", 0)) == pytest.approx(2 / 3, abs=1e-6)
    assert tight < integer


def _chiller_hubs():
    # Hub A: one chp100 (DH). Hub B: cooling 14 kW from an absorption chiller (COP 0.7: 20 kW of
    # heat) or an electric chiller (hp in cooling mode, EER 2.8 at 35 °C: 5 kWe); no heating load.
    a = {
        "id": "hA",
        "contract_kw": 200.0,
        "electricity": {"column": "load"},
        "district_heating": True,
        "chp": [{"type": "chp100", "max_units": 0, "existing_units": 1}],
    }
    b = {
        "id": "hB",
        "contract_kw": 200.0,
        "electricity": {"column": "load"},
        "cooling": {"column": "cool"},
        "district_heating": True,
        "absorption_chillers": [{"type": "ac", "max_units": 0, "existing_units": 1}],
        "heat_pumps": [{"type": "hp", "max_units": 0, "existing_units": 1}],
    }
    return [a, b]


def test_heat_sink_cut_keeps_a_chp_off_when_its_heat_has_nowhere_to_go(scenario_factory):
    # Feed 20 kW → the CHP would inject 20/0.9 = 22.2 kW, below its minimum heat 0.5·(112.5 + 25)
    # = 68.75 kW, and (2) forbids dissipation: with integer units on it stays off; cooling from the
    # electric chiller (5 kWe at 0.30 €/kWh) and the 2 × 40 kW load from the grid → 25.5 €/h. The
    # relaxation without the cut runs 0.16 "unit" (heat 22.2 kW = 125·u, P = 16 kWe). With the
    # cut (net store charge ≥ η·heat − heat load − feed·u; no store, no heat load) it cannot.
    cols = {"load": [40.0], "cool": [14.0], "t_amb_c": [35.0], "buy": [0.30]}
    extra = {"district_heating": {"eta": 0.9, "connection_capex_eur": 0.0}}
    path = scenario_factory(cols, _chiller_hubs(), extra=extra)
    built, integer = _solve(path, relaxed=False)
    assert integer == pytest.approx(H * 0.30 * 85.0, rel=1e-6)
    assert _val(built, "hA_chp100", "p_el_kw", ("d1", 0)) == pytest.approx(0.0, abs=1e-6)
    _b, loose = _solve(path, relaxed=True, cuts=False)
    assert loose < integer - 1.0
    built, tight = _solve(path, relaxed=True)
    assert tight == pytest.approx(integer, rel=1e-6)
    assert _val(built, "hA_chp100", "p_el_kw", ("d1", 0)) == pytest.approx(0.0, abs=1e-6)


def test_heat_sink_cut_lets_a_chp_run_when_the_sink_is_large_enough(scenario_factory):
    # Cooling 70 kW → feed up to 100 kW, above the minimum heat 68.75 kW: the CHP runs one unit and
    # feeds the chiller through the network (with the electric chiller for the rest). The cuts are
    # valid: the integer optimum is the same with and without them, and the relaxation with the
    # cuts stays a lower bound (at least as high as without them).
    cols = {"load": [100.0], "cool": [70.0], "t_amb_c": [35.0], "buy": [0.30]}
    extra = {"district_heating": {"eta": 0.9, "connection_capex_eur": 0.0}}
    path = scenario_factory(cols, _chiller_hubs(), extra=extra)
    built, integer = _solve(path, relaxed=False)
    assert _val(built, "hA_chp100", "u_on", ("d1", 0)) == pytest.approx(1.0, abs=1e-6)
    assert _val(built, "hA_chp100", "p_el_kw", ("d1", 0)) >= 50.0 - 1e-6
    _b, without = _solve(path, relaxed=False, cuts=False)
    assert without == pytest.approx(integer, rel=1e-6)
    _b, tight = _solve(path, relaxed=True)
    _b, loose = _solve(path, relaxed=True, cuts=False)
    assert loose - 1e-6 <= tight <= integer + 1e-6


@pytest.mark.parametrize("cool_kw", [14.0, 30.0, 70.0])
def test_heat_sink_cut_with_a_small_and_a_large_unit_is_valid(scenario_factory, cool_kw):
    # chp20 beside chp100 at hub A: the chiller feed is bounded by min(F, η·H_c) per unit on
    # (η·H = 0.9 × 25 = 22.5 kW for chp20, 0.9 × 125 = 112.5 kW for chp100). For feeds below, between
    # and above the small unit's heat the integer optimum is the same with and without the cuts,
    # and the relaxation with the cuts stays between the plain relaxation and the integer optimum.
    hubs = _chiller_hubs()
    hubs[0]["chp"].append({"type": "chp20", "max_units": 0, "existing_units": 1})
    cols = {"load": [100.0], "cool": [cool_kw], "t_amb_c": [35.0], "buy": [0.30]}
    extra = {"district_heating": {"eta": 0.9, "connection_capex_eur": 0.0}}
    path = scenario_factory(cols, hubs, extra=extra)
    _b, integer = _solve(path, relaxed=False)
    _b, without = _solve(path, relaxed=False, cuts=False)
    assert without == pytest.approx(integer, rel=1e-6)
    _b, tight = _solve(path, relaxed=True)
    _b, loose = _solve(path, relaxed=True, cuts=False)
    assert loose - 1e-6 <= tight <= integer + 1e-6


def _pv_hub(hid, contract, load_col, pv_kwp):
    hub = {"id": hid, "contract_kw": contract, "electricity": {"column": load_col}}
    if pv_kwp:
        hub["pv"] = [{"type": "pv", "max_kwp": pv_kwp, "existing_kwp": pv_kwp}]
    return hub


def test_own_load_first_is_tight_but_valid_for_exchange(scenario_factory):
    # Hub A: 100 kW of PV, load 20 kW, contract 30 kW; hub B: load 50 kW, no generation. Purchase
    # 0.30, sale 0.10 €/kWh. A covers its load, gives 50 kW to B (B imports nothing) and exports
    # its 30 kW: export + give + load·(1 − x_take) = 30 + 50 + 20 = 100 = PV, the new inequality
    # holds with equality and the optimum (−3 €/h) is the same with and without it; B, taking,
    # exports nothing (7) and A, giving, imports nothing (6).
    path = scenario_factory(
        {"la": [20.0], "lb": [50.0], "yield": [1.0], "buy": [0.3]},
        [_pv_hub("hA", 30.0, "la", 100.0), _pv_hub("hB", 100.0, "lb", 0.0)],
        community="physical",
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.10},
    )
    built, with_cut = _solve(path, relaxed=False)
    assert with_cut == pytest.approx(-H * 0.10 * 30.0, rel=1e-6)
    assert _val(built, "hA_link", "p_to_kw", ("d1", 0)) == pytest.approx(50.0, abs=1e-5)
    assert res.series(built, "hA_grid", "p_export_kw")[("d1", 0)] == pytest.approx(30.0, abs=1e-5)
    assert res.series(built, "hA_grid", "p_import_kw")[("d1", 0)] == pytest.approx(0.0, abs=1e-6)
    assert res.series(built, "hB_grid", "p_export_kw")[("d1", 0)] == pytest.approx(0.0, abs=1e-6)
    link = built.model.component(built.tech("hA_link").block_name)
    assert pyo.value(link.own_load_first[("d1", 0)].body) == pytest.approx(
        pyo.value(link.own_load_first[("d1", 0)].upper), abs=1e-5
    )


def test_heat_sink_cut_counts_the_distribution_losses(scenario_factory):
    # Hub A heats 100 kW at the buildings through a distribution of η 0.85 (117.6 kW at the hub,
    # what its balance asks), one chp100 and a boiler; hub B cools 1 kW (feed bound 1/0.7 kW).
    # Electricity at 0.30 €/kWh makes the CHP cover all of A's heat: 0.9 × 117.6 = 105.9 kW of
    # "injected-equivalent" heat against D + F = 100 + 1.4 kW if D were the bare load — the cut
    # counted that way removed this integer plan. With D = load / η it is valid: the integer
    # optimum is the same with and without the cuts.
    hubs = _chiller_hubs()
    hubs[0]["heating"] = {"column": "heat", "distribution_eta": 0.85}
    hubs[0]["boilers"] = [{"type": "boil", "existing_kw": 400.0}]
    cols = {"load": [100.0], "heat": [100.0], "cool": [1.0], "t_amb_c": [35.0], "buy": [0.30]}
    extra = {"district_heating": {"eta": 0.9, "connection_capex_eur": 0.0}}
    path = scenario_factory(cols, hubs, extra=extra)
    built, integer = _solve(path, relaxed=False)
    heat = 0.5 * _val(built, "hA_chp100", "fuel_kw", ("d1", 0))
    assert heat > (100.0 + 1.0 / 0.7) / 0.9  # the plan the bare-load cut removed
    _b, without = _solve(path, relaxed=False, cuts=False)
    assert without == pytest.approx(integer, rel=1e-6)
    _b, tight = _solve(path, relaxed=True)
    _b, loose = _solve(path, relaxed=True, cuts=False)
    assert loose - 1e-6 <= tight <= integer + 1e-6
