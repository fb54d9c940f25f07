"""Invalid multi-energy scenarios → one ConfigError naming file, field and problem."""

from __future__ import annotations

import pytest

from adapters.config_io import load_scenario
from ems.errors import ConfigError


def _hub(**kw):
    hub = {"id": "h1", "contract_kw": 100.0, "electricity": {"column": "load"}}
    hub.update(kw)
    return hub


CASES = {
    "chiller without heat source": (
        _hub(cooling={"column": "cool"}, absorption_chillers=[{"type": "ac", "max_units": 1}]),
        None,
        "hubs[h1].absorption_chillers",
        "needs CHP heat or district heating",
    ),
    "cooling without technology": (
        _hub(cooling={"column": "cool"}),
        None,
        "hubs[h1].cooling",
        "no cooling technology",
    ),
    "unknown CHP model": (
        _hub(heating={"column": "heat"}, chp=[{"type": "ice_999", "max_units": 1}]),
        None,
        "hubs[h1].chp[0].type",
        "unknown catalogue entry 'ice_999'",
    ),
    "CHP model of the wrong kind": (
        _hub(heating={"column": "heat"}, chp=[{"type": "hp", "max_units": 1}]),
        None,
        "hubs[h1].chp[0].type",
        "is a heat_pump",
    ),
    "negative units": (
        _hub(heating={"column": "heat"}, chp=[{"type": "chp100", "max_units": -1}]),
        None,
        "hubs[h1].chp[h1]",
        "greater than or equal to 0",
    ),
    "thermal demand without column": (
        _hub(heating={"annual_mwh": 10, "shape": "office"}),
        None,
        "hubs[h1]",
        "thermal demands need a data column",
    ),
    "CHP efficiencies above 1": (
        _hub(heating={"column": "heat"}, chp=[{"type": "chp100", "max_units": 1}]),
        {"chp100": {"eta_th": 0.7}},
        "catalogue_overrides.chp100",
        "must not exceed 1",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_invalid_thermal_scenario(scenario_factory, name):
    hub, overrides, field, problem = CASES[name]
    extra = {"catalogue_overrides": overrides} if overrides else None
    path = scenario_factory(
        {"load": [1.0], "heat": [1.0], "cool": [1.0], "buy": [0.2]}, [hub], extra=extra
    )
    with pytest.raises(ConfigError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert str(path) in msg or "scenario.yaml" in msg
    assert field.split("[h1]")[0] in exc.value.field
    assert problem in exc.value.problem


@pytest.mark.parametrize("demand, column", [("heating", "heat"), ("dhw", "heat")])
def test_a_negative_thermal_demand_is_refused(scenario_factory, capsys, demand, column):
    """A negative heating or DHW demand would be sized as free heat; only electricity and PV
    yield were checked."""
    from adapters.cli.main import main

    columns = {"load": [1.0, 1.0], "heat": [1.0, 1.0], "cool": [1.0, 1.0], "buy": [0.2, 0.2]}
    columns[column][1] = -3.0
    path = scenario_factory(columns, [_hub(**{demand: {"column": column}})])
    assert main(["design", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the study's header line
    assert err.startswith("error: ") and err.endswith(
        f"line 3: {column}: -3 is negative (demand and PV yield are ≥ 0)"
    )
