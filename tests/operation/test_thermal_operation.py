"""Multi-energy operation through the Controller: CHP, heat pump, boiler, puffer on tiny hand-checked
hubs (1-h steps, 4-step horizon), the heat-led fallback, stale thermal telemetry, one persistent
model, and the payload schemas of the new device kinds.

CHP ``chp100`` (tests/design_thermal catalogue): 100 kWe, η_el 0.4 → rated fuel 250 kW, no-load
fuel 25 kW per unit on, fuel = 2.25·P + 25·u, heat = 0.5·fuel: 125 kW at full load, 68.75 kW at
the 50 % minimum load. Heat pump ``hp``: 100 kW heat at ≥ 7 °C, COP 3.0 at 7 °C, +2.5 %/K.
Boiler ``boil``: η 0.9.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
import yaml

from adapters.config_io import load_scenario
from ems.operation.assembly import operation_setup
from ems.operation.controller import Controller, StepInput
from ems.operation.site import SiteConfig
from ems.techs.chp import Chp
from ems.techs.heat_pump import HeatPump, cop_and_capacity
from ems.telemetry.validate import (
    Accepted,
    DeviceRegistry,
    RejectReason,
    decode_state,
    encode_setpoint,
)
from tests.design_thermal.conftest import make_scenario

N = 4
START = pd.Timestamp("2025-01-15 08:00", tz="UTC")
HEAT_PER_FUEL = 0.5
A_FUEL, B_FUEL = 2.25, 25.0
PUFFER = ("h1", "thermal_storage", "puffer")


def _controller(
    tmp: Path, hub_extra: dict[str, Any], sizes: dict[str, Any], integer_steps: int | None = None
) -> Controller:
    cols = {"load": [200.0] * 24, "heat": [150.0] * 24, "buy": [0.3] * 24, "t_amb_c": [5.0] * 24}
    hub = {
        "id": "h1",
        "contract_kw": 400.0,
        "electricity": {"column": "load"},
        "heating": {"column": "heat"},
        **hub_extra,
    }
    path = make_scenario(
        tmp,
        cols,
        [hub],
        prices={"purchase_column": "buy", "sale_eur_per_kwh": 0.05, "gas_eur_per_kwh": 0.05},
    )
    site = SiteConfig(
        community="t", scenario=str(path), sizes=str(tmp / "sizes.yaml"), step_min=60, horizon_h=N
    )
    scenario, cat = load_scenario(path)
    return Controller(
        operation_setup(site, scenario, cat, sizes={"h1": sizes}),
        n_steps=N,
        dt_h=1.0,
        time_limit_s=10.0,
        mip_rel_gap=0.0,
        integer_steps=integer_steps,
    )


def _inp(
    heat: float = 150.0,
    buy: float = 0.4,
    gas: float | None = None,
    t_amb: float = 5.0,
    load: float = 200.0,
    **kw: Any,
) -> StepInput:
    inp = StepInput(
        START,
        {"h1": np.full(N, load)},
        {},
        np.full(N, buy),
        np.full(N, 0.05),
        columns={"heat": np.full(N, heat), "t_amb_c": np.full(N, t_amb)},
        gas_eur_per_kwh=gas,
        device_state={PUFFER: 0.0},
    )
    inp.device_state.update(kw.pop("device_state", {}))
    for k, v in kw.items():
        setattr(inp, k, v)
    return inp


def _sp(res, kind: str, dev: str) -> dict[str, Any]:
    return next(s.values for s in res.setpoints if (s.kind, s.device) == (kind, dev))


def _source(res, kind: str, dev: str) -> str:
    return next(s.source for s in res.setpoints if (s.kind, s.device) == (kind, dev))


CHP_HUB = (
    {
        "chp": [{"type": "chp100", "max_units": 2}],
        "boilers": [{"type": "boil", "existing_kw": 400}],
        "puffer": {"type": "puf"},
    },
    {"chp100": {"n_units": 2}, "boil": {"kw": 400}, "puffer": {"pick_100kwh": 1, "kwh": 100}},
)


@pytest.fixture(scope="module")
def chp_hub(tmp_path_factory: pytest.TempPathFactory) -> Controller:
    """Heat 150 kW; two chp100 units, a 400 kW boiler, a 100 kWh puffer (no heat pump)."""
    return _controller(tmp_path_factory.mktemp("chp"), *CHP_HUB)


@pytest.fixture(scope="module")
def hp_hub(tmp_path_factory: pytest.TempPathFactory) -> Controller:
    """Heat 60 kW; one heat pump and a boiler."""
    return _controller(
        tmp_path_factory.mktemp("hp"),
        {
            "heat_pumps": [{"type": "hp", "max_units": 1}],
            "boilers": [{"type": "boil", "existing_kw": 400}],
        },
        {"hp": {"n_units": 1}, "boil": {"kw": 400}},
    )


def _heat_balance_closes(plan: pd.DataFrame) -> None:
    supply = sum(plan.get(c, 0.0) for c in ("h1.chp_heat_kw", "h1.boiler_kw", "h1.hp_heating_kw"))
    supply = supply - plan.get("h1.puffer_kw", 0.0)
    assert np.allclose(supply, plan["h1.heat_load_kw"], atol=1e-4)
    assert (
        plan["h1.heat_unmet_kw"].abs().max() < 1e-6 and plan["h1.heat_dump_kw"].abs().max() < 1e-6
    )


def test_chp_runs_on_a_positive_spark_spread_and_boiler_on_a_negative_one(
    chp_hub: Controller,
) -> None:
    ctl = chp_hub
    model_id, count = id(ctl.model), ctl.component_count()
    # electricity dear, gas cheap: the engines make heat and the hub's electricity
    res = ctl.step(_inp(buy=0.40, gas=0.03))
    assert res.mode == "optimal", res.alerts
    chp = _sp(res, "chp", "chp100")
    u, p = chp["units_on"], chp["p_kw"]
    assert (
        u >= 1 and 50.0 * u - 1e-6 <= p <= 100.0 * u + 1e-6
    )  # within min/max load of the units on
    plan = res.plan
    assert np.allclose(
        plan["h1.chp_heat_kw"],
        HEAT_PER_FUEL * (A_FUEL * plan["h1.chp_kw"] + B_FUEL * plan["h1.chp_units"]),
    )
    _heat_balance_closes(plan)
    assert (
        plan["h1.chp_kw"].min() > 0 and plan["h1.import_kw"].iloc[0] < 200.0 - 50.0
    )  # the CHP displaces imports
    # gas dear, electricity cheap (negative spark spread): same model, the boiler covers the heat
    res = ctl.step(_inp(buy=0.10, gas=0.30))
    assert res.mode == "optimal", res.alerts
    assert _sp(res, "chp", "chp100") == {"units_on": 0, "p_kw": 0.0}
    assert res.plan["h1.chp_kw"].abs().max() < 1e-6
    assert _sp(res, "boiler", "boil")["heat_kw"] == pytest.approx(150.0, abs=1e-3)
    _heat_balance_closes(res.plan)
    assert not any("heat" in a for a in res.alerts)
    # more heat than the boiler and both engines can make: the plan says so
    res = ctl.step(_inp(heat=700.0, buy=0.10, gas=0.30))
    assert any(a.startswith("h1: heat demand not covered by") for a in res.alerts), res.alerts
    # parameters only: the same Pyomo model and the same components across steps
    assert id(ctl.model) == model_id and ctl.component_count() == count


def test_relaxed_tail_keeps_the_first_steps_integer(tmp_path: Path) -> None:
    """``integer_steps=1``: the engines' units on are integer in step 0 only, continuous after.
    Heat 100 kW, electricity dear, gas cheap: with every step relaxed the plan runs 1.6 engines in
    step 0 (fuel 2.25·P + 25·u is cheapest at u = P/100) — a setpoint no plant can execute; with the
    relaxed tail, step 0 (the setpoints) is integer while the tail keeps fractions of an engine,
    and the step's bound lies between the all-relaxed optimum and the all-integer optimum."""
    from ems.model.builder import relax_operational_integers

    inp = _inp(heat=100.0, buy=0.40, gas=0.03)

    def solve(integer_steps: int | None, relax_all: bool = False) -> tuple[Controller, Any]:
        folder = tmp_path / f"c{integer_steps}{relax_all}"
        folder.mkdir()
        ctl = _controller(folder, *CHP_HUB, integer_steps)
        if relax_all:
            relax_operational_integers(ctl.built)
        res = ctl.step(inp)
        assert res.mode == "optimal", res.alerts
        return ctl, res

    relaxed_ctl, relaxed = solve(None, relax_all=True)
    u_relaxed = relaxed_ctl.setup.first(Chp, "h1").block.u_on
    assert abs(pyo.value(u_relaxed["h", 0]) - round(pyo.value(u_relaxed["h", 0]))) > 0.1
    _full_ctl, full = solve(None)
    tail_ctl, tail = solve(1)
    u_on = tail_ctl.setup.first(Chp, "h1").block.u_on
    assert tail_ctl.relaxed_vars > 0 and u_on["h", 0].is_integer()
    assert not any(u_on["h", t].is_integer() for t in range(1, N))
    first = pyo.value(u_on["h", 0])
    assert abs(first - round(first)) < 1e-6
    chp = _sp(tail, "chp", "chp100")
    assert chp["units_on"] == round(first) and 50.0 * first - 1e-6 <= chp["p_kw"] <= 100.0 * first
    assert any(abs(pyo.value(u_on["h", t]) % 1.0) > 0.05 for t in range(1, N))
    tol = 1e-6 * abs(full.record.objective)
    assert relaxed.record.objective - tol <= tail.record.bound <= full.record.objective + tol
    assert tail.record.objective <= full.record.objective + tol


