"""``ems run --simulate --devices``: the demo's chargers speak OCPP to the CSMS and its batteries and
PV inverters are SunSpec devices on a pymodbus server; the plant obeys what reaches them."""

from __future__ import annotations

from adapters.config_io import load_operation
from adapters.sim.simulate import DEFAULT_SITE, run_simulation


def test_simulated_plant_runs_through_ocpp_and_modbus(tmp_path):
    site, setup, fc = load_operation(DEFAULT_SITE)
    lines: list[str] = []
    res = run_simulation(
        site, setup, fc, state_dir=tmp_path / "sim", hours=1.0, start_local="2025-06-16 08:00",
        devices=True, echo=lines.append,
    )  # fmt: skip
    assert res["finished"] and res["steps"] == 4
    dev = res["devices"]
    n_chargers = sum(1 for d in setup.devices() if d[1] == "ev_charger")
    assert dev["ocpp"]["connected"] == dev["ocpp"]["configured"] == n_chargers
    assert dev["ocpp"]["profiles_accepted"] >= 4 and dev["ocpp"]["profiles_rejected"] == 0
    n_bat = sum(1 for d in setup.devices() if d[1] == "battery")
    assert dev["modbus"]["answering"] == dev["modbus"]["devices"]
    assert dev["modbus"]["writes_ok"] == 4 * n_bat  # one battery setpoint per step, read back
    assert dev["modbus"].get("timeout", 0) == 0
    assert any("OCPP charge points" in line for line in lines)
    # the chargers' and batteries' telemetry reached the store through the bridges (the same
    # telemetry points as MQTT): one per device and step at least
    import sqlite3

    db = sqlite3.connect(tmp_path / "sim" / "timeseries.sqlite")
    per_kind = dict(
        db.execute(
            "SELECT kind, COUNT(*) FROM points WHERE measurement = 'telemetry' GROUP BY kind"
        ).fetchall()
    )
    assert per_kind["ev_charger"] >= 4 * n_chargers
    assert per_kind["battery"] >= 4 * n_bat
