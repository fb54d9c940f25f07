"""The operation daemon's wiring: MQTT in and out, stores, persistence, scheduling, lifecycle.

- :class:`StateDB`: the daemon's own SQLite file (plant-state estimate, simulated plant, hourly
  shared-energy log, step log, last plan). Every accepted state or job message is appended to a
  write-ahead table (``inbox``) before the MQTT client acknowledges it — at once, also while a
  step holds the plant state (it is applied when the step lets go); each step commits the
  plant state, the last plan and the inbox rows it has absorbed in one transaction. A restart —
  even after SIGKILL — loads the last step's state, replays the inbox on top of it and restores
  the last plan into the model (warm start), so it resumes exactly where the daemon was; hours
  are closed from meter counters interpolated at the boundaries, so no hour is lost across a gap.
- :class:`Runtime`: one :class:`~ems.operation.service.OperationService` behind the issue-3 MQTT
  adapter (telemetry ingest with validation and reject counters, retained setpoints with
  ``valid_until``, last will ``offline``) and a time-series store (SQLite or InfluxDB).
- :func:`run_realtime`: APScheduler job at every quarter hour plus on-demand steps (EV plugged
  in, AI job queued), never two at once; SIGTERM finishes the running step, publishes offline.
The same runtime, driven by an accelerated clock against the simulated plant, is
:func:`adapters.sim.simulate.run_simulation` (``ems run --simulate``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel

from ems.operation.service import OperationService, StepOutcome
from ems.operation.state import tip_of_hour
from ems.ports.timeseries import Point
from ems.techs.registry import short_quantities

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- persistence
class StateDB:
    """Daemon state in one SQLite file (WAL, one transaction per step)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS shared_energy (hour_utc INTEGER PRIMARY KEY,
                import_wh INTEGER, export_wh INTEGER, shared_wh INTEGER, tip_eur REAL, detail TEXT);
            CREATE TABLE IF NOT EXISTS steps (start TEXT PRIMARY KEY, mode TEXT, objective REAL,
                solve_s REAL, step_s REAL, alerts TEXT);
            CREATE TABLE IF NOT EXISTS alerts (ts TEXT, alert TEXT);
            CREATE TABLE IF NOT EXISTS inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,
                channel TEXT NOT NULL, hub TEXT NOT NULL, kind TEXT NOT NULL, device TEXT NOT NULL,
                payload TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS received (source TEXT NOT NULL, ts TEXT NOT NULL,
                PRIMARY KEY (source, ts)) WITHOUT ROWID;
        """)
        # FULL: a row is on disk when append_inbox returns, before the message is acknowledged
        self.db.execute("PRAGMA synchronous=FULL")
        self.lock = threading.Lock()

    def append_inbox(self, channel: str, key: tuple[str, str, str], payload: dict[str, Any]) -> int:
        """Persist one accepted state or job message (write-ahead); returns its sequence number.
        Raises when it cannot be written: the caller must then not acknowledge the message."""
        source = "/".join((channel, *key, str(payload.get("job_id", ""))))
        with self.lock:
            self.db.execute("BEGIN")
            try:
                cur = self.db.execute(
                    "INSERT INTO inbox (channel, hub, kind, device, payload) VALUES (?, ?, ?, ?, ?)",
                    (channel, *key, json.dumps(payload, separators=(",", ":"))),
                )
                # which messages were taken (a QoS 1 redelivery is the same source and ts)
                self.db.execute(
                    "INSERT OR IGNORE INTO received VALUES (?, ?)", (source, str(payload["ts"]))
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            return int(cur.lastrowid or 0)

    def received(self, source_prefix: str = "") -> int:
        """Distinct messages taken (by source and ``ts``, over the last two days of ``ts``)
        whose source (``channel/hub/kind/device/job_id``) starts with ``source_prefix``."""
        with self.lock:
            row = self.db.execute(
                "SELECT count(*) FROM received WHERE source >= ? AND source < ?",
                (source_prefix, source_prefix + "\uffff"),
            ).fetchone()
        return int(row[0])

    def inbox(self) -> list[tuple[int, str, tuple[str, str, str], dict[str, Any]]]:
        """Messages accepted since the last committed step, in arrival order."""
        with self.lock:
            rows = self.db.execute(
                "SELECT seq, channel, hub, kind, device, payload FROM inbox ORDER BY seq"
            ).fetchall()
        return [(r[0], r[1], (r[2], r[3], r[4]), json.loads(r[5])) for r in rows]

    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def commit_step(
        self,
        kv: dict[str, Any],
        hours: list[dict[str, Any]],
        step: tuple | None,
        alerts: list[tuple[str, str]],
        *,
        raw_kv: dict[str, str] | None = None,
        inbox_upto: int | None = None,
    ) -> None:
        """One transaction: key/values (``raw_kv``: already JSON), closed hours, the step row,
        alerts, and the inbox rows up to ``inbox_upto`` (absorbed in the state being saved)."""
        with self.lock:
            self.db.execute("BEGIN")
            try:
                for k, v in kv.items():
                    self.db.execute(
                        "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                        (k, json.dumps(v, separators=(",", ":"))),
                    )
                for k, text in (raw_kv or {}).items():
                    self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (k, text))
                if inbox_upto is not None:
                    self.db.execute("DELETE FROM inbox WHERE seq <= ?", (inbox_upto,))
                if step is not None:  # keep two days of the received log (ISO ts sort as text)
                    cutoff = pd.Timestamp(step[0]) - pd.Timedelta(days=2)
                    self.db.execute(
                        "DELETE FROM received WHERE ts < ?",
                        (cutoff.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S"),),
                    )
                for h in hours:
                    self.db.execute(
                        "INSERT OR IGNORE INTO shared_energy VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            h["hour_utc"],
                            h["import_wh"],
                            h["export_wh"],
                            h["shared_wh"],
                            h.get("tip_eur", 0.0),
                            json.dumps(h.get("by_hub", {})),
                        ),
                    )
                if step is not None:
                    self.db.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?, ?, ?, ?)", step)
                self.db.executemany("INSERT INTO alerts VALUES (?, ?)", alerts)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def hours(self) -> list[int]:
        return [
            r[0] for r in self.db.execute("SELECT hour_utc FROM shared_energy ORDER BY hour_utc")
        ]

    def close(self) -> None:
        self.db.close()


# ---------------------------------------------------------------------- systemd
def sd_notify(message: str) -> None:
    """systemd notify protocol (READY=1, WATCHDOG=1, STOPPING=1) without a dependency."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(message.encode())
    except OSError:
        log.debug("sd_notify failed", exc_info=True)


