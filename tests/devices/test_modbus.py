"""Modbus bridge against a real pymodbus TCP server on loopback: a SunSpec PV inverter and battery,
an Eastron SDM630 and a Carlo Gavazzi EM24 meter; faults injected at the server."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import pytest
from pymodbus.constants import ExcCodes

from adapters.modbus import sunspec
from adapters.modbus.bridge import ModbusBridge
from adapters.modbus.config import ModbusSettings
from adapters.modbus.maps import load_map
from adapters.modbus.server import ModbusDeviceServer

HUB = "hub1"
PV, BAT, SDM, EM24, MISSING = 1, 2, 3, 4, 9


def pv_models(w: int = 4130, wh: int = 5_120_000) -> dict:
    return {
        1: {"Mn": "cer-ems-sim", "Md": "PV-50", "SN": "PV0001"},
        103: {"W": w, "W_SF": 1, "WH": wh, "WH_SF": 0, "TmpCab": 350, "Tmp_SF": -1, "St": 4},
        120: {"DERTyp": 4, "WRtg": 5000, "WRtg_SF": 1},  # 50 kW
        123: {"WMaxLimPct": 10000, "WMaxLimPct_SF": -2, "WMaxLim_Ena": 0, "Conn": 1},
    }


def bat_models(w: int = 350, soc: int = 6250) -> dict:
    return {
        1: {"Mn": "cer-ems-sim", "Md": "BESS-20", "SN": "B0001"},
        103: {"W": w, "W_SF": 1, "WH": 100, "WH_SF": 0, "TmpCab": 240, "Tmp_SF": -1, "St": 4},
        124: {
            "WChaMax": 2000,
            "WChaMax_SF": 1,
            "ChaState": soc,
            "ChaState_SF": -2,
            "StorCtl_Mod": 0,
            "InWRte": 10000,
            "OutWRte": 10000,
            "InOutWRte_SF": -2,
            "MinRsvPct": 1000,
            "MinRsvPct_SF": -2,
            "ChaSt": 3,
        },
    }


@pytest.fixture
def server():
    srv = ModbusDeviceServer()
    srv.add_sunspec(PV, pv_models())
    srv.add_sunspec(BAT, bat_models())
    srv.add_meter(
        SDM,
        load_map("eastron_sdm630"),
        {"p_w": 12500.0, "import_e_kwh": 104225.5, "export_e_kwh": 3120.0},
    )
    srv.add_meter(
        EM24,
        load_map("carlo_gavazzi_em24"),
        {"p_w": -8000.0, "import_e_kwh": 5000.0, "export_e_kwh": 777.7},
    )
    srv.start()
    yield srv
    srv.stop()


def _settings(srv: ModbusDeviceServer, **kw) -> ModbusSettings:
    common = {
        "host": "127.0.0.1",
        "port": srv.port,
        "timeout_s": 0.5,
        "retries": 0,
        "reconnect_min_s": 0.2,
        "reconnect_max_s": 1.0,
        **kw,
    }
    return ModbusSettings(
        devices=[
            {"hub": HUB, "kind": "pv", "device": "pv_mono", "unit_id": PV, **common},
            {"hub": HUB, "kind": "battery", "device": "bess", "unit_id": BAT, **common},
            {
                "hub": HUB,
                "kind": "meter",
                "device": "main",
                "unit_id": SDM,
                "register_map": "eastron_sdm630",
                **common,
            },
            {
                "hub": "hub2",
                "kind": "meter",
                "device": "main",
                "unit_id": EM24,
                "register_map": "carlo_gavazzi_em24",
                **common,
            },
        ]
    )


@pytest.fixture
def bridge(plant, server):
    b = ModbusBridge(
        _settings(server), plant.gateway.submit, on_alert=plant.gateway.alert, autopoll=False
    ).start()
    yield b
    b.stop()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def test_poll_sunspec_and_meter_maps(plant, bridge):
    bridge.poll_now()
    plant.gateway.flush()
    pv = plant.last(HUB, "pv", "pv_mono")
    assert pv["p_kw"] == pytest.approx(41.3) and pv["e_kwh"] == pytest.approx(5120.0)
    bat = plant.last(HUB, "battery", "bess")
    assert bat["p_kw"] == pytest.approx(-3.5)  # 3.5 kW into the AC side = discharging
    assert bat["soc_pct"] == pytest.approx(62.5) and bat["temp_c"] == pytest.approx(24.0)
    sdm = plant.last(HUB, "meter", "main")
    assert sdm["import_p_kw"] == pytest.approx(12.5) and sdm["export_p_kw"] == 0.0
    assert sdm["import_e_kwh"] == pytest.approx(104225.5) and sdm["export_e_kwh"] == pytest.approx(
        3120.0
    )
    em = plant.last("hub2", "meter", "main")
    assert em["export_p_kw"] == pytest.approx(8.0) and em["import_p_kw"] == 0.0
    assert em["export_e_kwh"] == pytest.approx(777.7)
    assert plant.counters()["accepted"] == 4
    plant.store.flush(5)
    assert plant.store.count("telemetry") == 4


def test_battery_and_pv_setpoints_written_and_read_back(plant, server, bridge):
    bridge.poll_now()
    until = _now() + timedelta(minutes=30)
    assert bridge.apply_setpoint(
        HUB, "battery", "bess", {"ts": _now(), "valid_until": until, "p_kw": -4.0}
    ).result(10)
    st = server.sunspec_model(BAT, 124)
    assert st.raw["StorCtl_Mod"] == 3
    assert st.value("InWRte") == pytest.approx(-20.0) and st.value("OutWRte") == pytest.approx(20.0)
    assert 1790 <= st.raw["InOutWRte_RvrtTms"] <= 1800  # the battery reverts at valid_until
    assert bridge.apply_setpoint(
        HUB, "pv", "pv_mono", {"ts": _now(), "valid_until": until, "p_max_kw": 12.5}
    ).result(10)
    ctl = server.sunspec_model(PV, 123)
    assert ctl.value("WMaxLimPct") == pytest.approx(25.0) and ctl.raw["WMaxLim_Ena"] == 1
    assert bridge.status()["writes_ok"] == 2


def test_garbage_registers_rejected_with_counted_reasons(plant, server, bridge):
    reg = plant.ingest.registry  # the site's devices with their rated power, as in the daemon
    for key, rated in [
        ((HUB, "pv", "pv_mono"), 50.0),
        ((HUB, "battery", "bess"), 20.0),
        ((HUB, "meter", "main"), 100.0),
        (("hub2", "meter", "main"), 100.0),
    ]:
        reg.add(*key, rated)
    server.set_point(BAT, 124, "ChaState", 14000)  # 140 %
    server.set_point(PV, 103, "W", 9000)  # 90 kW from a 50 kW inverter
    server.set(SDM, 0x0034, list(struct.unpack(">HH", struct.pack(">f", float("nan")))))
    bridge.poll_now()
    c = plant.counters()
    assert c["rejected_out_of_range"] == 1  # the SoC
    assert c["rejected_non_finite"] == 1  # the NaN power
    assert c["rejected_above_rated"] == 1  # the PV
    assert c["accepted"] == 1  # the EM24
    server.set_point(PV, 103, "W", None)  # not implemented (0x8000): the state lacks p_kw
    bridge.poll_now()
    assert plant.counters()["rejected_missing_field"] == 1


def test_exception_responses_and_timeouts_then_recovery(plant, server, bridge):
    server.fail[SDM] = ExcCodes.DEVICE_FAILURE
    server.delay_s[BAT] = 1.5  # longer than the 0.5 s timeout
    bridge.poll_now()
    st = bridge.status()
    assert st["exception_response"] == 1 and st["timeout"] == 1
    assert any("exception_response" in a for a in (plant.gateway.flush() and plant.alerts))
    del server.fail[SDM]
    server.delay_s[BAT] = 0.0
    import time

    time.sleep(0.3)  # past the back-off
    bridge.poll_now()
    plant.gateway.flush()
    assert bridge.status()["answering"] == 4
    assert plant.last(HUB, "battery", "bess")["soc_pct"] == pytest.approx(62.5)


def test_unreachable_device_backs_off(plant):
    settings = ModbusSettings(
        devices=[
            {
                "hub": HUB,
                "kind": "meter",
                "device": "main",
                "host": "127.0.0.1",
                "port": 1,
                "register_map": "eastron_sdm630",
                "timeout_s": 0.3,
                "reconnect_min_s": 5,
                "reconnect_max_s": 10,
            }
        ]
    )
    b = ModbusBridge(settings, plant.gateway.submit, autopoll=False).start()
    try:
        b.poll_now()
        b.poll_now()  # within the back-off: no new attempt
        assert b.status()["connect_failed"] == 1
    finally:
        b.stop()


def test_write_to_readonly_device_counts_write_failed(plant, server, bridge):
    bridge.poll_now()
    server.fail[PV] = ExcCodes.ILLEGAL_FUNCTION
    until = _now() + timedelta(minutes=15)
    assert not bridge.apply_setpoint(
        HUB, "pv", "pv_mono", {"ts": _now(), "valid_until": until, "p_max_kw": 10}
    ).result(10)
    assert bridge.status()["write_failed"] == 1


def test_sunspec_image_roundtrip():
    regs = sunspec.build_image(pv_models())
    chain = sunspec.parse_chain(40000, regs)
    assert [b.model_id for b in chain] == [1, 103, 120, 123]
    b103 = chain[1]
    m = sunspec.Model(b103, regs[b103.address - 40000 : b103.address - 40000 + b103.length])
    assert m.value("W") == pytest.approx(41300.0) and m.raw["Hz"] is None
    common = sunspec.Model(chain[0], regs[4:70])
    assert common.raw["Mn"] == "cer-ems-sim"


def test_meter_map_errors_are_one_line(tmp_path):
    from ems.errors import ConfigError

    bad = tmp_path / "m.yaml"
    bad.write_text("name: x\nvalues: {p_w: {address: 1, type: float64}}\n")
    with pytest.raises(ConfigError, match="float64|type"):
        load_map(str(bad))
    with pytest.raises(ConfigError, match="shipped maps"):
        load_map("no_such_meter")
