"""OCPP CSMS against charge points simulated with the ``ocpp`` library's client over real
WebSockets on loopback (1.6J, 2.0.1, 2.1), with basic auth over TLS (security profile 2)."""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime, timedelta, timezone

import pytest
from websockets.exceptions import InvalidMessage, InvalidStatus

from adapters.ocpp.config import OcppSettings
from adapters.ocpp.csms import Csms, parse_meter_values
from adapters.ocpp.simulator import SimChargePoint
from tests.devices.conftest import wait_for

HUB = "hub1"


def _settings(tls_cert=None, **extra) -> OcppSettings:
    cps = [
        {"id": "CP-A", "hub": HUB, "device": "cp1", "password": "s3cret-A", "max_kw": 11},
        {"id": "CP-B", "hub": HUB, "device": "cp2", "password": "s3cret-B", "max_kw": 22},
    ]
    if tls_cert is not None:
        extra.update(cert_file=tls_cert[0], key_file=tls_cert[1], security_profile=2)
    else:
        extra.setdefault("security_profile", 1)
    return OcppSettings(host="127.0.0.1", port=0, charge_points=cps, **extra)


def _client_tls(tls_cert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(tls_cert[0]))
    return ctx


@pytest.fixture
def csms_tls(plant, tls_cert):
    csms = Csms(
        _settings(tls_cert),
        plant.gateway.submit,
        on_flexibility=plant.gateway.flexibility,
        on_alert=plant.gateway.alert,
    ).start()
    yield csms
    csms.stop()


def _url(csms: Csms, tls: bool = True) -> str:
    return f"{'wss' if tls else 'ws'}://127.0.0.1:{csms.port}/ocpp"


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
def test_charge_point_session_profile_and_expiry(plant, csms_tls, tls_cert, version):
    """Connect over TLS with basic auth, plug a car, report power/energy/SoC; a setpoint becomes a
    charging profile ending at valid_until, which the charger obeys and then drops."""

    async def scenario():
        cp = SimChargePoint(
            _url(csms_tls),
            "CP-A",
            version=version,
            password="s3cret-A",
            ssl_context=_client_tls(tls_cert),
            max_kw=11.0,
        )
        await cp.connect()
        assert cp._ws.subprotocol == version
        cp.energy_wh = 5000.0
        await cp.plug(soc_pct=40.0)
        await cp.meter(7200.0, soc_pct=41.0, energy_wh=6500.0)
        plant.gateway.flush()
        state = plant.last(HUB, "ev_charger", "cp1")
        assert state["plugged"] is True
        assert state["p_kw"] == pytest.approx(7.2)
        assert state["session_e_kwh"] == pytest.approx(1.5)
        assert state["vehicle_soc_pct"] == pytest.approx(41.0)
        # a plan setpoint of 4.2 kW valid 1.5 s: TxProfile, validTo = valid_until
        ts = _now()
        until = ts + timedelta(seconds=1.5)
        fut = csms_tls.apply_setpoint(
            HUB, "ev_charger", "cp1", {"ts": ts, "valid_until": until, "p_kw": 4.2}
        )
        status = await asyncio.wrap_future(fut)
        assert status == "Accepted"
        prof = cp.profiles[-1]
        assert prof["charging_profile_purpose"] == "TxProfile"
        assert datetime.fromisoformat(prof["valid_to"].replace("Z", "+00:00")) == until.replace(
            microsecond=until.microsecond
        )
        assert cp.limit_kw() == pytest.approx(4.2)
        await asyncio.sleep(1.7)  # the EMS went silent: the profile ends, the charger falls back
        assert cp.limit_kw() == pytest.approx(11.0)
        await cp.unplug()
        plant.gateway.flush()
        assert plant.last(HUB, "ev_charger", "cp1")["plugged"] is False
        await cp.disconnect()

    asyncio.run(scenario())
    c = plant.counters()
    assert c["accepted"] >= 4 and c["rejected"] == 0
    plant.store.flush(5)
    assert plant.store.count("telemetry") == c["accepted"]  # stored like MQTT telemetry


