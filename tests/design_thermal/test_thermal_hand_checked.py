"""Hand-checked multi-energy instances (seed chapter 3): CHP, heat pump, chiller, stores,
district heating, physical electric exchange. Interest 0 %, one typical day of 365 days.

CHP ``chp100``: P_rated 100 kWe, η_el 0.4 → rated fuel 250 kW; no-load fuel 10 % → b = 25 kW per
unit on, a = 225/100 = 2.25; heat = 0.5 × fuel.
"""

from __future__ import annotations

import pyomo.environ as pyo
import pytest

from adapters.config_io import load_scenario
from design.data import prepare
from design.study import yield_columns
from ems.errors import SolveError
from ems.model import results as res
from ems.model.assembly import techs_from_scenario
from ems.model.builder import build_model
from ems.model.solve import SolverSession


class _Run:
    def __init__(self, built):
        self.built = built


class _Result:
    def __init__(self, built):
        from ems.model.results import cost_breakdown

        self.design = _Run(built)
        self.design.costs = cost_breakdown(built)


def run_study(path):
    """The design model alone (no AS-IS solve: some instances have no AS-IS plant), monolithic."""
    s, cat = load_scenario(path)
    st = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in st.data.max(numeric_only=True).items()}
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=False, peaks=peaks)
    built = build_model(
        techs, st.grid, st.data, interest_rate=s.finance.interest_rate, limits=limits
    )
    SolverSession(built.model, mip_rel_gap=0.0, time_limit_s=60).solve("design")
    return _Result(built)


def _val(built, tech, var, idx):
    return pyo.value(built.model.component(built.tech(tech).block_name).component(var)[idx])


def _hub(hid="h1", **kw):
    hub = {"id": hid, "contract_kw": 200.0, "electricity": {"column": "load"}}
    hub.update(kw)
    return hub


def _closed(built):
    assert res.balance_residuals(built) < 1e-6


def test_chp_heat_split_and_part_load(scenario_factory):
    # Heating 50 kW + DHW 30 kW = 80 kW of CHP heat: 0.5·(2.25·P + 25) = 80 → P = 60 kWe (≥ 50 min).
    # Electric load 60 kW at 0.30 €/kWh: the CHP (fuel 160 kW × 0.05 = 8 €/h) beats boiler + grid
    # (80/0.9 × 0.05 + 18 = 22.4 €/h). The split (2) sends 50 to heating and 30 to DHW.
    path = scenario_factory(
        {"load": [60.0], "heat": [50.0], "dhw": [30.0], "buy": [0.30]},
        [
            _hub(
                heating={"column": "heat"},
                dhw={"column": "dhw"},
                chp=[{"type": "chp100", "max_units": 0, "existing_units": 1}],
                boilers=[{"type": "boil", "existing_kw": 200.0, "carriers": ["heat", "dhw"]}],
            )
        ],
    )
    r = run_study(path)
    b = r.design.built
    assert _val(b, "h1_chp100", "u_on", ("d1", 0)) == pytest.approx(1.0)
    assert _val(b, "h1_chp100", "p_el_kw", ("d1", 0)) == pytest.approx(60.0, abs=1e-5)
    assert _val(b, "h1_chp100", "fuel_kw", ("d1", 0)) == pytest.approx(160.0, abs=1e-5)
    assert _val(b, "h1_chp_heat", "q_kw", ("heat", "d1", 0)) == pytest.approx(50.0, abs=1e-5)
    assert _val(b, "h1_chp_heat", "q_kw", ("dhw", "d1", 0)) == pytest.approx(30.0, abs=1e-5)
    # CO2: 160 kW × 24 h × 365 × 0.205 t/MWh = 287.3 t/y (no grid import)
    assert r.design.costs["co2_t"] == pytest.approx(160 * 24 * 365 * 0.205 / 1000, rel=1e-6)
    _closed(b)