def _payload(state: BaseModel) -> dict[str, Any]:
    return json.loads(state.model_dump_json())


# ---------------------------------------------------------------------- runtime
@dataclass
class StepLog:
    start: pd.Timestamp
    outcome: StepOutcome
    step_s: float


class Runtime:
    """Service + MQTT + stores. ``clock`` is wall time, or the simulated clock."""

    def __init__(
        self,
        service: OperationService,
        mqtt_settings: Any,
        store: Any,
        statedb: StateDB,
        clock: Callable[[], pd.Timestamp],
        incentive_plant_kw: float = 400.0,
    ) -> None:
        from adapters.mqtt.client import MqttClient
        from adapters.mqtt.ingest import TelemetryIngest
        from adapters.mqtt.setpoints import SetpointPublisher
        from ems.telemetry.validate import DeviceRegistry, ValidationLimits

        self.service, self.store, self.statedb, self.clock = service, store, statedb, clock
        self.community = mqtt_settings.community
        self.plant_kw = incentive_plant_kw
        registry = DeviceRegistry()
        for hub, kind, dev, rated in service.devices():
            registry.add(hub, kind, dev, rated)
        self.client = MqttClient(mqtt_settings)
        self.ingest = TelemetryIngest(
            self.client,
            store,
            registry=registry,
            on_state=self._on_state,
            limits=ValidationLimits(max_age_s=7 * 24 * 3600.0),
            clock=lambda: self.clock().to_pydatetime(),
        )
        self.publisher = SetpointPublisher(self.client, store)
        self.step_lock = threading.Lock()
        # the service's plant state: held by a step for its whole solve, so the MQTT network
        # thread never waits for it (see _on_state); take it with holding_state()
        self.state_lock = threading.Lock()
        self._pending: deque[tuple[int, str, tuple[str, str, str], dict[str, Any]]] = deque()
        self._pending_lock = threading.Lock()
        self.on_demand = threading.Event()
        self.received = 0
        self.stopping = threading.Event()
        self.last: StepLog | None = None
        # device bridges (adapters.devices.runtime.DeviceBridges): setpoints of OCPP / Modbus
        # devices also go to their bridge; their counters go into the status and the store
        self.setpoint_router: Any = None
        self.device_status: Callable[[], dict[str, Any]] | None = None
        self.stop_hooks: list[Callable[[], None]] = []  # run first in stop() (device bridges)
        self.applied_seq = 0  # last inbox row applied to the service's state
        self.replayed = 0
        self._resume()

    def _resume(self) -> None:
        """After a restart: replay the inbox on the state of the last step, restore the last plan."""
        for seq, channel, key, payload in self.statedb.inbox():
            self._apply(channel, key, payload)
            self.applied_seq, self.replayed = seq, self.replayed + 1
        plan = self.statedb.get("last_plan")
        if plan and plan.get("solution"):
            restored = self.service.controller.restore_solution(
                pd.Timestamp(plan["start"]), plan["solution"]
            )
            log.info(
                "resumed: %d messages replayed from the write-ahead table; last plan of %s %s",
                self.replayed,
                plan["start"],
                "restored (warm start)" if restored else "not restored (the model changed)",
            )
        elif self.replayed:
            log.info("resumed: %d messages replayed from the write-ahead table", self.replayed)

    def start(self, timeout_s: float = 10.0) -> Runtime:
        self.ingest.start()  # handlers first: the session's queue arrives as soon as we connect
        self.client.start()
        if not self.client.wait_connected(timeout_s):
            log.warning(
                "MQTT broker %s:%d not reachable yet; planning on the last known state and retrying",
                self.client.settings.host,
                self.client.settings.port,
            )
        return self

    def _on_state(self, topic: Any, state: BaseModel) -> None:
        """Persist the message (write-ahead), then apply it. Called on the MQTT network thread
        before the message is acknowledged: when persisting fails this raises, the message stays
        unacknowledged and the broker delivers it again after a reconnect.

        The network thread never waits for a running step (a solve holds the plant state for
        seconds): a persisted message is acknowledged at once and applied, in arrival order,
        when the state is free — by this thread if it is, else by the step when it lets go.
        Holding the acknowledgement for a whole solve kept the message in flight in the broker,
        where Mosquitto 2.0 does not save it (only queued messages count as changes for
        ``autosave_on_changes``): a broker killed then lost messages it had acknowledged to
        their publisher (bench/soak.py, BENCHMARKS.md)."""
        key = (topic.hub, topic.kind, topic.device)
        payload = _payload(state)
        with self._pending_lock:  # rows enter the queue in their inbox order
            seq = self.statedb.append_inbox(topic.channel, key, payload)
            self._pending.append((seq, topic.channel, key, payload))
        self._apply_pending_if_free()

    @contextmanager
    def holding_state(self) -> Iterator[None]:
        """Hold the service's plant state, every message persisted so far applied to it."""
        try:
            with self.state_lock:
                self._apply_pending()
                try:
                    yield
                finally:
                    self._apply_pending()
        finally:
            self._apply_pending_if_free()  # what arrived between the last look and the release

    def _apply_pending_if_free(self) -> None:
        while self._pending and self.state_lock.acquire(blocking=False):
            try:
                self._apply_pending()
            finally:
                self.state_lock.release()

    def _apply_pending(self) -> None:
        """Apply the persisted messages not yet applied, in arrival order (state lock held)."""
        trigger = False
        while True:
            with self._pending_lock:
                if not self._pending:
                    break
                seq, channel, key, payload = self._pending.popleft()
            trigger = self._apply(channel, key, payload) or trigger
            self.applied_seq = max(self.applied_seq, seq)
            self.received += 1
        if trigger:
            self.on_demand.set()

    def _apply(self, channel: str, key: tuple[str, str, str], payload: dict[str, Any]) -> bool:
        try:
            return self.service.on_message(channel, key, payload)
        except Exception:  # noqa: BLE001 - a validated payload the state cannot take: logged
            log.exception("state of %s not taken", "/".join(key))
            return False

    def _snapshot(self) -> tuple[str, int, list[dict[str, Any]]]:
        """The plant state as JSON, the last inbox row it includes and the hours it has closed
        that no step has logged yet (taken under the lock): a message applied after the step
        took its closed hours (one that arrived during the solve) may close an hour, which is
        in the state's ledger from now on, so it must be logged in the same commit."""
        with self.holding_state():
            text = json.dumps(self.service.state.to_dict(), separators=(",", ":"))
            late, self.service.pending_hours = self.service.pending_hours, []
            return text, self.applied_seq, late

    # ------------------------------------------------------------------ one step
    def run_step(self, start: pd.Timestamp, time_limit_s: float | None = None) -> StepLog | None:
        """Run one step unless one is running (never two at once); returns None when skipped."""
        if not self.step_lock.acquire(blocking=False):
            log.info("step at %s skipped: the previous one is still running", start)
            return None
        try:
            t0 = time.perf_counter()
            try:
                with self.holding_state():
                    outcome = self.service.step(start, now=self.clock(), time_limit_s=time_limit_s)
            except Exception as exc:  # bad data must not stop the daemon: devices keep safe modes
                log.exception("step %s failed", start)
                alert = (
                    f"step failed: {type(exc).__name__}: {exc}; "
                    "devices fall back to their safe modes at valid_until"
                )
                self.statedb.commit_step({}, [], None, [(start.isoformat(), alert)])
                self.client.publish_status(
                    {"plan": {"mode": "error", "step": start.isoformat(), "alerts": [alert]}}
                )
                return None
            res = outcome.result
            plan = self._plan_snapshot(start, outcome)  # the model is ours while we hold step_lock
            ts = self.clock().to_pydatetime()
            for sp in res.setpoints:
                values = {
                    "ts": ts,
                    "valid_until": sp.valid_until.to_pydatetime(),
                    "plan_id": f"{start:%Y%m%dT%H%M}",
                    **sp.values,
                }
                try:
                    self.publisher.publish_setpoint(sp.hub, sp.kind, sp.device, values)
                except Exception as exc:  # a setpoint that fails validation is logged, not fatal
                    log.error("setpoint %s not published: %s", sp.key, exc)
                    continue
                if self.setpoint_router is not None:
                    self.setpoint_router.route(sp.hub, sp.kind, sp.device, values)
            step_s = time.perf_counter() - t0
            self._record(start, outcome, step_s, plan=plan)
            status = {
                "mode": res.mode,
                "step": start.isoformat(),
                "alerts": res.alerts[:5],
                "solve_s": round(res.timings_s.get("solve", 0.0), 3),
            }
            if res.record is not None:
                status.update(objective=res.record.objective, gap=res.record.gap)
            for name in short_quantities():  # AI energy missed, EV energy short, …
                status[name] = round(sum(res.short_kwh.get(name, {}).values()), 3)
            extra: dict[str, Any] = {}
            if self.device_status is not None:
                extra["devices"] = self.device_status()
            self.client.publish_status({"plan": status, **extra})
            sd_notify("WATCHDOG=1")
            self.last = StepLog(start, outcome, step_s)
            return self.last
        finally:
            self.step_lock.release()

    def _record(
        self,
        start: pd.Timestamp,
        outcome: StepOutcome,
        step_s: float,
        extra_kv: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
    ) -> None:
        res = outcome.result
        tags = {"community": self.community}
        t_ns = int(start.value)
        points: list[Point] = []
        rec = res.record
        fields = _solver_fields(outcome, step_s)
        points.append(
            Point(
                "solver",
                t_ns,
                {**tags, "hub": "ems", "device": "controller", "kind": "solver"},
                fields,
            )
        )
        if self.device_status is not None:  # OCPP / Modbus bridge counters (EMS health dashboard)
            from adapters.devices.runtime import status_fields

            dev_fields = status_fields(self.device_status())
            if dev_fields:
                points.append(
                    Point(
                        "devices",
                        t_ns,
                        {**tags, "hub": "ems", "device": "bridges", "kind": "devices"},
                        dev_fields,
                    )
                )
        if not res.plan.empty:
            first = res.plan.iloc[: min(len(res.plan), 96)]
            for ts, row in first.iterrows():
                by_hub: dict[str, dict[str, float]] = {}
                for col, v in row.items():
                    hub, q = str(col).split(".", 1)
                    by_hub.setdefault(hub, {})[q] = float(v)
                for hub, f in by_hub.items():
                    points.append(
                        Point(
                            "plan",
                            int(ts.value),
                            {**tags, "hub": hub, "device": "plan", "kind": "plan"},
                            f,
                        )
                    )
        for name, arr in outcome.forecast.items():
            key, q = name.split(".", 1)
            for k in range(0, len(arr), 4):
                points.append(
                    Point(
                        "forecast",
                        t_ns + int(k * 900e9),
                        {**tags, "hub": key, "device": q, "kind": "forecast"},
                        {"value": float(arr[k])},
                    )
                )
        state_json, upto, late = self._snapshot()
        hours, hpoints = self._hours(outcome.closed_hours + late)
        points.extend(hpoints)
        for a in res.alerts:
            points.append(
                Point(
                    "alert",
                    t_ns,
                    {**tags, "hub": "ems", "device": "controller", "kind": "alert"},
                    {"text": a},
                )
            )
        try:
            self.store.write(points)
        except Exception:
            log.exception("store write failed (the store spools or the points are in the step log)")
        kv = {**(extra_kv or {}), **({"last_plan": plan} if plan is not None else {})}
        step = (
            start.isoformat(),
            res.mode,
            rec.objective if rec else None,
            res.timings_s.get("solve"),
            step_s,
            json.dumps(res.alerts),
        )
        self.statedb.commit_step(
            kv,
            hours,
            step,
            [(start.isoformat(), a) for a in res.alerts],
            raw_kv={"plant_state": state_json},
            inbox_upto=upto,
        )

    def _plan_snapshot(self, start: pd.Timestamp, outcome: StepOutcome) -> dict[str, Any]:
        """The last plan: its setpoints and, when solved, the model's solution (warm start)."""
        res = outcome.result
        solved = res.mode != "fallback"
        return {
            "start": start.isoformat(),
            "mode": res.mode,
            "setpoints": [
                {
                    "hub": sp.hub,
                    "kind": sp.kind,
                    "device": sp.device,
                    "values": sp.values,
                    "valid_until": sp.valid_until.isoformat(),
                }
                for sp in res.setpoints
            ],
            "solution": self.service.controller.solution_values() if solved else None,
        }

    def _hours(self, closed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Point]]:
        """Closed hours with their TIP (accounting rules, Pz from the price source) and points."""
        tags = {"community": self.community}
        hours, points = [], []
        for h in closed:
            at = pd.DatetimeIndex([pd.Timestamp(h["hour_utc"], unit="s", tz="UTC")])
            pz = float(self.service.fc.pz_eur_per_mwh(at, self.service.state.pz_feed())[0])
            h = {**h, "tip_eur": tip_of_hour(h["shared_wh"], pz, self.plant_kw)}
            hours.append(h)
            points.append(
                Point(
                    "shared_energy",
                    int(h["hour_utc"] * 1e9),
                    {**tags, "hub": "community", "device": "cer", "kind": "shared_energy"},
                    {
                        "shared_kwh": h["shared_wh"] / 1000,
                        "import_kwh": h["import_wh"] / 1000,
                        "export_kwh": h["export_wh"] / 1000,
                        "tip_eur": h["tip_eur"],
                    },
                )
            )
        return hours, points

    def _record_hours_only(self, closed: list[dict[str, Any]]) -> None:
        state_json, upto, late = self._snapshot()
        hours, points = self._hours(closed + late)
        try:
            self.store.write(points)
        except Exception:
            log.exception("store write failed")
        self.statedb.commit_step(
            {}, hours, None, [], raw_kv={"plant_state": state_json}, inbox_upto=upto
        )

    def stop(self) -> None:
        self.stopping.set()
        for hook in self.stop_hooks:
            try:
                hook()
            except Exception:
                log.exception("stop hook failed")
        self.stop_hooks.clear()
        try:
            self.ingest.stop()
        except Exception:
            log.debug("ingest stop", exc_info=True)
        self.client.stop(announce_offline=True)
        try:
            self.store.flush(5.0)
            self.store.close()
        except Exception:
            log.debug("store close", exc_info=True)


