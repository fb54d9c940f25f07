"""One EV session in both modes: the design fleet (EvFleet, a scheduled vehicle) and the
operation charge points (EvChargePoints, the live session) plan the same charging at the same
cost when they are given the same window, need, charger and prices (no taper: the CC-CV taper
is the design's only; see ems/techs/ev_charge_points.py for the documented differences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.config_io import load_scenario
from design.study import run_study
from ems.model import results as res
from ems.operation.assembly import operation_setup
from ems.operation.controller import Controller, StepInput
from ems.operation.site import SiteConfig
from ems.techs.ev_charge_points import EvSession
from tests.design.conftest import make_scenario

ARRIVE, LEAVE, NEED = 8, 18, 30.0
#: €/kWh by hour: the cheapest hours of the stay are 12 and 13 (0.15), then 14 (0.18)
BUY = [0.30] * 8 + [0.30, 0.28, 0.25, 0.20, 0.15, 0.15, 0.18, 0.22, 0.26, 0.30] + [0.30] * 6
LOAD = 10.0


def _scenario(tmp: Path) -> Path:
    hub = {
        "id": "h1",
        "contract_kw": 100.0,
        "electricity": {"column": "load"},
        "chargers": [{"type": "v1g", "max_units": 1, "existing_units": 1}],
        "vehicles": [
            {
                "name": "van",
                "battery_kwh": 100.0,
                "soc_arrival": 0.2,
                "taper_soc": 1.0,
                "p_max_kw": 11.0,
                "need_kwh_per_day": NEED,
                "arrival_h": ARRIVE,
                "departure_h": LEAVE,
                "days": "all",
            }
        ],
    }
    return make_scenario(tmp, {"load": [LOAD] * 24, "buy": BUY}, [hub])


def test_design_fleet_and_operation_charge_points_plan_the_same_charging(tmp_path: Path) -> None:
    path = _scenario(tmp_path)
    r = run_study(path, mip_rel_gap=0.0)
    built = r.design.built
    ev = res.series(built, "h1_ev", "p_charge_kw")
    design_kw = np.array([ev[("v1g", "van", "d1", t)] for t in range(24)])
    # hand-checked: 11 kW in hours 12 and 13, the remaining 8 kWh in hour 14
    expect = np.zeros(24)
    expect[[12, 13, 14]] = [11.0, 11.0, 8.0]
    assert design_kw == pytest.approx(expect, abs=1e-6)
    design_cost = float(np.dot(design_kw, BUY))
    assert design_cost == pytest.approx(11 * 0.15 * 2 + 8 * 0.18)

    # operation: the same day from the vehicle's arrival, as a plugged session
    s, cat = load_scenario(path)
    site = SiteConfig(
        community="t", scenario=str(path), sizes=str(tmp_path / "s.yaml"), step_min=60, horizon_h=16
    )
    setup = operation_setup(site, s, cat, sizes={"h1": {"chargers": {"v1g": 1}}})
    ctl = Controller(setup, n_steps=16, dt_h=1.0, time_limit_s=20.0, mip_rel_gap=0.0)
    inp = StepInput(
        pd.Timestamp("2025-03-03 08:00", tz="UTC"),
        {"h1": np.full(16, LOAD)},
        {},
        np.array(BUY[ARRIVE:]),
        np.zeros(16),
        device_state={
            ("h1", "ev_charger", "cp1"): EvSession(NEED, LEAVE - ARRIVE, p_vehicle_kw=11.0)
        },
    )
    out = ctl.step(inp)
    assert out.mode == "optimal"
    op_kw = out.plan["h1.ev_kw"].to_numpy()
    assert op_kw == pytest.approx(expect[ARRIVE:], abs=1e-6)
    assert float(np.dot(op_kw, BUY[ARRIVE:])) == pytest.approx(design_cost, rel=1e-3)
    assert out.short_kwh["ev_short_kwh"][("h1", "cp1")] == pytest.approx(0.0, abs=1e-9)
    # the grid import of the day's remaining hours costs the same in both plans
    d_import = res.series(built, "h1_grid", "p_import_kw")
    design_rest = sum(d_import[("d1", t)] * BUY[t] for t in range(ARRIVE, 24))
    op_rest = float(np.dot(out.plan["h1.import_kw"].to_numpy(), BUY[ARRIVE:]))
    assert op_rest == pytest.approx(design_rest, rel=1e-3)
