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

from adapters.config_io import load_operation
from adapters.runtime.daemon import StateDB
from adapters.sim.simulate import run_simulation
from adapters.sqlite_store import SQLiteStore
from ems.techs.ai_cluster import AiCluster
from ems.techs.battery import Battery
from ems.techs.ev_charge_points import EvChargePoints
from tests.operation.conftest import write_site


def _site(tmp: Path, community: str | None = None) -> Path:
    return write_site(
        tmp,
        community=community or f"optest{uuid.uuid4().hex[:8]}",
        horizon_h=6,
        solver={"time_limit_s": 3.0},
    )


def _forget(host: str, port: int, community: str) -> None:
    """Drop the persistent sessions this test left on a shared broker."""
    from tests.integration.helpers import forget_session

    for cid in (f"cer-ems-{community}", f"cer-sim-plant-{community}"):
        forget_session(host, port, cid)


def test_simulated_day_through_real_broker(mqtt_broker, tmp_path: Path) -> None:
    """A simulated day end to end through the real broker and the store, with junk on the device
    topics all along (rejected and counted, never a crash): setpoints within device limits, every
    EV leaves with its request, AI batch jobs finish before their deadlines, the executed plan's
    balance closes at every meter, every hour is in the shared-energy log."""
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = mqtt_broker
    community = f"optest{uuid.uuid4().hex[:8]}"
    site, setup, fc = load_operation(_site(tmp_path, community))
    junk = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"junk-{community}")
    junk.connect(host, port, 10)
    junk.loop_start()
    stop = threading.Event()

    def spam() -> None:
        bad = [
            b"not json",
            b"[1,2]",
            b'{"ts": "2025-06-16T09:00:00Z", "p_kw": "x", "soc_pct": 50}',
            b'{"ts": "2025-06-16T09:00:00Z", "p_kw": 1e9, "soc_pct": 50}',
            b'{"p_kw": NaN}',
            b"",
            b'{"ts": "yesterday", "plugged": true, "p_kw": 0}',
        ]
        i = 0
        while not stop.is_set():
            junk.publish(f"cer/{community}/hub1/battery/bess/state", bad[i % len(bad)], qos=1)
            junk.publish(
                f"cer/{community}/hub1/ev_charger/cp1/state", bad[(i + 3) % len(bad)], qos=1
            )
            junk.publish(f"cer/{community}/nohub/meter/main/state", b"{}", qos=1)
            junk.publish(
                f"cer/{community}/hub1/ai_cluster/gpu1/job", bad[(i + 5) % len(bad)], qos=1
            )
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=spam, daemon=True)
    t.start()
    try:
        res = run_simulation(
            site,
            setup,
            fc,
            state_dir=tmp_path / "state",
            hours=24,
            start_local="2025-06-16 00:00",
            mqtt={"host": host, "port": port},
            echo=lambda _m: None,
        )
    finally:
        stop.set()
        t.join(5)
        junk.loop_stop()
        junk.disconnect()
        _forget(host, port, community)
    assert res["finished"] and res["steps"] == 96
    assert set(res["modes"]) <= {"optimal", "feasible"}
    start = pd.Timestamp("2025-06-16 00:00", tz="Europe/Rome").tz_convert("UTC")
    assert res["ledger_hours"] == [
        int((start + pd.Timedelta(hours=i)).timestamp()) for i in range(24)
    ]
    # every EV that left had its request met (all are feasible: ≥ 1 h at 7.4 kW for ≤ half a battery)
    ems = res["ems"]
    assert ems["ev_sessions_done"] >= 3 and ems["ev_requests_met"] == ems["ev_sessions_done"]
    # AI batch jobs: several done, none late, and nothing left whose deadline has passed
    plant = res["plant"]
    assert ems["ai_jobs_done"] >= 2 and ems["ai_jobs_late"] == 0
    end = start + pd.Timedelta(hours=24)
    ai = setup.first(AiCluster, "hub1")
    cluster = plant.device(ai.name)  # the simulated cluster: its queue and finished jobs
    assert all(pd.Timestamp(j["deadline"]) > end for j in cluster.queue)
    rows = pd.DataFrame(plant.rows)
    pts = {c.point_id: c for c in setup.first(EvChargePoints, "hub1").points}
    bat = setup.first(Battery, "hub1")
    p_bat = bat.spec.c_rate_per_h * bat.capacity.value()
    for hub in setup.hubs:
        # the executed plan's balance closes at every meter
        lhs = rows[f"{hub}.import_kw"] - rows[f"{hub}.export_kw"]
        rhs = (
            rows[f"{hub}.load_kw"]
            + rows[f"{hub}.battery_kw"]
            + rows[f"{hub}.ev_kw"]
            + rows[f"{hub}.ai_kw"]
            - rows[f"{hub}.pv_kw"]
        )
        assert np.allclose(lhs, rhs, atol=1e-9)
    assert (rows["hub1.ai_kw"] >= ai.floor_kw - 1e-9).all() and (
        rows["hub1.ai_kw"] <= ai.rated_kw + 1e-9
    ).all()
    assert (rows["hub1.battery_kw"].abs() <= p_bat + 1e-9).all()
    assert (rows["hub1.ev_kw"] <= sum(c.p_kw for c in pts.values()) + 1e-9).all()
    # setpoints came over MQTT from the plan (not the devices' own safe modes)
    assert rows["hub1.battery_kw"].abs().sum() > 0 or rows["hub1.ev_kw"].sum() > 0
    # telemetry, setpoints, plan, solver and shared energy are in the store
    store = SQLiteStore(tmp_path / "state" / "timeseries.sqlite")
    try:
        for m in ("telemetry", "setpoint", "plan", "solver", "shared_energy", "ai_cluster_job"):
            assert store.count(m) > 0, m
    finally:
        store.close()
    # AI batch jobs came one by one over the job topic: the EMS's job book holds the plant's
    # queue (the jobs not yet done) and saw the finished ones as done
    state = StateDB(tmp_path / "state" / "ems-state.sqlite")
    try:
        book = state.get("plant_state")["books"]["hub1/ai_cluster/gpu1"]["jobs"]
        closed = {
            j["job_id"] for j in state.get("plant_state")["books"]["hub1/ai_cluster/gpu1"]["closed"]
        }
    finally:
        state.close()
    assert set(book) == {j["job"] for j in cluster.queue}
    assert closed == {j["job"] for j in cluster.done}
    assert book or closed