def _solver_fields(outcome: StepOutcome, step_s: float) -> dict[str, Any]:
    """The step's ``solver`` point: mode, status, objective, gap, nodes, whether the wall-clock
    safety net stopped it, and the energy the plan leaves undelivered."""
    res, rec = outcome.result, outcome.result.record
    fields: dict[str, Any] = {"mode": res.mode, "step_s": float(step_s), "alerts": len(res.alerts)}
    if rec is not None:
        fields.update(status=rec.status, solve_s=float(rec.time_s))
        if rec.objective is not None:
            fields["objective_eur"] = float(rec.objective)
        if rec.gap is not None:
            fields["gap"] = float(rec.gap)
        if rec.nodes is not None:
            fields["nodes"] = rec.nodes
        fields["time_limit_hit"] = rec.hit_time_limit
    for name in short_quantities():
        fields[name] = float(sum(res.short_kwh.get(name, {}).values()))
    return fields


def quarter_floor(ts: pd.Timestamp, step_min: int = 15) -> pd.Timestamp:
    return ts.floor(f"{step_min}min")


# ---------------------------------------------------------------------- real time
def run_realtime(
    runtime: Runtime,
    step_min: int,
    *,
    max_steps: int | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Quarter-hour APScheduler job plus on-demand steps; SIGTERM/SIGINT stop cleanly."""
    from apscheduler.schedulers.background import BackgroundScheduler

    done = threading.Event()
    count = [0]

    def job() -> None:
        if runtime.stopping.is_set():
            return
        start = quarter_floor(runtime.clock(), step_min)
        out = runtime.run_step(start)
        if out is not None:
            r = out.outcome.result
            echo(f"{start:%Y-%m-%d %H:%M} {r.mode} in {out.step_s:.2f} s; {len(r.alerts)} alerts")
            count[0] += 1
            if max_steps is not None and count[0] >= max_steps:
                done.set()

    sched = BackgroundScheduler(timezone="UTC")
    sched.add_job(
        job,
        "cron",
        minute=f"*/{step_min}",
        second=0,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=60,
        id="step",
    )

    def on_demand_loop() -> None:
        while not runtime.stopping.is_set():
            if runtime.on_demand.wait(1.0):
                runtime.on_demand.clear()
                job()

    def on_signal(signum: int, _frame: Any) -> None:
        echo(f"signal {signum}: finishing the running step and going offline")
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sched.start()
    threading.Thread(target=on_demand_loop, name="on-demand", daemon=True).start()
    job()  # plan at once on start (resumes from the persisted state)
    sd_notify("READY=1")  # started = built and planned once (TimeoutStartSec covers both)
    while not done.wait(5.0):
        sd_notify("WATCHDOG=1")
    sd_notify("STOPPING=1")
    runtime.stopping.set()
    sched.shutdown(wait=True)
    with runtime.step_lock:  # wait for a running step
        pass
    runtime.stop()


def utcnow() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(timezone.utc))
