"""Issue 16 A: the daemon loses nothing between steps. A real `ems run --config` daemon against a
private Mosquitto: state and job messages arrive after a step, the daemon is killed with SIGKILL
before the next step, restarted — and resumes with exactly those messages (unplugged charger, job
done, new job), the first step after the restart plans nothing for the unplugged charger, and the
last plan is restored into the model (warm start). And the daemon takes messages while a step
holds the plant state: they are persisted and acknowledged at once, so a broker killed during a
long solve loses none of them."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
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
from tests.operation.conftest import write_site

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _ems(args: list[str], log: Path) -> subprocess.Popen:
    code = "import sys; from adapters.cli.main import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


STEP_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d (optimal|feasible|fallback) in ", re.M)


def _steps(log: Path) -> int:
    """Steps the daemon has completed (one echo line each; a step's row is per quarter hour)."""
    return len(STEP_LINE.findall(log.read_text())) if log.exists() else 0


def _kv(db: Path, key: str) -> dict:
    rows = _query(db, f"SELECT value FROM kv WHERE key = '{key}'")
    return json.loads(rows[0][0]) if rows else {}


def _cp1_setpoint(db: Path) -> float:
    plan = _kv(db, "last_plan")
    return next(
        sp["values"]["p_kw"]
        for sp in plan["setpoints"]
        if (sp["hub"], sp["kind"], sp["device"]) == ("hub1", "ev_charger", "cp1")
    )


def test_kill9_between_a_state_message_and_the_next_step(private_mosquitto, tmp_path: Path):
    community = f"dur{uuid.uuid4().hex[:8]}"
    port = private_mosquitto.port
    site = write_site(
        tmp_path,
        community=community,
        horizon_h=4,
        solver={"time_limit_s": 5.0},
        mqtt={"host": "127.0.0.1", "port": port, "reconnect_max_s": 1},
        store={"path": str(tmp_path / "state" / "ems-state.sqlite")},
    )
    db = tmp_path / "state" / "ems-state.sqlite"
    log = tmp_path / "ems.log"
    dev = MqttClient(
        MqttSettings(community=community, port=port, client_id=f"gw-{community}"),
        last_will=False,
    ).start()
    assert dev.wait_connected(10)

    def send(suffix: str, doc: dict) -> None:
        dev.publish(f"cer/{community}/hub1/{suffix}", json.dumps(doc), qos=1).wait_for_publish(5)

    def now() -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    proc = _ems(["-v", "run", "--config", str(site)], log)
    try:
        assert wait_until(lambda: _steps(log) >= 1, 120), log.read_text()
        # a car that must charge now (5.5 kWh in 45 min at 7.4 kW) and a batch job: on-demand step
        t = now()
        send(
            "ev_charger/cp1/state",
            {
                "ts": t.isoformat(),
                "plugged": True,
                "p_kw": 0.0,
                "requested_e_kwh": 5.5,
                "session_e_kwh": 0.0,
                "departure": (t + pd.Timedelta(minutes=45)).isoformat(),
            },
        )
        job = {
            "ts": t.isoformat(),
            "energy_kwh": 5.0,
            "deadline": (t + pd.Timedelta(hours=3)).isoformat(),
        }
        send("ai_cluster/gpu1/job", {**job, "job_id": "j1"})
        assert wait_until(
            lambda: _steps(log) >= 2 and not _query(db, "SELECT seq FROM inbox"), 60
        ), log.read_text()
        assert wait_until(
            lambda: (
                "j1"
                in _kv(db, "plant_state")
                .get("books", {})
                .get("hub1/ai_cluster/gpu1", {})
                .get("jobs", {})
            ),
            30,
        )
        assert _cp1_setpoint(db) > 0.05  # the plan charges the car now (scaled by the quarter left)
        while True:  # let the on-demand steps settle (the daemon waits up to 1 s for a trigger)
            steps_before = _steps(log)
            time.sleep(1.5)
            if _steps(log) == steps_before:
                break
        # after the step: the car leaves, j1 is done, j2 arrives — then SIGKILL
        t = now()
        send("ev_charger/cp1/state", {"ts": t.isoformat(), "plugged": False, "p_kw": 0.0})
        send("ai_cluster/gpu1/job", {**job, "ts": t.isoformat(), "job_id": "j1", "status": "done"})
        send("ai_cluster/gpu1/job", {**job, "ts": t.isoformat(), "job_id": "j2"})
        # every message is durable before it is acknowledged: kill as soon as the three are in
        # the write-ahead table, before the on-demand step j2 triggers can commit them
        assert wait_until(
            lambda: len(_query(db, "SELECT seq FROM inbox")) == 3 or _steps(log) > steps_before,
            30,
            interval_s=0.002,
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        pending = len(_query(db, "SELECT seq FROM inbox"))
        assert pending == 3, "killed after the next step: the test did not test the gap"
        steps_killed = _steps(log)
        with log.open("a") as f:
            f.write("\n--- restart ---\n")
        proc = _ems(["-v", "run", "--config", str(site)], log)
        assert wait_until(lambda: _steps(log) > steps_killed, 120), log.read_text()
        text = log.read_text().split("--- restart ---")[1]
        assert "resumed: 3 messages replayed" in text, text
        assert "restored (warm start)" in text, text
        state = _kv(db, "plant_state")
        assert state["latest"]["hub1/ev_charger/cp1"]["plugged"] is False
        book = state["books"]["hub1/ai_cluster/gpu1"]
        assert set(book["jobs"]) == {"j2"}
        assert "j1" in {j["job_id"] for j in book["closed"] if j["status"] == "done"}
        assert _cp1_setpoint(db) == 0.0  # nothing planned for the unplugged charger
        assert not _query(db, "SELECT seq FROM inbox")  # absorbed by the step after the restart
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        dev.stop(announce_offline=False)


def _runtime(tmp_path: Path, port: int, community: str, start: pd.Timestamp) -> Runtime:
    site, setup, fc = load_operation(
        write_site(tmp_path, community=community, horizon_h=4, solver={"time_limit_s": 5.0})
    )
    return Runtime(
        OperationService(site, setup, fc),
        MqttSettings(community=community, port=port, client_id=f"ems-{community}"),
        SQLiteStore(tmp_path / "ts.sqlite"),
        StateDB(tmp_path / "state.sqlite"),
        clock=lambda: start + pd.Timedelta(minutes=1),
    ).start()


def test_messages_during_a_step_are_taken_at_once_and_survive_a_broker_sigkill(
    private_mosquitto, tmp_path: Path
):
    """A step holds the plant state for its whole solve (seconds). State messages arriving
    meanwhile must not wait for it in flight: Mosquitto 2.0 saves a message in flight to a
    connected client only at its next counted change (only queued messages count for
    ``autosave_on_changes``), so a broker killed during a long solve lost messages it had already
    acknowledged to their publisher (bench/soak.py). Now each is persisted and acknowledged at
    once, applied in order when the step lets go of the state."""
    community = f"dur{uuid.uuid4().hex[:8]}"
    port = private_mosquitto.port
    start = pd.Timestamp("2025-06-16 10:00", tz="UTC")
    rt = _runtime(tmp_path, port, community, start)
    gw = MqttClient(
        MqttSettings(community=community, port=port, client_id=f"gw-{community}"),
        last_will=False,
    ).start()
    meter = ("hub1", "meter", "main")
    n = 20
    try:
        assert rt.client.wait_subscribed(10) and gw.wait_connected(10)
        with rt.state_lock:  # what a running step holds for its whole solve
            for i in range(n):
                doc = {
                    "ts": (start + pd.Timedelta(seconds=i)).isoformat(),
                    "import_p_kw": 10 + i,
                    "export_p_kw": 0,
                }
                gw.publish(f"cer/{community}/hub1/meter/main/state", json.dumps(doc), qos=1)
            # all persisted by the daemon while the "step" still holds the state
            assert wait_until(lambda: rt.statedb.received("state/hub1/meter/main/") == n, 15), (
                rt.statedb.received("state/hub1/meter/main/")
            )
            assert rt.received == 0  # not applied yet: the state is the step's
            private_mosquitto.stop(sig=signal.SIGKILL)
            private_mosquitto.start()
        assert rt.client.wait_subscribed(15)
        out = rt.run_step(start)
        assert out is not None
        assert rt.statedb.received("state/hub1/meter/main/") == n
        assert rt.service.state.value(meter, "import_p_kw") == 10 + n - 1  # applied in order
        assert rt.received >= n  # (a redelivery after the restart is applied again)
    finally:
        gw.stop(announce_offline=False)
        rt.stop()
        rt.statedb.close()


def test_an_hour_closed_during_a_step_is_logged_with_the_state_that_closed_it(
    private_mosquitto, tmp_path: Path
):
    """A meter counter taken during a solve closes an hour when the step lets go of the state:
    the hour is then in the state's ledger (never closed again), so the commit that saves that
    state must also log the hour — else a SIGKILL before the next step lost it for good (the
    soak's 23 of 24 hours). ``run_step``'s sequence: solve holding the state, then record."""
    community = f"dur{uuid.uuid4().hex[:8]}"
    start = pd.Timestamp("2025-06-16 10:00", tz="UTC")
    rt = _runtime(tmp_path, private_mosquitto.port, community, start)
    gw = MqttClient(
        MqttSettings(community=community, port=private_mosquitto.port, client_id=f"gw-{community}"),
        last_will=False,
    ).start()
    hour = start - pd.Timedelta(hours=1)

    def counter(at: pd.Timestamp, e_kwh: float) -> None:
        doc = {"ts": at.isoformat(), "import_p_kw": 40.0, "export_p_kw": 0.0}
        doc |= {"import_e_kwh": e_kwh, "export_e_kwh": 0.0}
        gw.publish(f"cer/{community}/hub1/meter/main/state", json.dumps(doc), qos=1)

    try:
        assert rt.client.wait_subscribed(10) and gw.wait_connected(10)
        counter(hour, 100.0)
        assert wait_until(lambda: rt.received == 1, 10)
        with rt.holding_state():  # the step's solve
            outcome = rt.service.step(start, now=start)
            counter(start, 140.0)  # closes 09:00–10:00, arriving during the solve
            assert wait_until(lambda: rt.statedb.received("state/hub1/meter/main/") == 2, 10)
        assert str(int(hour.timestamp())) in rt.service.state.ledger
        rt._record(start, outcome, 0.1)
        # what a SIGKILL now leaves on disk: the hour is logged, 40 kWh imported
        assert rt.statedb.hours() == [int(hour.timestamp())]
        row = rt.statedb.db.execute("SELECT import_wh FROM shared_energy").fetchone()
        assert row == (40_000,)
    finally:
        gw.stop(announce_offline=False)
        rt.stop()
        rt.statedb.close()