def test_puffer_state_of_charge_from_telemetry(chp_hub: Controller) -> None:
    """A full puffer is discharged first (less boiler heat) — the initial state is a parameter."""
    ctl = chp_hub
    empty = ctl.step(_inp(buy=0.10, gas=0.30, device_state={PUFFER: 0.0}))
    full = ctl.step(_inp(buy=0.10, gas=0.30, device_state={PUFFER: 1.0}))
    assert empty.plan["h1.puffer_kwh"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    # 100 kWh (less 1 %/h standing loss) replace boiler heat over the horizon
    saved = empty.plan["h1.boiler_kw"].sum() - full.plan["h1.boiler_kw"].sum()
    assert saved == pytest.approx(100.0 * 0.99, rel=0.02)
    assert _sp(full, "thermal_storage", "puffer")["p_kw"] < 0  # advisory: discharge
    _heat_balance_closes(full.plan)


def test_heat_pump_cop_update_changes_the_plan(hp_hub: Controller) -> None:
    """At 15 °C the HP heats for 0.40/3.6 = 0.111 €/kWh < boiler 0.12/0.9 = 0.133; at −10 °C its COP
    falls to 1.725 (0.232 €/kWh) and the boiler takes over. The setpoint's electric power is the
    heat over the COP of the step's temperature (the Param update reached the solver)."""
    ctl = hp_hub
    warm = ctl.step(_inp(heat=60.0, buy=0.40, gas=0.12, t_amb=15.0))
    cop15, cap15 = cop_and_capacity(ctl.setup.first(HeatPump, "h1").spec, "heating", 15.0)
    assert cop15 == pytest.approx(3.6)
    hp = _sp(warm, "heat_pump", "hp_1")
    assert hp["mode"] == "heating" and hp["p_kw"] == pytest.approx(60.0 / cop15, abs=1e-3)
    assert _sp(warm, "boiler", "boil")["heat_kw"] == pytest.approx(0.0, abs=1e-3)
    cold = ctl.step(_inp(heat=60.0, buy=0.40, gas=0.12, t_amb=-10.0))
    assert _sp(cold, "heat_pump", "hp_1") == {"mode": "off", "p_kw": 0.0}
    assert _sp(cold, "boiler", "boil")["heat_kw"] == pytest.approx(60.0, abs=1e-3)
    # and back: the parameters follow every step
    again = ctl.step(_inp(heat=60.0, buy=0.40, gas=0.12, t_amb=15.0))
    assert _sp(again, "heat_pump", "hp_1")["p_kw"] == pytest.approx(60.0 / cop15, abs=1e-3)


def test_heat_pump_capacity_follows_temperature(hp_hub: Controller) -> None:
    """Above capacity the boiler covers the rest: 130 kW demand, HP capacity 100 kW at 10 °C but
    100·(1 − 0.015·7) = 89.5 kW at 0 °C (at 0 °C the HP still beats the boiler with gas dear)."""
    ctl = hp_hub
    spec = ctl.setup.first(HeatPump, "h1").spec
    for t in (10.0, 0.0):
        res = ctl.step(_inp(heat=130.0, buy=0.20, gas=0.30, t_amb=t))
        cop, cap = cop_and_capacity(spec, "heating", t)
        assert res.plan["h1.hp_heating_kw"].iloc[0] == pytest.approx(cap, abs=1e-3)
        assert _sp(res, "boiler", "boil")["heat_kw"] == pytest.approx(130.0 - cap, abs=1e-3)
        assert _sp(res, "heat_pump", "hp_1")["p_kw"] == pytest.approx(cap / cop, abs=1e-3)
    assert cop_and_capacity(spec, "heating", 0.0)[1] < cop_and_capacity(spec, "heating", 10.0)[1]


def test_two_heat_pump_units_in_two_modes(tmp_path: Path) -> None:
    """One setpoint per unit: with heating and cooling demand at once, one unit heats and the other
    cools (a unit runs in one mode); each unit's electric power × its COP/EER is its output."""
    ctl = _controller(
        tmp_path,
        {
            "cooling": {"column": "cool"},
            "heat_pumps": [{"type": "hp", "max_units": 2}],
            "boilers": [{"type": "boil", "existing_kw": 400}],
        },
        {"hp": {"n_units": 2}, "boil": {"kw": 400}},
    )
    inp = _inp(heat=60.0, buy=0.30, gas=0.20, t_amb=20.0)
    inp.columns["cool"] = np.full(N, 50.0)
    res = ctl.step(inp)
    assert res.mode == "optimal", res.alerts
    spec = ctl.setup.first(HeatPump, "h1").spec
    units = {
        _sp(res, "heat_pump", d)["mode"]: _sp(res, "heat_pump", d)["p_kw"] for d in ("hp_1", "hp_2")
    }
    assert set(units) == {"heating", "cooling"}
    assert units["heating"] * cop_and_capacity(spec, "heating", 20.0)[0] == pytest.approx(
        60.0, abs=1e-2
    )
    assert units["cooling"] * cop_and_capacity(spec, "cooling", 20.0)[0] == pytest.approx(
        50.0, abs=1e-2
    )
    assert res.plan["h1.cooling_unmet_kw"].abs().max() < 1e-6


def test_installed_bounds_keep_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounds and big-M values from the installed sizes (a size handle's upper bound is the
    installed size in operation) tighten the model but not its feasible set: the same optimum as
    with the design's maxima (5 units allowed)."""
    import ems.model.context as mc

    hub = {
        "chp": [{"type": "chp100", "max_units": 5}],
        "boilers": [{"type": "boil", "existing_kw": 400, "max_kw": 600}],
        "puffer": {"type": "puf"},
    }
    sizes = {
        "chp100": {"n_units": 2},
        "boil": {"kw": 500},
        "puffer": {"pick_100kwh": 1, "kwh": 100},
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tight = _controller(tmp_path / "a", hub, sizes)
    assert tight.setup.first(Chp, "h1").block.u_on[("h", 0)].ub == 2  # bound = installed units
    size = mc.BuildContext.size

    def design_bounds(self: mc.BuildContext, *args: Any, **kwargs: Any) -> mc.SizeHandle:
        h = size(self, *args, **kwargs)
        h.ub_units = max(h.max_units, h.existing_units, h.ub_units)
        return h

    monkeypatch.setattr(mc.BuildContext, "size", design_bounds)
    loose = _controller(tmp_path / "b", hub, sizes)
    assert loose.setup.first(Chp, "h1").block.u_on[("h", 0)].ub == 5
    for heat, buy, gas in ((150.0, 0.40, 0.03), (420.0, 0.40, 0.03), (150.0, 0.10, 0.30)):
        a, b = (
            tight.step(_inp(heat=heat, buy=buy, gas=gas)),
            loose.step(_inp(heat=heat, buy=buy, gas=gas)),
        )
        assert a.record.objective == pytest.approx(b.record.objective, rel=1e-6, abs=1e-4)
        assert _sp(a, "chp", "chp100") == _sp(b, "chp", "chp100")


@pytest.mark.parametrize("heat", [150.0, 300.0, 100.0, 40.0])
def test_fallback_chp_follows_heat_demand(chp_hub: Controller, heat: float) -> None:
    """No plan (time limit) → heat-led rule: largest units first, a unit only if the heat left is
    at least its minimum-load heat (68.75 kW), each at the load that makes the heat it covers;
    the boiler covers the rest."""
    res = chp_hub.step(_inp(heat=heat, time_limit_s=1e-4))
    assert res.mode == "fallback"
    q_max, q_min = HEAT_PER_FUEL * (A_FUEL * 100 + B_FUEL), HEAT_PER_FUEL * (A_FUEL * 50 + B_FUEL)
    left, units, p = heat, 0, 0.0
    while units < 2 and left >= q_min:
        q = min(left, q_max)
        p += (q / HEAT_PER_FUEL - B_FUEL) / A_FUEL
        left -= q
        units += 1
    chp = _sp(res, "chp", "chp100")
    assert chp["units_on"] == units and chp["p_kw"] == pytest.approx(p, abs=1e-3)
    assert _sp(res, "boiler", "boil")["heat_kw"] == pytest.approx(left, abs=1e-3)
    assert _sp(res, "thermal_storage", "puffer")["p_kw"] == 0.0
    assert all(s.source == "fallback" for s in res.setpoints)
    # units on in min/max load
    assert 50.0 * chp["units_on"] - 1e-6 <= chp["p_kw"] <= 100.0 * chp["units_on"] + 1e-6


def test_fallback_heat_pump_covers_what_the_chp_does_not(tmp_path: Path) -> None:
    """No plan: the hub's merit order walks the technologies' own rules — the CHP follows the
    heat (one unit at full load: 125 kW), one heat-pump unit cools, the other heats at its
    capacity, the boiler covers the rest."""
    ctl = _controller(
        tmp_path,
        {
            "cooling": {"column": "cool"},
            "chp": [{"type": "chp100", "max_units": 1}],
            "heat_pumps": [{"type": "hp", "max_units": 2}],
            "boilers": [{"type": "boil", "existing_kw": 500}],
        },
        {"chp100": {"n_units": 1}, "hp": {"n_units": 2}, "boil": {"kw": 500}},
    )
    inp = _inp(heat=300.0, t_amb=20.0, time_limit_s=1e-4)
    inp.columns["cool"] = np.full(N, 20.0)
    res = ctl.step(inp)
    assert res.mode == "fallback" and all(s.source == "fallback" for s in res.setpoints)
    spec = ctl.setup.first(HeatPump, "h1").spec
    cop, cap = cop_and_capacity(spec, "heating", 20.0)
    eer, _cool_cap = cop_and_capacity(spec, "cooling", 20.0)
    assert _sp(res, "chp", "chp100") == {"units_on": 1, "p_kw": 100.0}
    heat_left = 300.0 - HEAT_PER_FUEL * (A_FUEL * 100.0 + B_FUEL)
    assert _sp(res, "heat_pump", "hp_1") == {"mode": "cooling", "p_kw": round(20.0 / eer, 3)}
    hp_heat = min(heat_left, cap)
    assert _sp(res, "heat_pump", "hp_2") == {"mode": "heating", "p_kw": round(hp_heat / cop, 3)}
    assert _sp(res, "boiler", "boil")["heat_kw"] == pytest.approx(heat_left - hp_heat, abs=1e-3)
    assert heat_left - hp_heat > 1.0  # the boiler has something to cover


def test_stale_chp_telemetry_gets_its_safe_setpoint(chp_hub: Controller) -> None:
    ctl = chp_hub
    inp = _inp(buy=0.40, gas=0.03, stale={("h1", "chp", "chp100"): 3600.0})
    res = ctl.step(inp)
    assert res.mode == "optimal"
    assert _source(res, "chp", "chp100") == "fallback"
    # the heat-led rule for 150 kW: one unit at full load
    assert _sp(res, "chp", "chp100") == {"units_on": 1, "p_kw": 100.0}
    assert any("stale telemetry h1/chp/chp100" in a for a in res.alerts)
    assert _source(res, "boiler", "boil") == "plan"


def test_missing_thermal_forecast_is_an_error_not_zeros(chp_hub: Controller) -> None:
    inp = _inp()
    inp.columns = {"t_amb_c": np.full(N, 5.0)}
    with pytest.raises(ValueError, match="heat"):
        chp_hub.update(inp)
    inp.columns = {"heat": np.array([150.0, np.nan, 150.0, 150.0]), "t_amb_c": np.full(N, 5.0)}
    with pytest.raises(ValueError, match="NaN"):
        chp_hub.update(inp)


def test_thermal_payloads_validated() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
    reg = DeviceRegistry()
    reg.add("hub1", "boiler", "boiler_asis", 400.0)
    reg.add("hub1", "elec_link", "main", 300.0)
    reg.add("hub1", "thermal_storage", "puffer", 800.0)
    reg.add("hub1", "heat_meter", "heat")
    reg.add("hub1", "weather", "main")
    reg.add("hub1", "heat_pump", "hp_45_1", 60.0)

    def dec(kind: str, dev: str, payload: str):
        return decode_state(
            f"cer/c/hub1/{kind}/{dev}/state", payload.encode(), now=now, community="c", registry=reg
        )

    ts = '"ts": "2026-06-01T12:00:00Z"'
    assert isinstance(dec("boiler", "boiler_asis", "{" + ts + ', "heat_kw": 120.0}'), Accepted)
    assert (
        dec("boiler", "boiler_asis", "{" + ts + ', "heat_kw": 900.0}').reason
        == RejectReason.ABOVE_RATED
    )
    assert (
        dec("elec_link", "main", "{" + ts + ', "give_kw": 10.0, "take_kw": 5.0}').reason
        == RejectReason.INCONSISTENT
    )
    assert (
        dec("thermal_storage", "puffer", "{" + ts + ', "soc_pct": 140}').reason
        == RejectReason.OUT_OF_RANGE
    )
    assert dec("heat_meter", "heat", "{" + ts + ', "p_kw": "12"}').reason == RejectReason.WRONG_TYPE
    assert dec("weather", "main", "{" + ts + ', "t_amb_c": NaN}').reason == RejectReason.NON_FINITE
    assert (
        dec("heat_pump", "hp_45_1", "{" + ts + ', "mode": "turbo", "p_kw": 10}').reason
        == RejectReason.BAD_VALUE
    )
    assert (
        dec("heat_pump", "hp_45_2", "{" + ts + ', "mode": "off", "p_kw": 0}').reason
        == RejectReason.UNKNOWN_DEVICE
    )
    # setpoints of the new kinds are validated before publishing
    base = {"ts": now, "valid_until": now + pd.Timedelta(minutes=30)}
    assert b'"heat_kw":50.0' in encode_setpoint("boiler", {**base, "heat_kw": 50.0})
    with pytest.raises(ValueError):
        encode_setpoint("elec_link", {**base, "give_kw": 5.0, "take_kw": 5.0})
    with pytest.raises(ValueError):
        encode_setpoint("boiler", {**base, "heat_kw": -1.0})


_ = (math, pyo)


# --------------------------------------------------------------------------- end to end
ROOT = Path(__file__).resolve().parents[2]
PHYSICAL_SITE = ROOT / "adapters/sim/opera_pia_physical_site.yaml"


def _hub_column(rows: pd.DataFrame, hub: str, quantity: str) -> pd.Series:
    """The simulated plant's ``hub.quantity`` column, zeros where the hub has no such device."""
    return rows.get(f"{hub}.{quantity}", pd.Series(0.0, index=rows.index))


def test_simulated_physical_site_through_real_broker(mqtt_broker, tmp_path: Path) -> None:
    """Two simulated winter hours of the 4-hub physical community (2 × ICE-200 at hub1, 1 at hub4,
    puffers, an HP and an absorption chiller at hub3, boilers, district heating, electric links)
    through a real broker: setpoints within device limits, heat and electric balances of the
    executed steps close, the networks balance, thermal telemetry passes validation."""
    import uuid

    from adapters.config_io import load_operation
    from adapters.sim.simulate import run_simulation
    from tests.operation.test_daemon import _forget

    host, port = mqtt_broker
    community = f"optherm{uuid.uuid4().hex[:8]}"
    raw = yaml.safe_load(PHYSICAL_SITE.read_text())
    raw.update(
        community=community,
        scenario=str((PHYSICAL_SITE.parent / raw["scenario"]).resolve()),
        sizes=str((PHYSICAL_SITE.parent / raw["sizes"]).resolve()),
        horizon_h=6,
    )
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(raw))
    site, setup, fc = load_operation(tmp_path / "site.yaml")
    try:
        res = run_simulation(
            site,
            setup,
            fc,
            state_dir=tmp_path / "state",
            hours=2,
            start_local="2025-01-13 07:00",
            mqtt={"host": host, "port": port},
            echo=lambda _m: None,
        )
    finally:
        _forget(host, port, community)
    assert res["finished"] and res["steps"] == 4
    assert set(res["modes"]) <= {"optimal", "feasible"}, res["modes"]
    rows = pd.DataFrame(res["plant"].rows)
    for hub in setup.hubs:
        c = partial(_hub_column, rows, hub)
        # heat loop: supply − injection + withdrawal − store = demand + chiller feed (− unmet + dissipated)
        supply = (
            c("chp_heat_kw")
            - c("dh_to_kw")
            + c("dh_from_kw")
            + c("hp_heat_kw")
            + c("solar_thermal_kw")
            + c("boiler_kw")
        )
        assert np.allclose(
            supply - c("store_kw") + c("heat_unmet_kw") - c("heat_dump_kw"),
            c("heat_load_kw") + c("chiller_feed_kw"),
            atol=1e-6,
        )
        # electric meter: import − export = load + HP + chiller aux − CHP − PV + given − taken
        lhs = c("import_kw") - c("export_kw")
        rhs = (
            c("load_kw")
            + c("battery_kw")
            + c("ev_kw")
            + c("ai_kw")
            - c("pv_kw")
            + c("hp_kw")
            + c("chiller_el_kw")
            - c("chp_kw")
            + c("link_give_kw")
            - c("link_take_kw")
        )
        assert np.allclose(lhs, rhs, atol=1e-6)
        assert c("heat_unmet_kw").max() < 1e-6  # the boilers back up every hub
        for chp in setup.techs_of(Chp, hub, installed=True):
            assert (c("chp_kw") <= chp.n.value() + 1e-6).all()
    # CHP units ran on the plan, the networks balance (η_DH · injected = withdrawn; given = taken)
    chp_hubs = {c.hub for c in setup.techs_of(Chp, installed=True)}
    assert rows[[f"{h}.chp_kw" for h in chp_hubs]].to_numpy().sum() > 0
    inj = sum(rows[f"{h}.dh_to_kw"] for h in setup.hubs)
    wd = sum(rows[f"{h}.dh_from_kw"] for h in setup.hubs)
    assert np.allclose(0.9 * inj, wd, atol=1e-6)
    assert np.allclose(
        sum(rows[f"{h}.link_give_kw"] for h in setup.hubs),
        sum(rows[f"{h}.link_take_kw"] for h in setup.hubs),
    )
    # every thermal device's telemetry went through validation into the EMS state
    from adapters.runtime.daemon import StateDB

    state = StateDB(tmp_path / "state" / "ems-state.sqlite")
    try:
        latest = state.get("plant_state")["latest"]
    finally:
        state.close()
    for key in (
        "hub1/chp/ice_200",
        "hub4/chp/ice_200",
        "hub3/heat_pump/hp_45_1",
        "hub1/boiler/boiler_asis",
        "hub3/absorption_chiller/ac_175",
        "hub2/thermal_storage/puffer",
        "hub1/heat_meter/heat",
        "hub1/weather/main",
        "hub1/dh_station/main",
        "hub4/elec_link/main",
        "hub1/meter/main",
    ):
        assert key in latest, key
    # KPIs beside the heat-led baseline
    assert res["ems"]["gas_kwh"] > 0 and res["baseline"]["gas_kwh"] > 0
    assert res["baseline"]["dh_kwh"] == 0.0 and res["baseline"]["link_kwh"] == 0.0