def test_chp_minimum_load_keeps_it_off(scenario_factory):
    # Heating 40 kW: the CHP at its 50 % minimum makes 0.5·(2.25·50 + 25) = 68.75 kW of heat, more
    # than the load, and its heat cannot be dissipated (2): it stays off; the boiler serves the heat.
    path = scenario_factory(
        {"load": [60.0], "heat": [40.0], "buy": [0.30]},
        [
            _hub(
                heating={"column": "heat"},
                chp=[{"type": "chp100", "max_units": 0, "existing_units": 1}],
                boilers=[{"type": "boil", "existing_kw": 200.0}],
            )
        ],
    )
    r = run_study(path)
    b = r.design.built
    assert _val(b, "h1_chp100", "u_on", ("d1", 0)) == pytest.approx(0.0, abs=1e-6)
    assert _val(b, "h1_chp100", "p_el_kw", ("d1", 0)) == pytest.approx(0.0, abs=1e-6)
    assert _val(b, "h1_boil", "q_kw", ("heat", "d1", 0)) == pytest.approx(40.0, abs=1e-5)
    _closed(b)


def test_heat_pump_cop_at_two_temperatures(scenario_factory):
    # COP(T) = 3.0 × (1 + 0.025 (T − 7)): 3.0 at 7 °C, 3.75 at 17 °C. Heating 30 kW → 10 and 8 kW
    # of electricity, bought from the grid (no other load). Cooling EER(T) = 2.8 (1 − 0.02 (T − 35)).
    path = scenario_factory(
        {"load": [0.0, 0.0], "heat": [30.0, 30.0], "t_amb_c": [7.0, 17.0], "buy": [0.2, 0.2]},
        [
            _hub(
                heating={"column": "heat"},
                heat_pumps=[{"type": "hp", "max_units": 0, "existing_units": 1}],
            )
        ],
    )
    r = run_study(path)
    b = r.design.built
    imp = res.series(b, "h1_grid", "p_import_kw")
    assert imp[("d1", 0)] == pytest.approx(10.0, abs=1e-5)
    assert imp[("d1", 1)] == pytest.approx(8.0, abs=1e-5)
    _closed(b)


def test_heat_pump_one_mode_per_unit(scenario_factory):
    # One unit, heating 30 kW and cooling 30 kW in the same step: a unit is in one mode at a time,
    # so one unit cannot do both → infeasible; two units can (one per mode).
    cols = {"load": [0.0], "heat": [30.0], "cool": [30.0], "t_amb_c": [20.0], "buy": [0.2]}
    hub = _hub(
        heating={"column": "heat"},
        cooling={"column": "cool"},
        heat_pumps=[{"type": "hp", "max_units": 0, "existing_units": 1}],
    )
    with pytest.raises(SolveError):
        run_study(scenario_factory(cols, [hub]))
    hub["heat_pumps"] = [{"type": "hp", "max_units": 0, "existing_units": 2}]
    r = run_study(scenario_factory(cols, [hub]))
    b = r.design.built
    assert _val(b, "h1_hp", "u_mode", ("heating", "d1", 0)) == pytest.approx(1.0)
    assert _val(b, "h1_hp", "u_mode", ("cooling", "d1", 0)) == pytest.approx(1.0)
    _closed(b)


def _dh_hubs(chiller_hub_extra=None):
    a = _hub(
        "hA",
        chp=[{"type": "chp100_low", "max_units": 0, "existing_units": 1}],
        district_heating=True,
    )
    bh = _hub(
        "hB",
        cooling={"column": "cool"},
        absorption_chillers=[{"type": "ac", "max_units": 0, "existing_units": 1}],
        district_heating=True,
    )
    bh.update(chiller_hub_extra or {})
    return [a, bh]


