"""End to end on a tiny physical community: AS-IS, relaxed sizing pass, per-day verification,
outputs (thermal KPIs, exchange matrices, plots)."""

from __future__ import annotations

import json

import pytest

from design.report import console_report, write_outputs
from design.study import run_study
from ems.model import results as res


def test_two_pass_study_and_thermal_outputs(scenario_factory, tmp_path):
    # Hub A: heating 100 kW, may install one 100 kWe CHP; hub B: heating 40 kW; both have boilers
    # (η 0.9) and may join district heating; electricity 0.30 €/kWh, gas 0.05 €/kWh.
    hubs = [
        {
            "id": "hA",
            "contract_kw": 200.0,
            "electricity": {"column": "la"},
            "heating": {"column": "ha"},
            "chp": [{"type": "chp100", "max_units": 1}],
            "boilers": [{"type": "boil", "existing_kw": 200.0}],
            "district_heating": True,
        },
        {
            "id": "hB",
            "contract_kw": 200.0,
            "electricity": {"column": "lb"},
            "heating": {"column": "hb"},
            "boilers": [{"type": "boil", "existing_kw": 100.0}],
            "district_heating": True,
        },
    ]
    path = scenario_factory(
        {
            "la": [50.0, 50.0],
            "lb": [40.0, 40.0],
            "ha": [100.0, 100.0],
            "hb": [40.0, 40.0],
            "buy": [0.3, 0.3],
        },
        hubs,
        community="physical",
        extra={
            "solver": {"mip_rel_gap": 0.0, "time_limit_s": 60, "sizing": "relaxed_commitment"},
            "district_heating": {"eta": 0.9, "connection_capex_eur": 100.0},
        },
    )
    r = run_study(path)
    v = r.verification
    assert v is not None and len(v["days"]) == 1
    # the relaxed pass is a lower bound of the verified (integer) plan
    assert v["verified_objective"] >= v["sizing_bound"] - 1e-6
    assert v["proven_gap_pct"] >= -1e-9
    assert res.balance_residuals(r.design.built) < 1e-6
    assert r.design.built.tech("hA_chp100").sizes()["n_units"] == pytest.approx(1)
    out = tmp_path / "out"
    written = write_outputs(r, out)
    names = {p.name for p in written}
    assert {
        "thermal_kpis.json",
        "annual_energy_per_hub.png",
        "exchanges_electricity.csv",
        "exchanges_heat.csv",
    } <= names
    k = json.loads((out / "thermal_kpis.json").read_text())
    e = k["energy_mwh_per_y"]
    # heating balance closes per hub: CHP + boiler + DH taken − DH given (CHP heat) = load
    for hub in ("hA", "hB"):
        supply = (
            e[hub]["chp_to_heating"]
            + e[hub]["boiler_heat"]
            + e[hub]["dh_taken"]
            + e[hub]["hp_heat"]
        )
        assert supply == pytest.approx(e[hub]["heating_load"], rel=1e-6)
    assert "verification" in json.loads((out / "results.json").read_text())
    assert "Exchanges" in console_report(r) or "Indices" in console_report(r)
