"""End to end through a real MQTT broker (system Mosquitto on 127.0.0.1:1883, else a private one;
under CI=true a missing broker fails): a simulated run, and a daemon killed with SIGKILL and
restarted that resumes from its persisted state with no hour missing in the shared-energy log."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from adapters.sim.simulate import run_simulation
from adapters.sqlite_store import SQLiteStore
from ems.operation.assembly import load_operation

from tests.operation.conftest import write_site


def _site(tmp: Path) -> Path:
    return write_site(tmp, community=f"optest{uuid.uuid4().hex[:8]}", horizon_h=6, solver={"time_limit_s": 3.0})


def test_simulated_run_through_real_broker(mqtt_broker, tmp_path: Path) -> None:
    host, port = mqtt_broker
    site, setup, fc = load_operation(_site(tmp_path))
    res = run_simulation(site, setup, fc, state_dir=tmp_path / "state", hours=2, start_local="2025-06-16 09:00",
                         mqtt={"host": host, "port": port}, echo=lambda _m: None)
    assert res["finished"] and res["steps"] == 8
    assert set(res["modes"]) <= {"optimal", "feasible"}
    start = pd.Timestamp("2025-06-16 09:00", tz="Europe/Rome").tz_convert("UTC")
    assert res["ledger_hours"] == [int((start + pd.Timedelta(hours=i)).timestamp()) for i in range(2)]
    plant = res["plant"]
    rows = pd.DataFrame(plant.rows)
    ai = setup.ai_clusters["gpu1"]
    pts = {c.point_id: c for c in setup.ev_points["hub1"].points}
    bat = setup.batteries["hub1"]
    p_bat = bat.spec.c_rate_per_h * bat.capacity.value()
    for hub in setup.hubs:
        # the executed plan's balance closes at every meter
        lhs = rows[f"{hub}.import_kw"] - rows[f"{hub}.export_kw"]
        rhs = rows[f"{hub}.load_kw"] + rows[f"{hub}.battery_kw"] + rows[f"{hub}.ev_kw"] + rows[f"{hub}.ai_kw"] - rows[f"{hub}.pv_kw"]
        assert np.allclose(lhs, rhs, atol=1e-9)
    assert (rows["hub1.ai_kw"] >= ai.floor_kw - 1e-9).all() and (rows["hub1.ai_kw"] <= ai.rated_kw + 1e-9).all()
    assert (rows["hub1.battery_kw"].abs() <= p_bat + 1e-9).all()
    assert (rows["hub1.ev_kw"] <= sum(c.p_kw for c in pts.values()) + 1e-9).all()
    # setpoints came over MQTT from the plan (not the devices' own safe modes)
    assert rows["hub1.battery_kw"].abs().sum() > 0 or rows["hub1.ev_kw"].sum() > 0
    # telemetry, setpoints, plan, solver and shared energy are in the store
    store = SQLiteStore(tmp_path / "state" / "timeseries.sqlite")
    try:
        for m in ("telemetry", "setpoint", "plan", "solver", "shared_energy"):
            assert store.count(m) > 0, m
    finally:
        store.close()


def _ems(args: list[str], log: Path) -> subprocess.Popen:
    code = "import sys; from adapters.cli.main import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=log.open("a"), stderr=subprocess.STDOUT,
                            cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _steps(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT count(*) FROM steps").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_and_restart_resumes_without_lost_hours(mqtt_broker, tmp_path: Path) -> None:
    host, port = mqtt_broker
    site = _site(tmp_path)
    state = tmp_path / "state"
    args = ["run", "--simulate", "--config", str(site), "--hours", "3", "--state", str(state), "--start", "2025-06-16 10:00",
            "--mqtt-host", host, "--mqtt-port", str(port)]
    log = tmp_path / "ems.log"
    db = state / "ems-state.sqlite"
    proc = _ems(args, log)
    deadline = time.time() + 90
    while _steps(db) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, log.read_text()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    killed_at = _steps(db)
    assert 5 <= killed_at < 12
    proc = _ems(args, log)
    assert proc.wait(150) == 0, log.read_text()
    text = log.read_text()
    assert "resuming the simulation" in text
    with sqlite3.connect(db) as c:
        hours = [r[0] for r in c.execute("SELECT hour_utc FROM shared_energy ORDER BY hour_utc")]
        steps = c.execute("SELECT count(*) FROM steps").fetchone()[0]
    start = pd.Timestamp("2025-06-16 10:00", tz="Europe/Rome").tz_convert("UTC")
    assert hours == [int((start + pd.Timedelta(hours=i)).timestamp()) for i in range(3)], text
    assert steps == 12


def test_broker_restart_mid_run_resumes(private_mosquitto, tmp_path: Path) -> None:
    """The broker goes away for a moment: steps keep running on the last known state (stale
    devices get safe setpoints), the clients reconnect and the run completes with every hour logged."""
    import threading

    site, setup, fc = load_operation(_site(tmp_path))
    db = tmp_path / "state" / "ems-state.sqlite"
    restarted = threading.Event()

    def restart_after_three_steps() -> None:
        deadline = time.time() + 60
        while _steps(db) < 3 and time.time() < deadline:
            time.sleep(0.05)
        private_mosquitto.restart()
        restarted.set()

    t = threading.Thread(target=restart_after_three_steps, daemon=True)
    t.start()
    res = run_simulation(site, setup, fc, state_dir=tmp_path / "state", hours=2, start_local="2025-06-16 11:00",
                         mqtt={"host": "127.0.0.1", "port": private_mosquitto.port}, echo=lambda _m: None)
    t.join(30)
    assert restarted.is_set()
    assert res["finished"] and res["steps"] == 8
    start = pd.Timestamp("2025-06-16 11:00", tz="Europe/Rome").tz_convert("UTC")
    assert res["ledger_hours"] == [int((start + pd.Timedelta(hours=i)).timestamp()) for i in range(2)]
    # after the reconnect the plan drives the devices again
    with sqlite3.connect(db) as c:
        last = c.execute("SELECT alerts FROM steps ORDER BY start DESC LIMIT 1").fetchone()[0]
    assert last == "[]"
