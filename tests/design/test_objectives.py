"""Objectives (20), (23), (27), (28) on one tiny instance whose trade-off is computed by hand.

One hub, 10 kW load for 12 h then nothing... PV yield 0.5 kW/kWp in the first 12 h (1 step of
12 h, then 12 h of nothing). Buying costs 0.04 €/kWh, so PV (100 €/kWp/y) does not pay: each
kWp saves 0.5 × 12 × 365 = 2190 kWh/y × 0.04 = 87.6 €/y. Grid CO2 0.25 t/MWh: each kWp
avoids 2.19 MWh × 0.25 = 0.5475 t/y.
"""

from __future__ import annotations

import pytest

from design.study import run_study


def _scenario(factory, objective):
    return factory(
        {"load": [10, 0], "yield_a": [0.5, 0.0], "buy": [0.04, 0.04]},
        [
            {
                "id": "h1",
                "contract_kw": 100,
                "electricity": {"column": "load"},
                "pv": [{"type": "pv_a", "max_kwp": 50}],
            }
        ],
        extra={"objective": objective, "emissions": {"grid_t_per_mwh": 0.25}},
    )


def test_economic_objective_skips_unprofitable_pv(scenario_factory):
    r = run_study(_scenario(scenario_factory, {"kind": "economic"}))
    assert r.design.built.tech("h1_pv_a").sizes()["kwp"] == pytest.approx(0.0)


def test_environmental_objective_builds_pv_to_cover_the_load(scenario_factory):
    # minimum CO2: cover all 10 kW of load (20 kWp); more PV would only be exported
    r = run_study(_scenario(scenario_factory, {"kind": "environmental"}))
    assert r.design.built.tech("h1_pv_a").sizes()["kwp"] == pytest.approx(20.0)
    assert r.design.costs["co2_t"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("co2_price, expect_kwp", [(20.0, 0.0), (30.0, 20.0)])
def test_mixed_objective_builds_pv_once_co2_is_priced(scenario_factory, co2_price, expect_kwp):
    # per kWp: cost 100 − 87.6 = 12.4 €/y net; CO2 value 0.5475 t × price. Break-even 22.6 €/t.
    r = run_study(_scenario(scenario_factory, {"kind": "mixed", "co2_price_eur_per_t": co2_price}))
    assert r.design.built.tech("h1_pv_a").sizes()["kwp"] == pytest.approx(expect_kwp)


@pytest.mark.parametrize("alpha, expect_kwp", [(1.0, 0.0), (0.0, 20.0), (0.9, 0.0), (0.5, 20.0)])
def test_weighted_objective_normalises_by_asis(scenario_factory, alpha, expect_kwp):
    # AS-IS: cost 0.04 × 120 × 365 = 1752 €/y, CO2 0.12 × 365 × 0.25 = 10.95 t/y.
    # Per kWp: Δcost/C_asis = 12.4/1752 = 0.00708, ΔCO2/CO2_asis = −0.5475/10.95 = −0.05.
    # Build iff α·0.00708 < (1−α)·0.05 ⇔ α < 0.876.
    r = run_study(_scenario(scenario_factory, {"kind": "weighted", "alpha": alpha}))
    assert r.asis.costs["total"] == pytest.approx(1752.0)
    assert r.asis.costs["co2_t"] == pytest.approx(10.95)
    assert r.design.built.tech("h1_pv_a").sizes()["kwp"] == pytest.approx(expect_kwp)


def test_demand_from_annual_total_and_shape(tmp_path):
    """An hourly year in which a hub's demand is built from its annual total and a named shape,
    aggregated into the seed's 12 typical days: the weighted typical days keep the total."""
    import pandas as pd
    import yaml

    from ems.model import results as res

    idx = pd.date_range("2023-01-01", periods=8760, freq="h")
    pd.DataFrame({"timestamp": idx.strftime("%Y-%m-%d %H:%M"), "y": 0.0}).to_csv(
        tmp_path / "year.csv", index=False
    )
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "shape",
                "community": "independent",
                "site": {"lat": 44.4, "lon": 8.96},
                "time": {"hourly_csv": "year.csv"},
                "hubs": [
                    {
                        "id": "h1",
                        "contract_kw": 500,
                        "electricity": {"annual_mwh": 838, "shape": "campus"},
                    }
                ],
                "prices": {
                    "purchase_bands": {"F1": 0.3, "F2": 0.25, "F3": 0.2},
                    "sale_eur_per_kwh": 0.05,
                },
            }
        )
    )
    r = run_study(tmp_path / "s.yaml")
    assert len(r.study.grid.periods) == 12
    assert r.study.grid.days_represented == pytest.approx(365)
    kpi = r.design.kpis["hubs"]["h1"]["energy_mwh_per_y"]["load"]
    assert -kpi == pytest.approx(838.0, rel=1e-6)
    fl = res.flows(r.design.built)
    assert fl[fl.label == "grid import"]["kw"].sum() > 0
