"""One AI cluster in both modes: the design's sized cluster (:class:`AiSizing`: an inference floor
and a daily batch energy inside a deadline window) and the operation cluster (the same floor, the
batch as one job with the same energy and window) plan the same batch hours at the same cost when
they are given the same day of prices and load as a perfect forecast.

What differs by construction (see ems/techs/ai_cluster.py):

- design values the compute it delivers (``revenue_compute``, € per MWh drawn); with the size
  fixed the energy drawn is fixed (floor × 24 h + the batch energy), so it is a constant and is
  left out of both sides (asserted to be that constant);
- design must run the whole batch energy (an equality); operation may miss a job's energy at a
  penalty (``missed_kwh``), which it does not when the window has room (asserted: nothing missed);
- the design's windows repeat every day of the typical day set; operation has jobs with a window
  in horizon steps, and takes its cluster's rated power and floor from SITE.yaml in kW.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from adapters.config_io import load_scenario
from design.study import run_study
from ems.model import results as res
from ems.operation.assembly import operation_setup
from ems.operation.controller import Controller, StepInput
from ems.operation.site import SiteConfig
from ems.techs.ai_cluster import BatchJob
from tests.design.conftest import CATALOGUE, make_scenario
from tests.techs.test_contract import _dispatch_cost

UNIT_KW, UNITS, FLOOR_FRACTION, BATCH_H = 10.0, 2, 0.25, 2.5
RATED_KW = UNIT_KW * UNITS  # 20 kW
FLOOR_KW = FLOOR_FRACTION * RATED_KW  # 5 kW always on; 15 kW of room for batch work
BATCH_KWH = BATCH_H * RATED_KW  # 50 kWh a day
VALUE_EUR_PER_MWH = 120.0
LOAD = 10.0
#: €/kWh by hour: the night is the cheapest (hour 3, then 4), but inside 8–20 the cheapest hours
#: are 12 (0.10), 13 (0.11), 14 (0.12), then 11 (0.14).
BUY = (
    [0.05, 0.05, 0.05, 0.03, 0.04, 0.05, 0.05, 0.05]
    + [0.30, 0.25, 0.20, 0.14, 0.10, 0.11, 0.12, 0.16, 0.22, 0.26, 0.28, 0.30]
    + [0.05] * 4
)
#: (windows (start_h, end_h, share), hand-checked batch kW by hour; 15 kW of room above the floor)
CASES = {
    # all 50 kWh in 8–20: 15 kW in hours 12, 13, 14 and the remaining 5 kWh in hour 11
    "one window": ([(8, 20, 1.0)], {12: 15.0, 13: 15.0, 14: 15.0, 11: 5.0}),
    # half any time of the day (hours 3 and 4 at night), half in 8–20 (hours 12 and 13): the
    # windows overlap, and the hours of 8–20 must not count for both (the bug this test found)
    "overlapping windows": (
        [(0, 24, 0.5), (8, 20, 0.5)],
        {3: 15.0, 4: 10.0, 12: 15.0, 13: 10.0},
    ),
}


def _scenario(tmp: Path, windows: list[tuple[int, int, float]]) -> Path:
    cat = {"entries": dict(CATALOGUE["entries"])}
    cat["entries"]["gpu"] = {
        "kind": "ai_cluster",
        "unit_kw": UNIT_KW,
        "capex_eur_per_unit": 1000.0,
        "lifetime_y": 10,
    }
    hub = {
        "id": "h1",
        "contract_kw": 100.0,
        "electricity": {"column": "load"},
        "ai_cluster": {  # the size is fixed: existing units = max units
            "type": "gpu",
            "max_units": UNITS,
            "existing_units": UNITS,
            "floor_fraction": FLOOR_FRACTION,
            "batch_hours_per_day": BATCH_H,
            "windows": [[float(a), float(b), share] for a, b, share in windows],
            "compute_value_eur_per_mwh": VALUE_EUR_PER_MWH,
        },
    }
    return make_scenario(tmp, {"load": [LOAD] * 24, "buy": BUY}, [hub], catalogue=cat)


@pytest.mark.parametrize("case", list(CASES))
def test_design_and_operation_cluster_plan_the_same_batch_hours(tmp_path: Path, case: str) -> None:
    windows, batch_kw = CASES[case]
    path = _scenario(tmp_path, windows)
    r = run_study(path, mip_rel_gap=0.0)
    built = r.design.built
    ai = built.tech("h1_ai_cluster")
    assert ai.sizes()["kw"] == pytest.approx(RATED_KW)
    design_kw = np.array([pyo.value(ai.block.p_kw["d1", t]) for t in range(24)])
    expect = np.full(24, FLOOR_KW)  # hand-checked: the floor all day, the batch in its hours
    for h, kw in batch_kw.items():
        expect[h] += kw
    assert (expect - FLOOR_KW).sum() == pytest.approx(BATCH_KWH)
    assert design_kw == pytest.approx(expect, abs=1e-6)
    weight = built.ctx.grid.annual_factor(built.ctx.grid.periods[0])  # 365 d × 1 h
    design_day = _dispatch_cost(built) / weight
    assert design_day == pytest.approx(float(np.dot(expect + LOAD, BUY)), rel=1e-9)
    # the compute value is a constant given the energy: left out of both sides
    day_mwh = (FLOOR_KW * 24 + BATCH_KWH) / 1000.0
    assert pyo.value(built.model.cost_revenue_compute) == pytest.approx(
        weight * day_mwh * VALUE_EUR_PER_MWH, rel=1e-9
    )

    # operation: the same day from midnight, the cluster from SITE.yaml, a job per window
    s, cat = load_scenario(path)
    sizes: dict = {}
    for t in built.techs:
        sizes.setdefault(t.hub, {}).update(t.size_entry())
    site = SiteConfig(
        community="t",
        scenario=str(path),
        sizes=str(tmp_path / "s.yaml"),
        step_min=60,
        horizon_h=24,
        ai_clusters=[{"id": "gpu1", "hub": "h1", "rated_kw": RATED_KW, "floor_kw": FLOOR_KW}],
    )
    setup = operation_setup(site, s, cat, sizes=sizes)
    ctl = Controller(setup, n_steps=24, dt_h=1.0, time_limit_s=20.0, mip_rel_gap=0.0)
    jobs = [BatchJob(f"w{i}", share * BATCH_KWH, a, b) for i, (a, b, share) in enumerate(windows)]
    inp = StepInput(
        pd.Timestamp("2025-03-03 00:00", tz="UTC"),
        {"h1": np.full(24, LOAD)},
        {},
        np.array(BUY),
        np.zeros(24),
        device_state={("h1", "ai_cluster", "gpu1"): jobs},
    )
    out = ctl.step(inp)
    assert out.mode == "optimal", out.alerts
    op_kw = out.plan["h1.ai_kw"].to_numpy()
    assert op_kw == pytest.approx(expect, abs=1e-6)
    for a, b, _share in windows:  # the same energy in each window
        assert op_kw[a:b].sum() == pytest.approx(design_kw[a:b].sum(), abs=1e-6)
    assert out.short_kwh["ai_missed_kwh"]["gpu1"] == pytest.approx(0.0, abs=1e-9)
    assert _dispatch_cost(ctl.built) == pytest.approx(design_day, rel=1e-3)
    d_import = res.series(built, "h1_grid", "p_import_kw")
    design_import = np.array([d_import[("d1", t)] for t in range(24)])
    assert out.plan["h1.import_kw"].to_numpy() == pytest.approx(design_import, abs=1e-6)
