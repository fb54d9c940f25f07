"""An AI cluster sized by design mode, hand-checked (the AI-cluster article, seed 000).

One hub, two 12 h steps a day, 40 kWp of existing PV yielding 0.5 kW/kWp in the first step and
no load: 20 kW of surplus that sells for nothing. Grid energy costs 0.30 €/kWh. A cluster unit is
10 kW for 1,000 € over 10 years (100 €/y at 0 %); batch energy = rated × 12 h a day inside its
deadline window, no inference floor. A unit running 12 h a day draws 10 × 12 × 365 = 43,800 kWh/y.
"""

from __future__ import annotations

import pytest

from design.study import run_study
from tests.design.conftest import CATALOGUE

UNIT_KWH_PER_Y = 10 * 12 * 365.0


def _catalogue():
    cat = {"entries": dict(CATALOGUE["entries"])}
    cat["entries"]["gpu"] = {
        "kind": "ai_cluster",
        "unit_kw": 10.0,
        "capex_eur_per_unit": 1000.0,
        "lifetime_y": 10,
    }
    return cat


def _study(scenario_factory, value, window):
    path = scenario_factory(
        {"load": [0.0, 0.0], "yield_a": [0.5, 0.0], "buy": [0.30, 0.30]},
        [
            {
                "id": "h1",
                "contract_kw": 100,
                "electricity": {"column": "load"},
                "pv": [{"type": "pv_a", "max_kwp": 40, "existing_kwp": 40}],
                "ai_cluster": {
                    "type": "gpu",
                    "max_units": 5,
                    "floor_fraction": 0.0,
                    "batch_hours_per_day": 12,
                    "windows": [list(window) + [1.0]],
                    "compute_value_eur_per_mwh": value,
                },
            }
        ],
        catalogue=_catalogue(),
    )
    return run_study(path)


@pytest.mark.parametrize(
    "value, window, expect_kw",
    [
        # 50 €/MWh: a unit earns 2,190 €/y on free PV surplus (> 100 €/y Capex) but a third
        # would buy 43,800 kWh at 0.30 €: exactly the surplus, 2 units
        (50.0, (0, 12), 20.0),
        # the same cluster whose batch must run at night has no PV to run on: none
        (50.0, (12, 24), 0.0),
        # compute worth more than grid energy (400 > 300 €/MWh): the maximum, 5 units
        (400.0, (0, 12), 50.0),
    ],
)
def test_cluster_is_sized_by_the_surplus_it_can_run_on(scenario_factory, value, window, expect_kw):
    r = _study(scenario_factory, value, window)
    sizes = r.design.built.tech("h1_ai_cluster").sizes()
    assert sizes["kw"] == pytest.approx(expect_kw)
    units = expect_kw / 10
    assert r.design.costs["revenue_compute"] == pytest.approx(
        units * UNIT_KWH_PER_Y * value / 1000, rel=1e-9
    )
    grid_kwh = max(expect_kw - 20.0, 0.0) * 12 * 365 if window == (0, 12) else 0.0
    expected_total = units * 100.0 + 0.30 * grid_kwh - units * UNIT_KWH_PER_Y * value / 1000
    assert r.design.costs["total"] == pytest.approx(expected_total, rel=1e-9, abs=1e-6)
    assert r.design.kpis["ai_cluster"]["h1"]["kw"] == pytest.approx(expect_kw)


@pytest.mark.parametrize(
    "batch_h, windows, match",
    [
        # 12 h of batch work above a 20 % floor cannot fit in 10 h (8 h at rated): one clear line
        (12, [[8, 18, 1.0]], r"window \(8, 18\) cannot hold"),
        # each overlapping window holds its 4 h (4.8 h at rated), both together not (8 > 6.4 h)
        (8, [[8, 14, 0.5], [10, 16, 0.5]], r"the windows inside \(8, 16\) cannot hold 1 × 8 h"),
    ],
)
def test_a_window_too_short_for_its_batch_work_is_a_config_error(
    scenario_factory, batch_h, windows, match
):
    from adapters.config_io import load_scenario
    from ems.errors import ConfigError

    path = scenario_factory(
        {"load": [0.0, 0.0], "yield_a": [0.5, 0.0], "buy": [0.3, 0.3]},
        [
            {
                "id": "h1",
                "contract_kw": 100,
                "electricity": {"column": "load"},
                "ai_cluster": {
                    "type": "gpu",
                    "max_units": 2,
                    "floor_fraction": 0.2,
                    "batch_hours_per_day": batch_h,
                    "windows": windows,
                    "compute_value_eur_per_mwh": 100,
                },
            }
        ],
        catalogue=_catalogue(),
    )
    with pytest.raises(ConfigError, match=r"hubs\[h1\]\.ai_cluster: " + match):
        load_scenario(path)


def test_cluster_in_the_report(scenario_factory, tmp_path):
    from design.report import write_outputs

    r = _study(scenario_factory, 50.0, (0, 12))
    write_outputs(r, tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<h2>AI cluster</h2>" in page and "<td>20.0</td>" in page
    sizes = (tmp_path / "out" / "sizes.yaml").read_text()
    assert "ai_cluster:" in sizes and "n_units: 2" in sizes