def test_chiller_fed_by_district_heat_with_network_efficiency(scenario_factory):
    # Hub B: cooling 35 kW from an absorption chiller (COP 0.7) → 50 kW of heat (18), all from the
    # network. η_DH = 0.9 (17): hub A's CHP must inject 50/0.9 = 55.556 kW, which is all its heat:
    # fuel 111.11 kW → 2.25 P + 25 = 111.11 → P = 38.27 kWe (min load 20 %). Aux: 0.03 × 35 kW.
    path = scenario_factory(
        {"load": [0.0], "cool": [35.0], "buy": [0.3]},
        _dh_hubs(),
        extra={"district_heating": {"eta": 0.9, "connection_capex_eur": 0.0}},
    )
    r = run_study(path)
    b = r.design.built
    assert _val(b, "hA_dh", "q_to_kw", ("d1", 0)) == pytest.approx(50 / 0.9, abs=1e-4)
    assert _val(b, "hB_dh", "q_from_kw", ("chiller_feed", "d1", 0)) == pytest.approx(50.0, abs=1e-4)
    assert _val(b, "hA_chp100_low", "p_el_kw", ("d1", 0)) == pytest.approx(
        (50 / 0.9 / 0.5 - 25) / 2.25, abs=1e-4
    )
    assert (
        res.series(b, "hB_grid", "p_import_kw")[("d1", 0)] == pytest.approx(0.03 * 35, abs=1e-5)
        or _val(b, "hB_link", "p_from_kw", ("d1", 0)) > 0
    )
    assert b.tech("hA_dh").sizes()["y_dh"] == pytest.approx(1) and b.tech("hB_dh").sizes()[
        "y_dh"
    ] == pytest.approx(1)
    _closed(b)


def test_connection_rule_no_exchange_without_connection(scenario_factory):
    # (11): a hub exchanges heat only if connected. With a connection Capex far above any benefit
    # and the chiller's only heat source being the network, hub B has to connect anyway (feasible,
    # y_B = 1); when hub B may not connect (district_heating: false) cooling cannot be served.
    path = scenario_factory(
        {"load": [0.0], "cool": [35.0], "buy": [0.3]},
        _dh_hubs(),
        extra={"district_heating": {"eta": 0.9, "connection_capex_eur": 1e6}},
    )
    r = run_study(path)
    assert r.design.built.tech("hB_dh").sizes()["y_dh"] == pytest.approx(1)
    hubs = _dh_hubs()
    hubs[0]["district_heating"] = False  # hub A not connectable: no CHP heat can reach hub B
    with pytest.raises(SolveError):
        run_study(
            scenario_factory(
                {"load": [0.0], "cool": [35.0], "buy": [0.3]},
                hubs,
                extra={"district_heating": {"eta": 0.9, "connection_capex_eur": 0.0}},
            )
        )


def test_puffer_standing_losses(scenario_factory):
    # Free solar heat only in the first 12 h, heating 5 kW only in the last 12 h (60 kWh). The
    # puffer loses 1 %/h: cyclic balance e0 = 12·q_ch, e1 = 0.99^12·e0 − 60 = 0 →
    # q_ch = 60 / 0.99^12 / 12 = 5.6406 kW, and the 100 kWh size (50 kWh < 67.69 kWh) is chosen.
    path = scenario_factory(
        {"load": [0.0, 0.0], "heat": [0.0, 5.0], "sol": [1.0, 0.0], "buy": [0.2, 0.2]},
        [
            _hub(
                heating={"column": "heat"},
                solar_thermal={"type": "sol", "max_m2": 100.0},
                puffer={"type": "puf"},
            )
        ],
    )
    r = run_study(path)
    b = r.design.built
    net = _val(b, "h1_puffer", "q_charge_kw", ("d1", 0)) - _val(
        b, "h1_puffer", "q_discharge_kw", ("d1", 0)
    )
    assert net == pytest.approx(60 / 0.99**12 / 12, abs=1e-4)
    # no charging and discharging in the same step (it would dissipate heat through the losses)
    for t in (0, 1):
        assert (
            min(
                _val(b, "h1_puffer", "q_charge_kw", ("d1", t)),
                _val(b, "h1_puffer", "q_discharge_kw", ("d1", t)),
            )
            < 1e-6
        )
    assert _val(b, "h1_puffer", "e_kwh", ("d1", 0)) == pytest.approx(60 / 0.99**12, abs=1e-3)
    assert b.tech("h1_puffer").sizes()["kwh"] == pytest.approx(100.0)
    _closed(b)


