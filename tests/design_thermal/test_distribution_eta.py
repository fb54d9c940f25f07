"""The seed's distribution/emission efficiencies (15), (16), (19): generation supplies demand / η."""

from __future__ import annotations

import pytest

from design.study import run_study


@pytest.mark.parametrize("eta", [1.0, 0.9])
def test_heat_generation_covers_distribution_losses(scenario_factory, eta):
    # 90 kW of heating at the buildings, an existing boiler η 0.9, gas 0.05 €/kWh, no electricity:
    # the boiler makes 90 / η_dist kW and burns 90 / η_dist / 0.9 kW of gas all year.
    heating = {"column": "heat", "distribution_eta": eta}
    hub = {
        "id": "h",
        "contract_kw": 10.0,
        "electricity": {"column": "el"},
        "heating": heating,
        "boilers": [{"type": "boil", "existing_kw": 200.0}],
    }
    r = run_study(
        scenario_factory({"el": [0.0, 0.0], "heat": [90.0, 90.0], "buy": [0.3, 0.3]}, [hub])
    )
    gas_kw = 90.0 / eta / 0.9
    assert r.asis.costs["energy"] == pytest.approx(0.05 * gas_kw * 24 * 365, rel=1e-9)
    assert r.asis.costs["co2_t"] == pytest.approx(0.205 * gas_kw * 24 * 365 / 1000, rel=1e-9)
