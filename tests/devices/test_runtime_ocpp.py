"""The daemon's runtime with the CSMS attached: a charge point (ocpp client over websockets) plugs
a car, the plug-in reaches the plant state, the plan's setpoint reaches the charger as a charging
profile ending at the plan's valid_until, and after the EMS stops the charger falls back when that
time passes; a rejected profile re-plans the charger at full power."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import timedelta

import pandas as pd
import pytest

from adapters.broker.embedded import EmbeddedBroker
from adapters.config_io import load_operation
from adapters.devices.runtime import DeviceBridges
from adapters.mqtt.config import MqttSettings
from adapters.ocpp.config import OcppSettings
from adapters.ocpp.simulator import SimChargePoint
from adapters.runtime.daemon import Runtime, StateDB
from adapters.sim.simulate import DEFAULT_SITE
from adapters.sqlite_store import SQLiteStore
from ems.operation.service import OperationService

KEY = ("hub1", "ev_charger", "cp1")


class ChargerLoop:
    """The charge point's own event loop, running beside the test (a charger is its own device)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Clock:
    def __init__(self, now: pd.Timestamp) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now


@pytest.fixture
def runtime(tmp_path):
    site, setup, fc = load_operation(DEFAULT_SITE)
    broker = EmbeddedBroker().start()
    community = f"ocpprt{uuid.uuid4().hex[:6]}"
    settings = MqttSettings(community=community, host=broker.host, port=broker.port)
    clock = Clock(pd.Timestamp("2025-06-16 06:00", tz="UTC"))  # 08:00 local
    store = SQLiteStore(tmp_path / "ts.sqlite")
    rt = Runtime(
        OperationService(site, setup, fc),
        settings,
        store,
        StateDB(tmp_path / "s.sqlite"),
        clock=clock,
    ).start()
    ocpp = OcppSettings(
        host="127.0.0.1", port=0, security_profile=1,
        charge_points=[{"id": "WB-1", "hub": "hub1", "device": "cp1", "password": "pw", "max_kw": 7.4,
                        "phases": 1}],
    )  # fmt: skip
    bridges = DeviceBridges(rt, ocpp=ocpp).start()
    yield rt, bridges, clock
    rt.stop()
    rt.statedb.close()
    broker.stop()


def _cp_setpoint(out) -> float:
    return next(sp for sp in out.outcome.result.setpoints if sp.key == KEY)


def test_plan_reaches_the_charger_and_expires_after_the_ems_stops(runtime):
    rt, bridges, clock = runtime
    url = f"ws://127.0.0.1:{bridges.csms.port}/ocpp"

    async def scenario():
        cp = SimChargePoint(url, "WB-1", version="ocpp2.0.1", password="pw", max_kw=7.4,
                            phases=1, clock=lambda: clock().to_pydatetime())  # fmt: skip
        await cp.connect()
        dep = clock().to_pydatetime() + timedelta(
            hours=2
        )  # 12 kWh in 2 h: the plan must charge now
        await cp.plug(needs={"energy_wh": 12000, "departure": dep, "max_current_a": 32})
        return cp

    loop = ChargerLoop()
    cp = loop.run(scenario())
    bridges.settle()
    assert rt.on_demand.is_set()  # the plug-in asks for an on-demand step, as on MQTT
    state = rt.service.state.latest["hub1/ev_charger/cp1"]
    assert state["plugged"] and state["requested_e_kwh"] == pytest.approx(12.0)
    out = rt.run_step(clock())
    sp = _cp_setpoint(out)
    assert sp.source == "plan" and sp.values["p_kw"] > 3.0
    assert bridges.router.wait(10) == 0
    prof = cp.profiles[-1]
    assert prof["charging_profile_purpose"] == "TxProfile"
    valid_to = pd.Timestamp(prof["valid_to"])
    assert valid_to == sp.valid_until  # the profile ends when the plan's setpoint does
    assert cp.limit_kw(clock().to_pydatetime()) == pytest.approx(sp.values["p_kw"], abs=0.05)
    rt.stop()  # the EMS stops: no new profile
    after = (valid_to + pd.Timedelta(seconds=1)).to_pydatetime()
    assert cp.limit_kw(after) == pytest.approx(7.4)  # the charger falls back on its own
    loop.run(cp.disconnect())
    loop.close()


def test_rejected_profile_replans_charger_at_full_power(runtime):
    rt, bridges, clock = runtime
    url = f"ws://127.0.0.1:{bridges.csms.port}/ocpp"

    async def scenario():
        cp = SimChargePoint(url, "WB-1", version="ocpp2.0.1", password="pw", max_kw=7.4, phases=1,
                            accept_profiles=False, clock=lambda: clock().to_pydatetime())  # fmt: skip
        await cp.connect()
        dep = clock().to_pydatetime() + timedelta(
            hours=8
        )  # a long stay: the plan would wait for PV
        await cp.plug(needs={"energy_wh": 8000, "departure": dep, "max_current_a": 32})
        return cp

    loop = ChargerLoop()
    cp = loop.run(scenario())
    bridges.settle()
    first = _cp_setpoint(rt.run_step(clock()))
    bridges.router.wait(10)
    bridges.settle()
    assert cp.rejected_profiles == 1
    assert "hub1/ev_charger/cp1" in rt.service.state.inflexible
    assert rt.on_demand.is_set()  # re-plan at once
    second = _cp_setpoint(rt.run_step(clock()))
    assert first.values["p_kw"] < 7.0  # flexible: deferred towards the PV hours
    assert second.values["p_kw"] == pytest.approx(7.4, abs=0.05)  # what the charger will do anyway
    rt.stop()
    loop.run(cp.disconnect())
    loop.close()