def _pv_hub(hid, contract, load_col, pv_kwp):
    hub = _hub(hid, contract_kw=contract, electricity={"column": load_col})
    if pv_kwp:
        hub["pv"] = [{"type": "pv", "max_kwp": pv_kwp, "existing_kwp": pv_kwp}]
    return hub


def test_exchange_gives_local_surplus(scenario_factory):
    # Hub A: 100 kW of PV, no load, contract 30 kW. Hub B: load 50 kW. With no sale price, A gives
    # 50 kW to B (14), B imports nothing; A's remaining 50 kW: 30 kW... nothing pays, so any
    # curtailment is fine. (5): A does not take while giving.
    path = scenario_factory(
        {"la": [0.0], "lb": [50.0], "yield": [1.0], "buy": [0.3]},
        [_pv_hub("hA", 30.0, "la", 100.0), _pv_hub("hB", 100.0, "lb", 0.0)],
        community="physical",
    )
    r = run_study(path)
    b = r.design.built
    assert _val(b, "hB_link", "p_from_kw", ("d1", 0)) == pytest.approx(50.0, abs=1e-5)
    assert _val(b, "hA_link", "p_to_kw", ("d1", 0)) == pytest.approx(50.0, abs=1e-5)
    assert res.series(b, "hB_grid", "p_import_kw")[("d1", 0)] == pytest.approx(0.0, abs=1e-5)
    assert _val(b, "hA_link", "p_from_kw", ("d1", 0)) == pytest.approx(0.0, abs=1e-6)
    _closed(b)


def test_no_grid_energy_passed_to_another_hub(scenario_factory):
    # (6): hub B needs 80 kW with a 50 kW contract; hub A has no generation and a 100 kW contract.
    # Passing 30 kW of A's grid energy to B is forbidden → infeasible. With 30 kW of PV at A it is
    # feasible: A gives its own 30 kW and imports nothing while giving.
    cols = {"la": [0.0], "lb": [80.0], "yield": [1.0], "buy": [0.3]}
    with pytest.raises(SolveError):
        run_study(
            scenario_factory(
                cols,
                [_pv_hub("hA", 100.0, "la", 0.0), _pv_hub("hB", 50.0, "lb", 0.0)],
                community="physical",
            )
        )
    r = run_study(
        scenario_factory(
            cols,
            [_pv_hub("hA", 100.0, "la", 30.0), _pv_hub("hB", 50.0, "lb", 0.0)],
            community="physical",
        )
    )
    b = r.design.built
    assert _val(b, "hA_link", "p_to_kw", ("d1", 0)) == pytest.approx(30.0, abs=1e-5)
    assert res.series(b, "hA_grid", "p_import_kw")[("d1", 0)] == pytest.approx(0.0, abs=1e-6)
    assert res.series(b, "hB_grid", "p_import_kw")[("d1", 0)] == pytest.approx(50.0, abs=1e-5)
    _closed(b)


def test_no_other_hubs_energy_passed_to_the_grid(scenario_factory):
    # (7): hub A has 100 kW of PV and a 20 kW contract; hub B has no load and a 100 kW contract;
    # sale 0.10 €/kWh. Without (7) A would give 80 kW to B for B to sell. With (7) a hub that takes
    # does not export: total export 20 kW (A's contract), B exports nothing.
    path = scenario_factory(
        {"la": [0.0], "lb": [0.0], "yield": [1.0], "buy": [0.3]},
        [_pv_hub("hA", 20.0, "la", 100.0), _pv_hub("hB", 100.0, "lb", 0.0)],
        community="physical",
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.10},
    )
    r = run_study(path)
    b = r.design.built
    assert res.series(b, "hA_grid", "p_export_kw")[("d1", 0)] == pytest.approx(20.0, abs=1e-5)
    assert res.series(b, "hB_grid", "p_export_kw")[("d1", 0)] == pytest.approx(0.0, abs=1e-6)
    _closed(b)
