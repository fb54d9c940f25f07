"""Power-to-heat (electric boiler / resistive heater): sized in design mode from a hand-checked
case, dispatched with setpoints in operation mode, its rule-based fallback and payloads.
(The registry's contract and parity tests cover it through ``ElectricBoiler.contract_hub``.)"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from adapters.config_io import load_scenario
from design.study import run_study
from ems.model import results as res
from ems.operation.assembly import operation_setup
from ems.operation.controller import Controller, StepInput
from ems.operation.site import SiteConfig
from ems.telemetry.validate import (
    Accepted,
    DeviceRegistry,
    RejectReason,
    decode_state,
    encode_setpoint,
)
from tests.design.conftest import make_scenario

ETA_EB, ETA_GAS, GAS = 0.99, 0.9, 0.10
CATALOGUE = {
    "entries": {
        "pv": {
            "kind": "pv",
            "capex_eur_per_kwp": 1000.0,
            "lifetime_y": 10,
            "kwp_per_m2": 0.2,
            "step_kwp": 1.0,
            "yield_column": "yield",
        },
        "boil": {"kind": "boiler", "eta": ETA_GAS, "lifetime_y": 10},
        "eb": {
            "kind": "electric_boiler",
            "eta": ETA_EB,
            "capex_eur_per_kw": 1.0,
            "step_kw": 10.0,
            "lifetime_y": 10,
        },
    }
}
# step 0: 50 kWp × 1.0 − 20 kW load = 30 kW of PV surplus; step 1: no sun. Heat 40 kW in both
# (a typical day of two 12-hour steps).
COLUMNS = {"load": [20.0, 20.0], "yield": [1.0, 0.0], "heat": [40.0, 40.0], "buy": [0.30, 0.30]}


def _scenario(tmp: Path, sale: float) -> Path:
    hub = {
        "id": "h1",
        "contract_kw": 100.0,
        "electricity": {"column": "load"},
        "pv": [{"type": "pv", "max_kwp": 0.0, "existing_kwp": 50.0}],
        "heating": {"column": "heat"},
        "boilers": [{"type": "boil", "existing_kw": 100.0}],
        "electric_boilers": [{"type": "eb", "max_kw": 100.0}],
    }
    prices = {"purchase_column": "buy", "sale_eur_per_kwh": sale, "gas_eur_per_kwh": GAS}
    return make_scenario(tmp, COLUMNS, [hub], catalogue=CATALOGUE, prices=prices)


def test_sized_to_absorb_the_surplus_when_selling_pays_less_than_gas(tmp_path: Path) -> None:
    # Selling the surplus earns nothing; as heat it saves GAS / η_gas = 0.111 €/kWh of heat for
    # 0.1 €/kW/y of capex: the design takes 3 steps of 10 kW (29.7 kW of heat from the 30 kW of
    # surplus; a 4th step would find no surplus to run on), runs it on the surplus step only
    # (from the grid, heat would cost 0.30/0.99 = 0.303 > 0.111 €/kWh) and the gas boiler does
    # the rest: 40 − 29.7 kW in step 0, 40 kW in step 1.
    r = run_study(_scenario(tmp_path, sale=0.0), mip_rel_gap=0.0)
    built = r.design.built
    eb = built.tech("h1_eb")
    assert eb.sizes()["kw"] == pytest.approx(30.0)
    p = res.series(built, "h1_eb", "q_kw")
    assert p[("heat", "d1", 0)] == pytest.approx(30.0 * ETA_EB, abs=1e-6)
    assert p[("heat", "d1", 1)] == pytest.approx(0.0, abs=1e-6)
    gas_heat = res.series(built, "h1_boil", "q_kw")
    assert gas_heat[("heat", "d1", 0)] == pytest.approx(40.0 - 30.0 * ETA_EB, abs=1e-6)
    assert gas_heat[("heat", "d1", 1)] == pytest.approx(40.0, abs=1e-6)
    assert res.balance_residuals(built) < 1e-6
    # annual cost: 365 days × 12 h per step × (grid 20 kW × 0.30 in step 1 + gas) + capex
    # 30 kW × 1 €/kW over 10 years
    gas = (40.0 - 30.0 * ETA_EB + 40.0) / ETA_GAS * GAS
    assert r.design.record.objective == pytest.approx(365 * 12 * (20 * 0.30 + gas) + 3.0, rel=1e-6)


def test_not_built_when_selling_pays_more(tmp_path: Path) -> None:
    # a sale price of 0.20 €/kWh beats the 0.111 €/kWh the surplus saves as heat
    r = run_study(_scenario(tmp_path, sale=0.20), mip_rel_gap=0.0)
    assert r.design.built.tech("h1_eb").sizes()["kw"] == pytest.approx(0.0)


@pytest.fixture
def ctl(tmp_path: Path) -> Controller:
    path = _scenario(tmp_path, sale=0.0)
    s, cat = load_scenario(path)
    site = SiteConfig(
        community="t", scenario=str(path), sizes=str(tmp_path / "s.yaml"), step_min=60, horizon_h=2
    )
    sizes = {"h1": {"eb": {"kw": 30.0}, "pv": {"kwp": 50.0}, "boil": {"kw": 100.0}}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"hubs": sizes}))
    setup = operation_setup(site, s, cat, sizes=sizes)
    return Controller(setup, n_steps=2, dt_h=1.0, time_limit_s=10.0, mip_rel_gap=0.0)


def _inp(**kw: Any) -> StepInput:
    inp = StepInput(
        pd.Timestamp("2025-06-01 12:00", tz="UTC"),
        {"h1": np.array(COLUMNS["load"])},
        {"yield": np.array(COLUMNS["yield"])},
        np.array(COLUMNS["buy"]),
        np.zeros(2),
        columns={"heat": np.array(COLUMNS["heat"])},
    )
    for k, v in kw.items():
        setattr(inp, k, v)
    return inp


def _sp(out: Any) -> tuple[dict[str, Any], str]:
    sp = next(s for s in out.setpoints if s.key == ("h1", "electric_boiler", "eb"))
    return sp.values, sp.source


def test_operation_dispatches_it_on_the_surplus_with_a_setpoint(ctl: Controller) -> None:
    out = ctl.step(_inp())
    assert out.mode == "optimal"
    assert _sp(out) == ({"p_kw": 30.0}, "plan")
    assert out.plan["h1.eboiler_kw"].tolist() == pytest.approx([30.0, 0.0], abs=1e-6)
    assert out.plan["h1.eboiler_heat_kw"].iloc[0] == pytest.approx(29.7, abs=1e-6)
    assert ("h1", "electric_boiler", "eb", pytest.approx(30.0 / ETA_EB)) in [
        (h, k, d, r) for h, k, d, r in ctl.setup.devices()
    ]


@pytest.mark.parametrize(("net_kw", "expect_kw"), [(-30.0, 30.0), (-10.0, 10.0), (15.0, 0.0)])
def test_fallback_absorbs_the_measured_surplus(
    ctl: Controller, net_kw: float, expect_kw: float
) -> None:
    # no plan (time limit): the rule draws the hub's surplus, capped by its 30 kW of heat
    out = ctl.step(_inp(time_limit_s=1e-4, net_now_kw={"h1": net_kw}))
    assert out.mode == "fallback"
    values, source = _sp(out)
    assert source == "fallback" and values["p_kw"] == pytest.approx(expect_kw, abs=1e-3)


def test_payloads_validated() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
    reg = DeviceRegistry()
    reg.add("h1", "electric_boiler", "eb", 30.3)

    def dec(payload: str) -> Any:
        topic = "cer/c/h1/electric_boiler/eb/state"
        return decode_state(topic, payload.encode(), now=now, community="c", registry=reg)

    ts = '"ts": "2026-06-01T12:00:00Z"'
    assert isinstance(dec("{" + ts + ', "p_kw": 20.0, "heat_kw": 19.8}'), Accepted)
    assert dec("{" + ts + ', "p_kw": 80.0}').reason == RejectReason.ABOVE_RATED
    assert dec("{" + ts + ', "p_kw": -1.0}').reason == RejectReason.OUT_OF_RANGE
    base = {"ts": now, "valid_until": now + pd.Timedelta(minutes=30)}
    assert b'"p_kw":12.5' in encode_setpoint("electric_boiler", {**base, "p_kw": 12.5})
    with pytest.raises(ValueError):
        encode_setpoint("electric_boiler", {**base, "p_kw": -3.0})
