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


def _site_with_device_sections(tmp_path):
    """The demo SITE.yaml plus valid ocpp:/modbus: sections for one of its chargers and batteries."""
    import yaml

    site, setup, _fc = load_operation(DEFAULT_SITE)
    charger = next(d for d in setup.devices() if d[1] == "ev_charger")
    battery = next(d for d in setup.devices() if d[1] == "battery")
    raw = yaml.safe_load(DEFAULT_SITE.read_text())
    raw["scenario"] = str((DEFAULT_SITE.parent / raw["scenario"]).resolve())
    raw["sizes"] = str((DEFAULT_SITE.parent / raw["sizes"]).resolve())
    raw["ocpp"] = {
        "security_profile": 1,
        "charge_points": [
            {"id": "WB1", "hub": charger[0], "device": charger[2], "password": "secret"}
        ],
    }
    raw["modbus"] = {"devices": [{"hub": battery[0], "kind": "battery", "device": battery[2],
                                  "host": "10.0.0.2"}]}  # fmt: skip
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_simulate_says_in_one_line_that_the_sites_device_sections_are_ignored(tmp_path, capsys):
    """``ems run --simulate --config SITE.yaml`` with ocpp:/modbus: sections runs the simulated
    plant, and warns (one line, naming the file and the sections) that those sections address
    real devices it does not use; the demo site without them gets no warning."""
    from adapters.cli.main import main

    site = _site_with_device_sections(tmp_path)
    for extra, instead in (([], "add --devices"), (["--devices"], "settings of its own")):
        argv = ["run", "--simulate", "--config", str(site), "--hours", "0.25"]
        assert main([*argv, "--state", str(tmp_path / f"st{len(extra)}"), *extra]) == 0
        out, err = capsys.readouterr()
        warnings = [ln for ln in err.splitlines() if ln.startswith("warning:")]
        assert len(warnings) == 1, err
        assert f"ignores the ocpp: and modbus: section of {site}" in warnings[0], warnings[0]
        assert instead in warnings[0], warnings[0]
        assert "1 steps in" in out  # the simulation ran
        if extra:  # the bridges' counters in one readable line, not a dict
            line = next(ln for ln in out.splitlines() if ln.startswith("devices: 3/3 OCPP"))
            assert "Modbus units answering" in line and "{" not in line, line
    argv = ["run", "--simulate", "--hours", "0.25", "--state", str(tmp_path / "plain")]
    assert main(argv) == 0
    assert "warning:" not in capsys.readouterr().err
