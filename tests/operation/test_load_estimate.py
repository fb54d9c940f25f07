"""The hub's electric load estimate (what the load forecast learns from, eq. of the state
estimate in docs/operation.md): meter import − export, plus what the hub's own devices measured
on its bus (generation +, flexible use −). A car charging behind the meter is flexible use, not
site load: the charge points' power comes out of the estimate, and a stale charger reading makes
the estimate stale (named in an alert) instead of silently counting 0 kW."""

from __future__ import annotations

import pandas as pd
import pytest

from ems.operation.service import OperationService
from ems.techs.ev_charge_points import EvChargePoints

START = pd.Timestamp("2025-06-16 10:00", tz="UTC")
METER = ("hub1", "meter", "main")
CP1 = ("hub1", "ev_charger", "cp1")


def _charger(ts: pd.Timestamp, p_kw: float) -> dict:
    return {
        "ts": ts.isoformat(),
        "plugged": True,
        "p_kw": p_kw,
        "requested_e_kwh": 10.0,
        "session_e_kwh": 0.0,
        "departure": (ts + pd.Timedelta(hours=5)).isoformat(),
    }


def test_ev_charging_power_is_taken_out_of_the_hub_load(op) -> None:
    site, setup, fc, ctl = op
    svc = OperationService(site, setup, fc, controller=ctl)
    # idle charger: the load is the meter's 30 kW; charging at 7.4 kW: 22.6 kW of site load;
    # two hours later with no new charger reading: no estimate from the stale one
    steps = [START, START + pd.Timedelta(minutes=15), START + pd.Timedelta(hours=2, minutes=15)]
    alerts = []
    for at, p_kw in zip(steps, (0.0, 7.4, None), strict=True):
        svc.on_state(METER, {"ts": at.isoformat(), "import_p_kw": 30.0, "export_p_kw": 0.0})
        if p_kw is not None:
            svc.on_state(CP1, _charger(at, p_kw))
        alerts = svc.step(at, now=at).result.alerts
    history = svc.state.load_history["hub1"]
    assert history[steps[0].isoformat()] == pytest.approx(30.0)
    assert history[steps[1].isoformat()] == pytest.approx(22.6)
    assert steps[2].isoformat() not in history
    assert any("hub1/ev_charger/cp1" in a for a in alerts), alerts
    assert EvChargePoints.load_input()