def _ems(args: list[str], log: Path) -> subprocess.Popen:
    code = "import sys; from adapters.cli.main import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


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
    args = [
        "run",
        "--simulate",
        "--config",
        str(site),
        "--hours",
        "3",
        "--state",
        str(state),
        "--start",
        "2025-06-16 10:00",
        "--mqtt-host",
        host,
        "--mqtt-port",
        str(port),
    ]
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
    res = run_simulation(
        site,
        setup,
        fc,
        state_dir=tmp_path / "state",
        hours=2,
        start_local="2025-06-16 11:00",
        mqtt={"host": "127.0.0.1", "port": private_mosquitto.port},
        echo=lambda _m: None,
    )
    t.join(30)
    assert restarted.is_set()
    assert res["finished"] and res["steps"] == 8
    start = pd.Timestamp("2025-06-16 11:00", tz="Europe/Rome").tz_convert("UTC")
    assert res["ledger_hours"] == [
        int((start + pd.Timedelta(hours=i)).timestamp()) for i in range(2)
    ]
    # after the reconnect the plan drives the devices again
    with sqlite3.connect(db) as c:
        last = c.execute("SELECT alerts FROM steps ORDER BY start DESC LIMIT 1").fetchone()[0]
    assert last == "[]"


def test_sigterm_finishes_the_step_and_goes_offline(mqtt_broker, tmp_path: Path) -> None:
    import json

    from adapters.mqtt.client import MqttClient, wait_until
    from adapters.mqtt.config import MqttSettings

    host, port = mqtt_broker
    community = f"optest{uuid.uuid4().hex[:8]}"
    site = _site(tmp_path, community)
    state = tmp_path / "state"
    log = tmp_path / "ems.log"
    proc = _ems(
        [
            "run",
            "--simulate",
            "--config",
            str(site),
            "--hours",
            "6",
            "--state",
            str(state),
            "--mqtt-host",
            host,
            "--mqtt-port",
            str(port),
        ],
        log,
    )
    db = state / "ems-state.sqlite"
    deadline = time.time() + 90
    while _steps(db) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    assert "stopped before the end" in log.read_text()
    statuses: list[dict] = []
    watcher = MqttClient(
        MqttSettings(community=community, host=host, port=port, client_id=f"w-{community}"),
        last_will=False,
    )
    watcher.subscribe(
        f"cer/{community}/ems/status", lambda m: statuses.append(json.loads(m.payload))
    )
    watcher.start()
    try:
        assert wait_until(lambda: bool(statuses), 10)
        assert statuses[-1]["state"] == "offline"
    finally:
        watcher.stop(announce_offline=False)
        _forget(host, port, community)
    # and the run resumes where it stopped
    n = _steps(db)
    assert n >= 3


