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
