"""The design's valid inequalities on CHP units on (``ChpOffCover``, ``ChpHeatSink``) in the
operation model's relaxed tail: coefficients refreshed from each step's forecasts (no rebuild),
never cutting off an integer plan, and tightening the relaxed tail.

CHP ``chp100`` (tests/design_thermal catalogue): fuel = 2.25·P + 25·u (kW), heat = 0.5·fuel (125 kW
at full load), 50 kWe minimum load per unit on. Boiler ``boil``: η 0.9. Gas 0.05 €/kWh, sale 0.
One hub, 1-h steps, a 4-step horizon; the objective is the horizon's cost in €.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from adapters.config_io import load_scenario
from ems.operation.assembly import operation_setup
from ems.operation.controller import Controller, StepInput
from ems.operation.site import SiteConfig
from ems.techs.chp import Chp, ChpHeatSink, ChpOffCover
from tests.design_thermal.conftest import make_scenario

N = 4
START = pd.Timestamp("2025-01-15 08:00", tz="UTC")


def _controller(
    tmp: Path,
    units: int = 1,
    integer_steps: int | None = 1,
    cuts: str = "tail",
    highs: dict[str, Any] | None = None,
) -> Controller:
    cols = {"load": [60.0] * 24, "heat": [200.0] * 24, "buy": [0.3] * 24, "t_amb_c": [5.0] * 24}
    hub = {
        "id": "h1",
        "contract_kw": 400.0,
        "electricity": {"column": "load"},
        "heating": {"column": "heat"},
        "chp": [{"type": "chp100", "max_units": units}],
        "boilers": [{"type": "boil", "existing_kw": 400}],
    }
    path = make_scenario(
        tmp,
        cols,
        [hub],
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.0, "gas_eur_per_kwh": 0.05},
    )
    site = SiteConfig(
        community="t", scenario=str(path), sizes=str(tmp / "sizes.yaml"), step_min=60, horizon_h=N
    )
    scenario, cat = load_scenario(path)
    sizes = {"chp100": {"n_units": units}, "boil": {"kw": 400}}
    return Controller(
        operation_setup(site, scenario, cat, sizes={"h1": sizes}),
        n_steps=N,
        dt_h=1.0,
        time_limit_s=30.0,
        mip_rel_gap=0.0,
        mip_abs_gap_eur=0.0,
        integer_steps=integer_steps,
        relaxation_cuts=cuts,  # type: ignore[arg-type]
        highs_options=highs,
    )


def _inp(load: Any = 60.0, heat: Any = 200.0, buy: float = 0.30) -> StepInput:
    return StepInput(
        START,
        {"h1": np.broadcast_to(np.asarray(load, dtype=float), (N,)).copy()},
        {},
        np.full(N, buy),
        np.full(N, 0.0),
        columns={
            "heat": np.broadcast_to(np.asarray(heat, dtype=float), (N,)).copy(),
            "t_amb_c": np.full(N, 5.0),
        },
    )


def _cut(ctl: Controller, carrier: str) -> ChpOffCover:
    return next(
        t for t in ctl.setup.techs_of(ChpOffCover) if t.name.startswith(f"chp_off_{carrier}")
    )


def _solver_row(ctl: Controller, con: Any, var: Any) -> tuple[float, float]:
    """(lower bound, coefficient of ``var``) of a constraint's row as HiGHS holds it."""
    solver = ctl.session.solver
    row = solver._pyomo_con_to_solver_con_map[con]
    col = solver._pyomo_var_to_solver_var_map[id(var)]
    h = solver._solver_model
    rows = np.array([row], dtype=np.int32)
    _st, _n, lower, _upper, _nz = h.getRows(1, rows)
    _st, _start, index, value = h.getRowsEntries(1, rows)
    coef = dict(zip(index.tolist(), value.tolist(), strict=True)).get(col, 0.0)
    if np.isinf(lower[0]):  # held as −(…) ≤ −bound
        return -float(_upper[0]), -float(coef)
    return float(lower[0]), float(coef)