def test_unknown_id_wrong_password_and_no_subprotocol_refused(plant, csms_tls, tls_cert):
    async def scenario():
        ctx = _client_tls(tls_cert)
        with pytest.raises(InvalidStatus) as unknown:
            await SimChargePoint(_url(csms_tls), "CP-X", password="x", ssl_context=ctx).connect()
        assert unknown.value.response.status_code == 404
        with pytest.raises(InvalidStatus) as wrong:
            await SimChargePoint(
                _url(csms_tls), "CP-A", password="s3cret-B", ssl_context=ctx
            ).connect()
        assert wrong.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as none:
            await SimChargePoint(_url(csms_tls), "CP-A", ssl_context=ctx).connect()
        assert none.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as proto:
            await SimChargePoint(
                _url(csms_tls), "CP-A", password="s3cret-A", ssl_context=ctx, version="ocpp0.9"
            ).connect()
        assert proto.value.response.status_code == 400
        # plain ws:// to the TLS port does not get in either
        with pytest.raises((OSError, InvalidMessage, EOFError)):
            await SimChargePoint(_url(csms_tls, tls=False), "CP-A", password="s3cret-A").connect()

    asyncio.run(scenario())
    st = csms_tls.status()
    assert st["refused_unknown"] == 1 and st["refused_auth"] == 2 and st["connected"] == 0


