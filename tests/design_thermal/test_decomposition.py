"""Benders decomposition of the relaxed sizing pass over typical days (design/decomposition.py),
checked on a hand-computed two-day instance against the monolithic sizing pass.

Hub h1: electricity 60 kW at 0.30 €/kWh, gas 0.05 €/kWh, an existing boiler (η 0.9), up to
two ``chp100`` units (fuel = 2.25·P + 25·u kW, heat = 0.5·fuel, min load 50 kWe, 100,000 € per
unit over 10 years at 0 % interest = 10,000 €/y). One 24-h step per typical day, each day
weighted 182.5 days (4,380 h):
  d1 (winter): heating 200 kW. One unit at 60 kWe: fuel 160 kW (8 €/h), CHP heat 80 kW, boiler
      120/0.9 kW of gas (6.667 €/h): 14.667 €/h, against 18 + 200/0.9·0.05 = 29.111 €/h without.
  d2 (summer): no heat, so the engine cannot run (its heat must be used): 18 €/h.
Optimum: one unit, 10,000 + 4,380·(14.667 + 18) = 153,080 €/y.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
import yaml

from adapters.config_io import load_scenario
from design import decomposition as dc
from design.data import prepare
from design.study import benders_sizing, build_day, run_study, yield_columns
from ems.model.assembly import techs_from_scenario
from ems.model.builder import ObjectiveSpec, build_model, relax_operational_integers
from ems.model.solve import SolverSession
from tests.design_thermal.conftest import CATALOGUE

HOURS = 4380.0
OPTIMUM = 10_000.0 + HOURS * (8.0 + 120 / 0.9 * 0.05 + 18.0)


def _two_days(tmp: Path, solver: dict | None = None) -> Path:
    days = pd.DataFrame(
        {
            "day": ["d1", "d2"],
            "hour": [0, 0],
            "load": [60.0, 60.0],
            "heat": [200.0, 0.0],
            "buy": [0.30, 0.30],
        }
    )
    days.to_csv(tmp / "days.csv", index=False)
    (tmp / "catalogue.yaml").write_text(yaml.safe_dump(CATALOGUE))
    scenario = {
        "name": "two_days",
        "community": "independent",
        "catalogue": "catalogue.yaml",
        "site": {"lat": 44.4, "lon": 8.96},
        "time": {
            "typical_days_csv": "days.csv",
            "weights": {"d1": 182.5, "d2": 182.5},
            "dt_h": 24.0,
        },
        "hubs": [
            {
                "id": "h1",
                "contract_kw": 200.0,
                "electricity": {"column": "load"},
                "heating": {"column": "heat"},
                "chp": [{"type": "chp100", "max_units": 2}],
                "boilers": [{"type": "boil", "existing_kw": 400.0}],
            }
        ],
        "prices": {"purchase_column": "buy", "sale_eur_per_kwh": 0.0, "gas_eur_per_kwh": 0.05},
        "finance": {"interest_rate": 0.0},
        "solver": solver or {"mip_rel_gap": 0.0, "time_limit_s": 60, "threads": 1},
    }
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def _models(path: Path):
    s, cat = load_scenario(path)
    study = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}
    obj = ObjectiveSpec()
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=False, peaks=peaks)
    full = build_model(techs, study.grid, study.data, interest_rate=0.0, limits=limits)
    relax_operational_integers(full)
    days = []
    for p in study.grid.periods:
        day = build_day(s, cat, study, p, obj, False, peaks)
        relax_operational_integers(day)
        days.append(day)
    return full, days


def _units(built) -> float:
    return built.tech("h1_chp100").sizes()["n_units"]


def test_benders_reaches_the_monolithic_optimum_exactly(tmp_path):
    full, days = _models(_two_days(tmp_path))
    r = dc.solve_benders(full, days, dc.BendersOptions(gap=0.0, threads=1))
    assert r.stop == "gap"
    assert r.upper_eur == pytest.approx(OPTIMUM, rel=1e-7)
    assert r.lower_eur == pytest.approx(OPTIMUM, rel=1e-6)
    assert r.lower_eur <= r.upper_eur + 1e-6
    assert _units(full) == pytest.approx(1.0)
    # the loaded plan is the relaxed plan at those sizes: the full model's objective agrees
    assert pyo.value(full.model.obj) == pytest.approx(r.upper_eur, rel=1e-9)
    mono, _days = _models(_two_days(tmp_path))
    rec = SolverSession(mono.model, mip_rel_gap=0.0, time_limit_s=60, threads=1).solve("mono")
    assert rec.objective == pytest.approx(r.upper_eur, rel=1e-7)
    assert _units(mono) == pytest.approx(_units(full))


def test_cuts_are_subgradients_of_the_day_value(tmp_path):
    # θ_d(s) ≥ θ_d(s̄) + g·(s − s̄) for every pair of trial sizes (convex value function), and a
    # cut is exact at its own point. On d1: θ(0) = 4,380·29.111, θ(1) = 4,380·14.667.
    full, days = _models(_two_days(tmp_path))
    names = sorted(h.units.name for h in full.ctx.sizes.values() if h.is_variable)
    lp = dc.DayLP(days[0], names, threads=1)
    k = names.index("tech_h1_chp100.n_units")
    points = [np.zeros(len(names)) for _ in range(4)]
    for s, units in zip(points, (0.0, 0.5, 1.0, 2.0), strict=True):
        s[k] = units
    for s in points:  # the boiler's existing size is a (fixed-bound) size too
        for i in range(len(names)):
            if i != k:
                s[i] = lp.h.getLp().col_lower_[lp.size_cols[i]]
    values = {}
    for s in points:
        theta, g = lp.evaluate(s)
        values[s[k]] = (theta, g.copy(), s)
    assert values[0.0][0] == pytest.approx(HOURS * (18.0 + 200 / 0.9 * 0.05), rel=1e-7)
    assert values[1.0][0] == pytest.approx(HOURS * (8.0 + 120 / 0.9 * 0.05), rel=1e-7)
    for theta_bar, g, s_bar in values.values():
        for theta, _g, s in values.values():
            assert theta >= theta_bar + g @ (s - s_bar) - 1e-6 * abs(theta)


def test_study_with_benders_matches_the_relaxed_monolith_and_verifies(tmp_path):
    solver = {"mip_rel_gap": 0.0, "time_limit_s": 60, "threads": 1, "sizing": "benders"}
    r = run_study(_two_days(tmp_path, solver))
    v = r.verification
    assert r.design.record.termination == "convergenceCriteriaSatisfied"
    assert r.design.record.bound == pytest.approx(OPTIMUM, rel=1e-6)
    assert _units(r.design.built) == pytest.approx(1.0)
    # verified integer plan = the hand-computed optimum (the relaxation is exact here)
    assert v is not None and len(v["days"]) == 2
    assert v["verified_objective"] == pytest.approx(OPTIMUM, rel=1e-6)
    assert v["proven_gap_pct"] == pytest.approx(0.0, abs=1e-4)
    assert v["days_at_time_limit"] == []


def test_safety_net_is_reported(tmp_path):
    # a time limit that cannot be met: the answer is still feasible sizes with a valid bound, and
    # both the result and the record's line say the stop was the wall clock, not the gap
    path = _two_days(tmp_path)
    s, cat = load_scenario(path)
    study = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}
    full, _days = _models(path)
    rec, r = benders_sizing(
        s, cat, study, full, ObjectiveSpec(), False, peaks, gap=0.0, time_limit_s=0.0, log=print
    )
    assert r.stop == "time limit (safety net)" and "time limit" in dc.summary(r)
    assert rec.termination == "maxTimeLimit" and rec.hit_time_limit
    assert "SAFETY NET" in rec.line()
    assert r.lower_eur <= OPTIMUM + 1e-6 <= r.upper_eur + 2e-6


def _one_day_small_load(tmp: Path, solver: dict | None = None) -> Path:
    """Day d1 only, all year: 30 kWe and 200 kW of heat; ≤ 1 chp100 (minimum 50 kWe) and ≤ 1
    chp20 (fuel = 2.25·P + 5·u, heat = 0.5·fuel, 2,000 €/y)."""
    path = _two_days(tmp, solver)
    days = pd.DataFrame({"day": ["d1"], "hour": [0], "load": [30.0], "heat": [200.0], "buy": [0.3]})
    days.to_csv(tmp / "days.csv", index=False)
    sc = yaml.safe_load(path.read_text())
    sc["time"]["weights"] = {"d1": 365.0}
    sc["hubs"][0]["chp"] = [{"type": "chp100", "max_units": 1}, {"type": "chp20", "max_units": 1}]
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    return path


# Hand-computed integer operating cost of that day, €/h (8,760 h/y, gas 0.05 €/kWh, boiler η 0.9,
# no sale price), by units (chp100, chp20):
#   (0, 0): grid 30·0.30 + boiler 200/0.9·0.05 = 20.111;
#   (0, 1): chp20 at 20 kWe (cost 20.222 − 0.25·P falls with P): fuel 50 kW (2.5), heat 25 kW,
#           grid 10 kW (3.0), boiler 175/0.9·0.05 (9.722): 15.222;
#   (1, 0): chp100 at its 50 kWe minimum (cost 11.667 + 0.05·P rises with P; 20 kW exported for
#           nothing): fuel 137.5 kW (6.875), heat 68.75 kW, boiler 131.25/0.9·0.05 (7.292): 14.167;
#   (1, 1): the chp100 alone (both on: 14.778): 14.167.
# Optimum: the chp100 alone, 10,000 + 8,760·14.167 = 134,100 €/y. The relaxation mixes fractions
# of both engines at full load and is ≈ 11 k€/y cheaper at (1, 1).
YEAR_H = 8760.0
THETA_INT = {
    (0, 0): YEAR_H * (9.0 + 200 / 0.9 * 0.05),
    (0, 1): YEAR_H * (2.5 + 3.0 + 175 / 0.9 * 0.05),
    (1, 0): YEAR_H * (6.875 + 131.25 / 0.9 * 0.05),
}
THETA_INT[(1, 1)] = THETA_INT[(1, 0)]
INT_OPTIMUM = 10_000.0 + THETA_INT[(1, 0)]


def _integer_day_value(day, names: list[str], sizes: np.ndarray) -> float:
    """θ_d(s) of the integer day (sizes held by their bounds), as DayLP defines it for the LP."""
    from pyomo.contrib.solver.solvers.highs import Highs

    opt = Highs()
    opt.set_instance(day.model)
    h = opt._solver_model
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    by_name = {v.name: v for v in day.model.component_data_objects(pyo.Var, descend_into=True)}
    cols = np.array([opt._pyomo_var_to_solver_var_map[id(by_name[n])] for n in names])
    h.changeColsBounds(len(cols), cols.astype(np.int32), sizes, sizes)
    h.run()
    x = np.array(h.getSolution().col_value)
    cost = np.array(h.getLp().col_cost_)
    op = np.ones(len(x), dtype=bool)
    op[cols] = False
    return float(cost[op] @ x[op])


def _one_day_lp(tmp_path: Path):
    """The one-day instance: a builder of its day model, the size names, its relaxed day LP, the
    indices of the two engine counts and ``at(n)``, the size vector with the engines at n (the
    boiler held by its bounds)."""
    s, cat = load_scenario(_one_day_small_load(tmp_path))
    study = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}

    def day():
        return build_day(s, cat, study, "d1", ObjectiveSpec(), False, peaks)

    lp_day = day()
    relax_operational_integers(lp_day)
    names = sorted(h.units.name for h in lp_day.ctx.sizes.values() if h.is_variable)
    lp = dc.DayLP(lp_day, names, threads=1)
    k100, k20 = names.index("tech_h1_chp100.n_units"), names.index("tech_h1_chp20.n_units")
    lo = np.array(lp.h.getLp().col_lower_)[lp.size_cols]

    def at(n: tuple[int, int]) -> np.ndarray:
        x = lo.copy()
        x[k100], x[k20] = n
        return x

    return day, names, lp, (k100, k20), at


def test_strengthened_cut_is_valid_and_tighter_than_the_lp_cut(tmp_path):
    # L = min over the integer day plans and sizes of θ − g·s: the cut θ ≥ L + g·s must lie on
    # or under θ_int at every integer size (the test fails if it cut off an integer point), touch
    # it at the minimiser, and lie above the LP cut at N = 1 (that is what it adds).
    day, names, lp, (k100, k20), at = _one_day_lp(tmp_path)

    for n, value in THETA_INT.items():  # the day MILP with the sizes fixed agrees with the hand
        assert _integer_day_value(day(), names, at(n)) == pytest.approx(value, rel=1e-6)
    theta_lp, g = lp.evaluate(at((1, 1)))
    assert theta_lp < THETA_INT[(1, 1)] - 5000.0  # the relaxation is loose here
    r = dc.strengthened_bound(day(), names, g, dc.StrengthenOptions(gap=0.0))
    for n, value in THETA_INT.items():
        assert r["bound"] + g @ at(n) <= value + 1e-6 * value
    assert r["bound"] == pytest.approx(min(v - g @ at(n) for n, v in THETA_INT.items()), rel=1e-6)
    assert r["bound"] + g @ at((1, 1)) > theta_lp + 1000.0


def test_configuration_cut_is_exact_for_its_engines_and_implied_elsewhere(tmp_path):
    # the engine counts held at (1, 1) (a configuration): L + g·s is valid for the sizes with
    # that configuration and, here, exact (the day's only other size is the existing boiler);
    # in the master the lifted row binds at (1, 1) only, and elsewhere the plain cut stands
    day, names, lp, (k100, k20), at = _one_day_lp(tmp_path)

    above_global = []
    for n in THETA_INT:
        theta_n, g_n = lp.evaluate(at(n))
        held = {names[k100]: float(n[0]), names[k20]: float(n[1])}
        r = dc.strengthened_bound(day(), names, g_n, dc.StrengthenOptions(gap=0.0), held)
        assert r["bound"] + g_n @ at(n) == pytest.approx(THETA_INT[n], rel=1e-6)
        everywhere = dc.strengthened_bound(day(), names, g_n, dc.StrengthenOptions(gap=0.0))
        above_global.append(r["bound"] - everywhere["bound"])
    assert min(above_global) >= -1e-6 and max(above_global) > 1000.0  # tighter than the cut
    # valid everywhere, where the relaxation's slope does not point at the integer optimum

    s_bar = at((1, 1))
    theta_lp, g = lp.evaluate(s_bar)
    held = {names[k100]: 1.0, names[k20]: 1.0}
    r = dc.strengthened_bound(day(), names, g, dc.StrengthenOptions(gap=0.0), held)

    full = _models(_one_day_small_load(tmp_path))[0]
    relax_operational_integers(full)
    master, _lb, _ub = dc.build_master(full, names, 1, threads=1, seed=0)
    commitment = {h.units.name for h in full.ctx.sizes.values() if h.commitment}
    assert commitment == {names[k100], names[k20]}  # the CHPs declare their unit counts
    master.config = [k100, k20]
    lift = r["bound"] - (theta_lp - g @ s_bar)
    master.add_cut(0, theta_lp, g, s_bar)  # the LP cut, as Benders added it at s̄
    master.add_cut(0, theta_lp, g, s_bar, lift=lift, held=[k100, k20])
    for n in THETA_INT:  # θ's least value with the sizes held at n
        x = at(n)
        master.h.changeColsBounds(len(x), np.arange(len(x), dtype=np.int32), x, x)
        _s, _obj, _bound = master.solve(False, gap=0.0, max_nodes=1000)
        theta = master.h.getSolution().col_value[len(x)]
        plain = theta_lp + g @ (x - s_bar)
        want = plain + lift if n == (1, 1) else plain
        assert theta == pytest.approx(want, rel=1e-7)
        assert theta <= THETA_INT[n] * (1 + 1e-7)  # valid: never above the integer day


def test_strengthened_rounds_close_the_relaxation_gap(tmp_path):
    # the relaxed sizing pass picks both engines and stops well below the integer optimum;
    # strengthened cuts lift its bound towards the hand-computed 134,100 €/y (never above it: a
    # valid bound); lifted at (1, 1) (verified 12,000 + θ_int(1, 1)), the master moves to the
    # chp100 alone, whose verified plan is the integer optimum
    solver = {"mip_rel_gap": 0.0, "time_limit_s": 60, "threads": 1, "sizing": "benders"}
    relaxed = run_study(_one_day_small_load(tmp_path, solver))
    assert relaxed.design.record.bound < INT_OPTIMUM - 1000.0
    solver |= {"strengthen_rounds": 3}
    r = run_study(_one_day_small_load(tmp_path, solver))
    v = r.verification
    before, after = relaxed.design.record.bound, r.design.record.bound
    assert after <= INT_OPTIMUM + 1e-6 * INT_OPTIMUM
    assert INT_OPTIMUM - after < 0.1 * (INT_OPTIMUM - before)  # ≥ 90 % of the gap closed
    verified = INT_OPTIMUM
    assert v["verified_objective"] == pytest.approx(verified, rel=1e-6)
    assert v["candidates"] >= 2  # (1, 1) first, then the optimum
    assert v["proven_gap_pct"] == pytest.approx(100 * (verified - after) / verified)
    assert v["proven_gap_pct"] < relaxed.verification["proven_gap_pct"] - 5.0
    assert _units(r.design.built) == pytest.approx(1.0)
    assert r.design.built.tech("h1_chp20").sizes()["n_units"] == pytest.approx(0.0)


def test_strengthening_stops_when_a_verified_plan_proves_the_gap(tmp_path):
    # the first candidate's verified plan (12,000 + θ_int(1, 1)) against the relaxed bound is
    # within a 10 % proven gap: the round's cuts are dropped and no second round runs
    solver = {"mip_rel_gap": 0.0, "time_limit_s": 60, "threads": 1, "sizing": "benders"}
    relaxed = run_study(_one_day_small_load(tmp_path, solver))
    solver |= {"strengthen_rounds": 3, "proven_gap": 0.1}
    r = run_study(_one_day_small_load(tmp_path, solver))
    v = r.verification
    assert v["candidates"] == 1
    assert r.design.record.bound == pytest.approx(relaxed.design.record.bound, rel=1e-9)
    assert v["verified_objective"] == pytest.approx(12_000.0 + THETA_INT[(1, 1)], rel=1e-6)
    assert v["proven_gap_pct"] <= 10.0
    # a tighter target needs the cuts: they run, and find the optimum
    solver |= {"proven_gap": 0.001}
    r = run_study(_one_day_small_load(tmp_path, solver))
    assert r.verification["verified_objective"] == pytest.approx(INT_OPTIMUM, rel=1e-6)


def test_direct_solve_keeps_the_process_thread_count(tmp_path):
    # HiGHS runs one task scheduler per process, sized by its first run: a later run asking for
    # another thread count fails (run() returns an error). highs_direct.solve, like
    # SolverSession, uses the process's first count whatever the caller asks
    from ems.model import highs_direct
    from ems.model.solve import _process_threads

    s, cat = load_scenario(_two_days(tmp_path))
    study = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}
    first = _process_threads(1)  # this process's count (set by an earlier run, or now)
    for threads in (first, first + 1):
        day = build_day(s, cat, study, "d1", ObjectiveSpec(), False, peaks, verification=True)
        for h in day.ctx.sizes.values():
            if h.is_variable:
                h.units.fix(max(h.units.lb or 0, 1))
        rec = highs_direct.solve(
            highs_direct.load(day.model),
            "verify d1",
            None,
            time_limit_s=60,
            options={"mip_rel_gap": 0.0, "threads": threads},
        )
        assert rec.status == "optimal"


def _persistent_lp(model):
    from pyomo.contrib.solver.solvers.highs import Highs

    opt = Highs()
    opt.set_instance(model)
    return opt


def test_direct_highs_builds_the_persistent_interfaces_lp_bit_for_bit(tmp_path):
    # the day LPs and verification days go to HiGHS without Pyomo's persistent interface
    # (issue 17, build time): the same columns, rows, bounds, costs and offset, so the same answers
    from ems.model import highs_direct

    path = _two_days(tmp_path)
    s, cat = load_scenario(path)
    study = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}
    full, days = _models(path)
    verify = build_day(s, cat, study, "d1", ObjectiveSpec(), False, peaks, verification=True)
    for h in verify.ctx.sizes.values():  # sizes fixed: fixed columns, as in the verification
        if h.is_variable:
            h.units.fix(max(h.units.lb or 0, 1))  # one CHP unit, the existing boiler
    for built in [full, *days, verify]:
        opt = _persistent_lp(built.model)
        direct = highs_direct.load(built.model)
        assert highs_direct.same_lp(opt._solver_model, direct.h) == []
        assert direct.col_of == opt._pyomo_var_to_solver_var_map
    # and the solve reports what SolverSession reports, the plan loaded into the model
    rec = highs_direct.solve(
        highs_direct.load(verify.model),
        "verify d1",
        None,
        time_limit_s=60,
        options={"mip_rel_gap": 0.0, "threads": 1},
    )
    values = {v.name: v.value for v in verify.model.component_data_objects(pyo.Var)}
    ref = SolverSession(verify.model, mip_rel_gap=0.0, time_limit_s=60, threads=1).solve("v")
    assert (rec.status, rec.termination) == (ref.status, ref.termination)
    assert rec.objective == ref.objective and rec.bound == ref.bound
    assert values == {v.name: v.value for v in verify.model.component_data_objects(pyo.Var)}