def test_cut_coefficients_follow_the_forecast_between_steps(tmp_path: Path) -> None:
    """Electric load L = k·U + r with U = 100 kWe, heat load with U = 125 kW: the Params (and the
    rows HiGHS solves) take each step's forecast — no rebuild, the same model."""
    ctl = _controller(tmp_path, units=2)
    el, heat = _cut(ctl, "electricity"), _cut(ctl, "heat")
    u = ctl.setup.first(Chp, "h1").block.u_on
    n_components = ctl.component_count()
    for load, q in ((60.0, 200.0), (230.0, 100.0)):
        res = ctl.step(_inp(load=load, heat=q))
        assert res.mode == "optimal", res.alerts
        for cut, total, unit in ((el, load, 100.0), (heat, q, 125.0)):
            b, k = cut.block, ("h", 2)  # a tail step
            units, rest = total // unit, total - (total // unit) * unit
            assert pyo.value(b.units_k[k]) == pytest.approx(units)
            assert pyo.value(b.uncovered_kw[k]) == pytest.approx(rest)
            assert pyo.value(b.unit_weight_kw[0, k[0], k[1]]) == pytest.approx(min(rest, unit))
            # the solver's row: Σ other − (−w·u) ≥ r·(k + 1), i.e. w·u + Σ other ≥ r·(k + 1)
            lower, coef = _solver_row(ctl, b.covered_when_off[k], u[k])
            assert lower == pytest.approx(rest * (units + 1))
            assert coef == pytest.approx(min(rest, unit))
    assert ctl.component_count() == n_components


def test_heat_sink_cut_follows_the_heat_forecast(tmp_path: Path) -> None:
    ctl = _controller(tmp_path)
    sink = ctl.setup.techs_of(ChpHeatSink)[0]
    for q in (200.0, 80.0):
        assert ctl.step(_inp(heat=q)).mode == "optimal"
        assert pyo.value(sink.block.heat_load_kw["h", 3]) == pytest.approx(q)


