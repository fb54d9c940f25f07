"""Issue 16 B: staleness on every input the plan uses. Through a private Mosquitto into the daemon
runtime: a stale meter, battery and PV reading and an expired day-ahead price curve are never used
as if fresh — the battery's safe setpoint does not compute from the stale meter (it is held at
0 kW instead of the −22 kW the stale reading would give), no load or PV history is recorded from
them, the price curve falls back to the profile — and an alert names each stale input."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pandas as pd
import pytest

from adapters.config_io import load_operation
from adapters.mqtt.client import MqttClient, wait_until
from adapters.mqtt.config import MqttSettings
from adapters.runtime.daemon import Runtime, StateDB
from adapters.sqlite_store import SQLiteStore
from ems.operation.service import OperationService
from tests.operation.conftest import pv_columns, write_site

pytestmark = pytest.mark.integration

START = pd.Timestamp("2025-06-16 10:00", tz="UTC")


def _runtime(tmp: Path, port: int, community: str) -> Runtime:
    site, setup, fc = load_operation(
        write_site(tmp, community=community, horizon_h=4, solver={"time_limit_s": 5.0})
    )
    settings = MqttSettings(community=community, port=port, client_id=f"ems-{community}")
    return Runtime(
        OperationService(site, setup, fc),
        settings,
        SQLiteStore(tmp / "ts.sqlite"),
        StateDB(tmp / "state.sqlite"),
        clock=lambda: START + pd.Timedelta(minutes=1),
    ).start()


def _publish(port: int, community: str, age: pd.Timedelta) -> int:
    """Meter (40 kW import), battery (80 % full, idle), PV and a price curve, ``age`` old."""
    ts = (START - age).isoformat()
    dev = MqttClient(
        MqttSettings(community=community, port=port, client_id=f"gw-{uuid.uuid4().hex[:6]}"),
        last_will=False,
    ).start()
    assert dev.wait_connected(10)
    docs = {
        "hub1/meter/main": {"ts": ts, "import_p_kw": 40.0, "export_p_kw": 0.0},
        "hub1/battery/bess": {"ts": ts, "p_kw": 0.0, "soc_pct": 80.0},
        "hub1/pv/pv_mono": {"ts": ts, "p_kw": 5.0},
        # a day-ahead curve of the day before: it ended before the step
        "market/price/pz": {
            "ts": ts,
            "start": (START - pd.Timedelta(days=2)).isoformat(),
            "pz_eur_per_mwh": [100.0] * 24,
        },
    }
    for suffix, doc in docs.items():
        dev.publish(f"cer/{community}/{suffix}/state", json.dumps(doc), qos=1).wait_for_publish(5)
    dev.stop(announce_offline=False)
    return len(docs)


def test_stale_meter_battery_pv_and_prices_are_named_and_not_used(private_mosquitto, tmp_path):
    community = f"stale{uuid.uuid4().hex[:6]}"
    rt = _runtime(tmp_path, private_mosquitto.port, community)
    try:
        assert rt.client.wait_subscribed(10)
        n = _publish(private_mosquitto.port, community, pd.Timedelta(hours=2))
        assert wait_until(lambda: rt.received == n, 10), rt.ingest.counters()
        out = rt.run_step(START)
    finally:
        rt.stop()
        rt.statedb.close()
    res = out.outcome.result
    bat = next(sp for sp in res.setpoints if sp.key == ("hub1", "battery", "bess"))
    assert bat.source == "fallback" and bat.values["p_kw"] == 0.0
    for name in ("hub1/meter/main", "hub1/battery/bess", "hub1/pv/pv_mono", "market/price/pz"):
        assert any(a.startswith(f"stale input {name} (") for a in res.alerts), (name, res.alerts)
    assert any("battery of hub1 held at 0 kW" in a for a in res.alerts), res.alerts
    state = rt.service.state
    assert "hub1" not in state.load_history  # no load estimate from a stale meter
    assert not state.pv_history  # no PV yield from a stale inverter reading
    assert "market.pz_eur_per_mwh" not in out.outcome.forecast  # the profile, not the old curve


def test_the_same_readings_fresh_are_used(private_mosquitto, tmp_path):
    """The contrast: the same readings one minute old drive the load estimate, the PV history and
    a planned battery setpoint, with no stale-input alert."""
    community = f"fresh{uuid.uuid4().hex[:6]}"
    rt = _runtime(tmp_path, private_mosquitto.port, community)
    try:
        assert rt.client.wait_subscribed(10)
        n = _publish(private_mosquitto.port, community, pd.Timedelta(minutes=1))
        assert wait_until(lambda: rt.received == n, 10), rt.ingest.counters()
        out = rt.run_step(START)
        # the fallback rule, fed by the fresh meter: discharge into the 40 kW import
        rule = rt.service.controller.fallback_setpoints(
            _input_of(rt), START + pd.Timedelta(minutes=30)
        )
    finally:
        rt.stop()
        rt.statedb.close()
    res = out.outcome.result
    bat = next(sp for sp in res.setpoints if sp.key == ("hub1", "battery", "bess"))
    assert bat.source == "plan"
    assert not any(a.startswith("stale input hub1/") for a in res.alerts), res.alerts
    assert rt.service.state.load_history["hub1"]  # recorded from the fresh meter
    assert rt.service.state.pv_history
    rule_bat = next(sp for sp in rule if sp.key == ("hub1", "battery", "bess"))
    assert rule_bat.values["p_kw"] < -5.0


def _input_of(rt: Runtime):
    """A step input with the fresh meter's measured net load (what the fallback rule reads)."""
    from ems.operation.controller import StepInput

    s = rt.service
    n = s.controller.n_steps
    times = pd.date_range(START, periods=n, freq="15min")
    loads, _y, net_now, net_unknown = s._estimates(
        START + pd.Timedelta(minutes=1), 1800.0, stale_in={}
    )
    assert not net_unknown and net_now["hub1"] > 30.0
    return StepInput(
        START,
        {h: s.fc.load_kw(s.setup.load_column(h), times) for h in s.setup.hubs},
        {c: s.fc.pv_yield(c, times) for c in pv_columns(s.setup)},
        s.fc.price_buy(times),
        s.fc.price_sell(times),
        device_state={("hub1", "battery", "bess"): 0.8},
        net_now_kw=net_now,
    )