def test_realtime_daemon_steps_on_demand_when_an_ev_plugs_in(tmp_path: Path, monkeypatch) -> None:
    """`ems run --config` wiring: a step at start, then an on-demand step when an EV plugs in;
    systemd's notify protocol on a real datagram socket: READY=1, WATCHDOG=1 per step, STOPPING=1."""
    import json
    import socket
    import tempfile
    import threading

    sock_dir = tempfile.mkdtemp(prefix="sdn", dir="/tmp")  # AF_UNIX paths must stay short
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(f"{sock_dir}/notify")
    notify.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", f"{sock_dir}/notify")

    from adapters.broker.embedded import EmbeddedBroker
    from adapters.mqtt.client import MqttClient
    from adapters.mqtt.config import MqttSettings
    from adapters.runtime.daemon import Runtime, StateDB, run_realtime, utcnow
    from ems.operation.service import OperationService

    community = f"optest{uuid.uuid4().hex[:8]}"
    site, setup, fc = load_operation(write_site(tmp_path, community=community, horizon_h=4))
    broker = EmbeddedBroker().start()
    settings = MqttSettings(community=community, host=broker.host, port=broker.port)
    runtime = Runtime(
        OperationService(site, setup, fc),
        settings,
        SQLiteStore(tmp_path / "ts.sqlite"),
        StateDB(tmp_path / "state.sqlite"),
        clock=utcnow,
    ).start()
    dev = MqttClient(settings.model_copy(update={"client_id": "dev"}), last_will=False).start()
    dev.wait_connected(10)

    def plug_in() -> None:
        deadline = time.time() + 30
        while runtime.last is None and time.time() < deadline:
            time.sleep(0.05)
        now = utcnow()
        payload = {
            "ts": now.isoformat(),
            "plugged": True,
            "p_kw": 0.0,
            "requested_e_kwh": 12.0,
            "session_e_kwh": 0.0,
            "departure": (now + pd.Timedelta(hours=3)).isoformat(),
        }
        dev.publish(f"cer/{community}/hub1/ev_charger/cp1/state", json.dumps(payload), qos=1)

    threading.Thread(target=plug_in, daemon=True).start()
    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    t0 = time.time()
    try:
        run_realtime(runtime, 15, max_steps=2, echo=lambda _m: None)
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])
        dev.stop(announce_offline=False)
        runtime.statedb.close()
        broker.stop()
    assert time.time() - t0 < 60  # the second step came on demand, not at the next quarter hour
    messages = []
    while True:
        try:
            messages.append(notify.recv(256).decode())
        except TimeoutError:
            break
    notify.close()
    assert messages.index("READY=1") >= 1 and messages[-1] == "STOPPING=1", (
        messages
    )  # ready once planned
    assert messages.count("WATCHDOG=1") >= 2, messages  # one per step at least
    res = runtime.last.outcome.result
    cp1 = next(sp for sp in res.setpoints if sp.key == ("hub1", "ev_charger", "cp1"))
    assert cp1.source == "plan"  # fresh telemetry: planned, not the stale-device fallback
    assert not any("ev_charger/cp1" in a for a in res.alerts)


def test_simulated_hour_into_real_influxdb(mqtt_broker, influx_url, tmp_path: Path) -> None:
    """Telemetry, setpoints, plan, forecasts, solver statistics and shared energy reach InfluxDB
    (queried back with InfluxQL, as the dashboards do)."""
    from adapters.influx.config import InfluxSettings
    from adapters.influx.store import InfluxStore

    host, port = mqtt_broker
    community = f"optest{uuid.uuid4().hex[:8]}"
    site, setup, fc = load_operation(_site(tmp_path, community))
    settings = InfluxSettings(
        url=influx_url,
        database=f"ems_{community}",
        buffer_path=tmp_path / "buf.sqlite",
        flush_interval_s=0.2,
    )
    try:
        res = run_simulation(
            site,
            setup,
            fc,
            state_dir=tmp_path / "state",
            hours=1,
            start_local="2025-06-16 12:00",
            mqtt={"host": host, "port": port},
            echo=lambda _m: None,
            store=InfluxStore(settings),
        )
    finally:
        _forget(host, port, community)
    assert res["finished"] and len(res["ledger_hours"]) == 1
    reader = InfluxStore(settings)
    try:
        assert not reader.query('SELECT count(*) FROM "no_such_measurement"')
        for m in ("telemetry", "setpoint", "plan", "forecast", "solver", "shared_energy"):
            rows = reader.query(f'SELECT count(*) FROM "{m}"')
            assert rows, m
    finally:
        reader.close()