def test_cuts_keep_the_integer_optimum_and_raise_the_relaxed_tail_bound(tmp_path: Path) -> None:
    """Load 60 kW at 0.30 €/kWh, heating 200 kW, one chp100, boiler backup. Integer optimum per
    hour: the unit at 60 kWe, fuel 160 kW (8 €) + boiler 120/0.9 kW of gas (6.667 €) = 14.667 €.
    Relaxed, the tail runs 0.6 "unit" at full-load efficiency: fuel 150 kW (7.5 €), heat 75 kW,
    boiler 125/0.9 kW (6.944 €) = 14.444 €/h. The electric cut (import + slack ≥ 60·(1 − u))
    prices the fraction: the relaxed-tail bound becomes the integer optimum."""
    integer_h, relaxed_h = 8.0 + 120 / 0.9 * 0.05, 7.5 + 125 / 0.9 * 0.05
    got = {}
    for name, steps, cuts in (
        ("int_off", None, "off"),
        ("int_all", None, "all"),
        ("tail_off", 1, "off"),
        ("tail_cut", 1, "tail"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        res = _controller(folder, integer_steps=steps, cuts=cuts).step(_inp())
        assert res.mode == "optimal", res.alerts
        got[name] = res.record
    assert got["int_off"].objective == pytest.approx(N * integer_h, rel=1e-6)
    assert got["int_all"].objective == pytest.approx(got["int_off"].objective, rel=1e-9)
    assert got["tail_off"].bound == pytest.approx(integer_h + (N - 1) * relaxed_h, rel=1e-6)
    assert got["tail_cut"].bound == pytest.approx(N * integer_h, rel=1e-6)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cuts_never_cut_off_an_integer_plan(tmp_path: Path, seed: int) -> None:
    """Random forecasts, two units: the all-integer optimum is the same with the cuts on every
    step as without them; the relaxed tail's bound with them lies between the bound without them
    and the integer optimum."""
    rng = np.random.default_rng(seed)
    inp = _inp(load=rng.uniform(0, 260, N), heat=rng.uniform(0, 320, N), buy=rng.uniform(0.1, 0.4))
    out = {}
    for name, steps, cuts in (
        ("int_off", None, "off"),
        ("int_all", None, "all"),
        ("tail_off", 1, "off"),
        ("tail_cut", 1, "tail"),
    ):
        folder = tmp_path / name
        folder.mkdir()
        res = _controller(folder, units=2, integer_steps=steps, cuts=cuts).step(inp)
        assert res.mode == "optimal", res.alerts
        out[name] = res.record
    best = out["int_off"].objective
    assert out["int_all"].objective == pytest.approx(best, rel=1e-7, abs=1e-6)
    tol = 1e-7 * abs(best) + 1e-6
    assert out["tail_off"].bound - tol <= out["tail_cut"].bound <= best + tol


def test_cut_rows_per_setting(tmp_path: Path) -> None:
    """Three cuts per step (electric and heat cover, heat sink): ``tail`` keeps them on the relaxed
    steps only (none without a relaxed tail), ``all`` on every step, ``off`` (the default) none."""
    rows = {}
    for name, steps, cuts in (
        ("a", None, "tail"),
        ("b", 1, "tail"),
        ("c", 1, "all"),
        ("d", 1, "off"),
    ):
        (tmp_path / name).mkdir()
        rows[name] = _controller(tmp_path / name, integer_steps=steps, cuts=cuts).cut_rows
    assert rows == {"a": 0, "b": 3 * (N - 1), "c": 3 * N, "d": 0}


def test_site_option_and_the_shipped_15min_site(tmp_path: Path) -> None:
    """``solver.relaxation_cuts`` in SITE.yaml (a bare YAML ``off`` reads as false: "off"); the
    15-min multi-energy site ships the cuts on every step with its 2-h integer horizon."""
    from adapters.config_io import load_operation, load_site
    from ems.errors import ConfigError
    from tests.operation.conftest import write_site

    for text, want in (("off", "off"), ("tail", "tail"), ("all", "all")):
        path = write_site(tmp_path)
        path.write_text(path.read_text().replace("solver:", f"solver:\n  relaxation_cuts: {text}"))
        assert load_site(path).solver.relaxation_cuts == want
    assert load_site(write_site(tmp_path)).solver.relaxation_cuts == "off"
    with pytest.raises(ConfigError, match="solver.relaxation_cuts"):
        load_site(write_site(tmp_path, solver={"relaxation_cuts": "some"}))
    root = Path(__file__).resolve().parents[2]
    site, _setup, _fc = load_operation(root / "adapters/sim/opera_pia_physical_site_15min.yaml")
    assert site.solver.relaxation_cuts == "all" and site.integer_steps == 8


def test_site_highs_options_are_checked_and_reach_the_solver(tmp_path: Path) -> None:
    """``solver.highs_options``: HiGHS's own names and types, refused with the field named when
    HiGHS does not know them, passed to every step's solve when it does."""
    from adapters.config_io import load_site
    from ems.errors import ConfigError
    from tests.operation.conftest import write_site

    for bad, why in (
        ({"mip_heuristic_run_zi_rounds": True}, "not a HiGHS option"),
        ({"mip_heuristic_effort": "lots"}, "not a HiGHS option"),
        ({"time_limit": 3.0}, "its own solver field"),
    ):
        with pytest.raises(ConfigError, match=f"solver.highs_options.*{why}"):
            load_site(write_site(tmp_path, solver={"highs_options": bad}))
    site = load_site(write_site(tmp_path, solver={"highs_options": {"mip_heuristic_effort": 0.5}}))
    assert site.solver.highs_options == {"mip_heuristic_effort": 0.5}
    (tmp_path / "ctl").mkdir()
    ctl = _controller(tmp_path / "ctl", highs=site.solver.highs_options)
    assert ctl.session.options["mip_heuristic_effort"] == 0.5
    assert ctl.session.options["mip_abs_gap"] == 0.0  # the controller's own options stay
    assert ctl.step(_inp()).mode == "optimal"  # and HiGHS takes them
