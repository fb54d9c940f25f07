"""The simulate printout says why the EMS earns less shared-energy incentive than the baseline."""

from __future__ import annotations

from adapters.sim.simulate import incentive_note


def test_note_explains_less_incentive_with_the_prices_of_pv_hours():
    ems = {
        "incentive_eur": 14.54,
        "grid_export_kwh": 123.0,
        "net_cost_eur": 1245.49,
        "buy_price_pv_hours_eur_per_kwh": 0.428,
        "sell_price_pv_hours_eur_per_kwh": 0.266,
    }
    base = {"incentive_eur": 27.13, "grid_export_kwh": 230.0, "net_cost_eur": 1306.09}
    note = incentive_note(ems, base, 118.0)
    assert "12.59 € less shared-energy incentive" in note
    assert "exports 107 kWh less" in note
    assert "0.266 sale + 0.118 incentive = 0.384 €/kWh" in note
    assert "net cost +60.60 € in the EMS's favour" in note
    # nothing to explain when the EMS earns at least as much
    assert incentive_note({**ems, "incentive_eur": 30.0}, base, 118.0) == ""