def test_reconnect_resumes_transaction_and_resends_profile(plant, csms_tls, tls_cert):
    """Charger disconnects mid-transaction: on reconnect the same transaction continues (session
    energy keeps counting from the same start) and the profile still in force is sent again."""

    async def scenario():
        ctx = _client_tls(tls_cert)
        cp = SimChargePoint(_url(csms_tls), "CP-B", password="s3cret-B", ssl_context=ctx, max_kw=22)
        await cp.connect()
        cp.energy_wh = 1000.0
        await cp.plug()
        tx = cp.transaction_id
        ts = _now()
        fut = csms_tls.apply_setpoint(
            HUB,
            "ev_charger",
            "cp2",
            {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_kw": 9.0},
        )
        assert await asyncio.wrap_future(fut) == "Accepted"
        await cp.meter(9000.0, energy_wh=3000.0)
        await cp.disconnect()
        wait_for(lambda: not csms_tls.records["CP-B"].connected, what="disconnect seen")
        cp.profiles.clear()  # a charger that lost its profiles on reboot
        await cp.connect(boot=False)
        await asyncio.sleep(0.3)
        assert cp.profiles, "profile in force not resent on reconnect"
        assert cp.limit_kw() == pytest.approx(9.0)
        assert cp.transaction_id == tx
        await cp.meter(9000.0, energy_wh=4500.0)  # same transaction id
        plant.gateway.flush()
        state = plant.last(HUB, "ev_charger", "cp2")
        assert state["plugged"] is True and state["session_e_kwh"] == pytest.approx(3.5)
        assert csms_tls.records["CP-B"].transaction_id == str(tx)
        await cp.disconnect()

    asyncio.run(scenario())


def test_rejected_profile_raises_alert_and_drops_flexibility(plant, csms_tls, tls_cert):
    async def scenario():
        cp = SimChargePoint(
            _url(csms_tls),
            "CP-A",
            version="ocpp2.0.1",
            password="s3cret-A",
            ssl_context=_client_tls(tls_cert),
            accept_profiles=False,
        )
        await cp.connect()
        await cp.plug()
        ts = _now()
        sp = {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_kw": 3.0}
        assert (
            await asyncio.wrap_future(csms_tls.apply_setpoint(HUB, "ev_charger", "cp1", sp))
            == "Rejected"
        )
        plant.gateway.flush()
        assert plant.flex == [((HUB, "ev_charger", "cp1"), False, plant.flex[0][2])]
        assert "rejected the charging profile" in plant.alerts[0]
        assert csms_tls.status()["uncontrollable"] == ["CP-A"]
        cp.accept_profiles = True  # accepted again: flexibility comes back
        assert (
            await asyncio.wrap_future(csms_tls.apply_setpoint(HUB, "ev_charger", "cp1", sp))
            == "Accepted"
        )
        plant.gateway.flush()
        assert plant.flex[-1][:2] == ((HUB, "ev_charger", "cp1"), True)
        await cp.disconnect()

    asyncio.run(scenario())


def test_ev_charging_needs_and_v2g_setpoint_over_ocpp21(plant, tls_cert):
    """2.1: ISO 15118 needs reach the state; a negative (V2G) setpoint becomes a CentralSetpoint
    discharge period; 2.0.1 gets a 0 W limit for the same setpoint."""
    csms = Csms(_settings(None, security_profile=0), plant.gateway.submit).start()
    try:

        async def scenario():
            v21 = await SimChargePoint(_url(csms, tls=False), "CP-A", version="ocpp2.1").connect()
            dep = _now() + timedelta(hours=5)
            await v21.plug(needs={"energy_wh": 20000, "departure": dep, "max_current_a": 16})
            plant.gateway.flush()
            st = plant.last(HUB, "ev_charger", "cp1")
            assert st["requested_e_kwh"] == pytest.approx(20.0)
            assert st["vehicle_p_max_kw"] == pytest.approx(16 * 230 * 3 / 1000)
            assert abs(datetime.fromisoformat(st["departure"]) - dep) < timedelta(seconds=1)
            ts = _now()
            sp = {"ts": ts, "valid_until": ts + timedelta(minutes=15), "p_kw": -5.0}
            assert (
                await asyncio.wrap_future(csms.apply_setpoint(HUB, "ev_charger", "cp1", sp))
                == "Accepted"
            )
            period = v21.profiles[-1]["charging_schedule"][0]["charging_schedule_period"][0]
            assert period["operation_mode"] == "CentralSetpoint" and period["setpoint"] == -5000.0
            assert v21.limit_kw() == pytest.approx(-5.0)
            await v21.meter(-5000.0)
            plant.gateway.flush()
            assert plant.last(HUB, "ev_charger", "cp1")["p_kw"] == pytest.approx(-5.0)
            v201 = await SimChargePoint(
                _url(csms, tls=False), "CP-B", version="ocpp2.0.1"
            ).connect()
            await v201.plug()
            assert (
                await asyncio.wrap_future(csms.apply_setpoint(HUB, "ev_charger", "cp2", sp))
                == "Accepted"
            )
            assert v201.limit_kw() == 0.0
            await v21.disconnect()
            await v201.disconnect()

        asyncio.run(scenario())
    finally:
        csms.stop()


def test_garbage_and_out_of_range_meter_values_are_counted(plant, tls_cert):
    csms = Csms(_settings(None, security_profile=0), plant.gateway.submit).start()
    try:

        async def scenario():
            cp = await SimChargePoint(_url(csms, tls=False), "CP-A").connect()
            await cp.plug()
            await cp.raw_meter_values(
                [{"value": "n/a", "measurand": "Power.Active.Import", "unit": "W"}]
            )
            await cp.raw_meter_values([{"value": "140", "measurand": "SoC", "unit": "Percent"}])
            await cp.raw_meter_values(
                [{"value": "99000000", "measurand": "Power.Active.Import", "unit": "kW"}]
            )
            await cp.disconnect()

        asyncio.run(scenario())
    finally:
        csms.stop()
    c = plant.counters()
    assert csms.counters.meter_garbage == 1
    assert c["rejected_out_of_range"] >= 2  # SoC 140 %, then 99 GW (SoC still 140 as well)


def test_parse_meter_values_units_and_phases():
    r = parse_meter_values(
        [
            {
                "sampled_value": [
                    {
                        "value": "2.3",
                        "measurand": "Power.Active.Import",
                        "unit": "kW",
                        "phase": "L1",
                    },
                    {
                        "value": "2300",
                        "measurand": "Power.Active.Import",
                        "unit": "W",
                        "phase": "L2",
                    },
                    {"value": "12.5", "unit": "kWh"},
                ]
            }
        ]
    )
    assert r.p_w == pytest.approx(4600.0) and r.energy_wh == pytest.approx(12500.0)
    r2 = parse_meter_values(
        [
            {
                "sampled_value": [
                    {
                        "value": 7,
                        "measurand": "Power.Active.Import",
                        "unit_of_measure": {"unit": "W", "multiplier": 3},
                    }
                ]
            }
        ]
    )
    assert r2.p_w == pytest.approx(7000.0)
