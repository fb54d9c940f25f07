"""Soak benchmark (issue 16): 24 simulated hours of `ems run --simulate` in accelerated time with
random broker restarts (SIGKILL or SIGTERM), daemon SIGKILLs and bursts of malformed payloads.

Everything runs on loopback: a private Mosquitto hardened like ``deploy/mosquitto`` (saved on
every change, 66 KiB packet limit), the daemon as a subprocess (its simulated plant publishes the
devices' states over MQTT), a *witness* publisher in this process that sends a numbered state
message (the day-ahead price feed ``market/price/pz``, QoS 1, persistent session) every
``--witness-interval`` seconds from start to near the end, and a junk publisher.

Checks, from the daemon's own durable state file at the end:
- zero lost state messages: every witness message the broker acknowledged (PUBACK) is in the
  daemon's ``received`` log (by its ``ts``, which numbers it: a redelivery is not counted twice);
  each lost one is listed with when it was acknowledged, relative to the nearest fault;
- zero crashes: every daemon exit is one of our SIGKILLs or the final exit 0, and the run finished
  all its steps with every hour in the shared-energy log;
- memory: RSS of the last daemon process (it runs the last 60 % of the day, through broker
  restarts and bursts) from its fourth step to its end, within 10 %; ``--daemon-kills 0`` makes
  one process live through the whole day.

    python bench/soak.py --hours 24 --seed 1 --out bench/soak.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# run as a file (python bench/<name>.py): the checkout goes first on sys.path, so the
# imports below (noqa: E402) load this tree's code, not an installed copy.
sys.path.insert(0, str(REPO))

import paho.mqtt.client as paho  # noqa: E402
import pandas as pd  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from tests.integration import servers  # noqa: E402
from tests.operation.conftest import write_site  # noqa: E402

START_LOCAL = "2025-06-16 00:00"
COMMUNITY = "soak"


def junk_payloads(ts: str) -> list[bytes]:
    """Malformed payloads of every family the validation counts (all under 66 KiB)."""
    return [
        b"not json",
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'{"ts": "' + ts.encode() + b'", "p_kw": "3.2", "soc_pct": 50}',
        b'{"ts": "' + ts.encode() + b'", "p_kw": NaN, "soc_pct": 50}',
        b'{"ts": "yesterday", "p_kw": 1, "soc_pct": 50}',
        b'{"x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",  # 30,000 deep
        b"[" * 60_000,  # unbalanced, deep
        b'{"ts": "' + ts.encode() + b'", "p_kw": 1, "pad": "' + b"x" * 65_000 + b'"}',  # too large
        json.dumps(
            {"ts": ts, "plugged": True, "p_kw": 3.0, "departure": "2020-01-01T00:00:00Z"}
        ).encode(),
    ]


JUNK_TOPICS = [
    "hub1/battery/bess",
    "hub1/ev_charger/cp1",
    "hub1/meter/main",
    "hub2/pv/pv_mono",
    "nohub/meter/main",
]


class Witness:
    """Numbered QoS 1 price-feed states with a persistent session; counts broker acknowledgements."""

    def __init__(self, port: int, start_utc: pd.Timestamp) -> None:
        self.start_utc = start_utc
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="soak-witness", clean_session=False
        )
        self.client.max_inflight_messages_set(20)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.infos: list[paho.MQTTMessageInfo] = []
        self.acked: dict[int, float] = {}  # message id -> when the broker acknowledged it
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.acked.setdefault(
            mid, time.perf_counter()
        )
        self.client.connect_async(servers.LOOPBACK, port, 5)
        self.client.loop_start()
        self.stop = threading.Event()

    def ts(self, seq: int) -> pd.Timestamp:
        """The ``ts`` of message ``seq``: it numbers the message (1 ms apart)."""
        return self.start_utc + pd.Timedelta(milliseconds=seq + 1)

    def payload(self, seq: int) -> str:
        return json.dumps(
            {
                "ts": self.ts(seq).isoformat(),
                "start": self.start_utc.isoformat(),
                "step_min": 60,
                "pz_eur_per_mwh": [100.0] * 48,
            }
        )

    def run(self, interval_s: float, keep_on: Callable[[], bool]) -> None:
        """Publish until stopped or ``keep_on()`` turns false (checked before every message: the
        daemon may run its last steps faster than the main loop looks, and a message published
        after the daemon's last step stays queued for its next start — not taken, not lost)."""
        seq = 0
        while not self.stop.is_set() and keep_on():
            info = self.client.publish(
                f"cer/{COMMUNITY}/market/price/pz/state", self.payload(seq), qos=1
            )
            self.infos.append(info)
            seq += 1
            self.stop.wait(interval_s)

    def acknowledged(self) -> dict[int, float]:
        """seq -> when the broker acknowledged it (one message id each: < 65,535 sent)."""
        return {seq: self.acked[i.mid] for seq, i in enumerate(self.infos) if i.mid in self.acked}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def burst(port: int, rng: random.Random, n: int, ts: str) -> int:
    """``n`` malformed payloads on device topics, and one 1 MB packet the broker must refuse."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"junk-{rng.random()}")
    try:
        client.connect(servers.LOOPBACK, port, 5)
    except OSError:
        return 0  # the broker is restarting
    client.loop_start()
    payloads = junk_payloads(ts)
    for i in range(n):
        topic = f"cer/{COMMUNITY}/{rng.choice(JUNK_TOPICS)}/state"
        client.publish(topic, payloads[i % len(payloads)], qos=0)
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()
    big = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"junk-big-{rng.random()}")
    try:
        big.connect(servers.LOOPBACK, port, 5)
        big.loop_start()
        big.publish(f"cer/{COMMUNITY}/hub1/meter/main/state", b"x" * 1_000_000, qos=0)
        time.sleep(0.2)
        big.loop_stop()
    except OSError:
        pass
    return n


def locate(lost: list[tuple[int, float]], events: list[tuple[float, str]]) -> list[str]:
    """Each lost witness message: when the broker acknowledged it, relative to the nearest fault."""
    out = []
    for seq, t in lost:
        near = min(events, key=lambda e: abs(e[0] - t), default=(t, "no fault"))
        out.append(f"#{seq} acknowledged at {t:.2f} s, {t - near[0]:+.2f} s from: {near[1]}")
    return out


def before_broker_sigkill(
    lost: list[tuple[int, float]], events: list[tuple[float, str]], within_s: float = 1.0
) -> int:
    """Lost messages the broker acknowledged less than ``within_s`` before it was SIGKILLed:
    Mosquitto 2.0 acknowledges a message before it is saved or delivered (BENCHMARKS.md)."""
    kills = [t for t, text in events if "broker SIGKILL" in text]
    return sum(1 for _seq, t in lost if any(0.0 <= k - t < within_s for k in kills))


def rss_bytes(pid: int) -> int:
    """Resident set size of a process from /proc (0 once it has exited)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def steps_done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT count(*) FROM steps").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def main() -> int:  # noqa: C901, PLR0915 - one scripted scenario, read top to bottom
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--broker-restarts", type=int, default=4)
    ap.add_argument("--daemon-kills", type=int, default=4)
    ap.add_argument("--bursts", type=int, default=8)
    ap.add_argument("--burst-size", type=int, default=300)
    ap.add_argument("--witness-interval", type=float, default=0.05)
    ap.add_argument(
        "--broker-signal",
        choices=("random", "kill", "term"),
        default="random",
        help="how the broker is stopped at each restart (random: SIGKILL or SIGTERM)",
    )
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    total_steps = int(args.hours * 4)
    # daemon kills in the first 40 % of the run (the last daemon process lives through the other
    # 60 %, for the memory check), broker restarts in the first 80 %, bursts anywhere
    kill_steps, restart_steps = range(4, int(total_steps * 0.4)), range(3, int(total_steps * 0.8))
    if args.daemon_kills > len(kill_steps) or args.broker_restarts > len(restart_steps):
        ap.error(f"--hours {args.hours:g} is too short for that many daemon kills/broker restarts")
    work = Path(tempfile.mkdtemp(prefix="cer-soak-"))
    kills = sorted(rng.sample(kill_steps, args.daemon_kills))
    restarts = sorted(rng.sample(restart_steps, args.broker_restarts))
    bursts = sorted(rng.choices(range(2, total_steps - 8), k=args.bursts))
    witness_until = total_steps - 12  # the daemon has 12 steps to take the last messages

    broker = servers.mosquitto(
        work / "mosquitto", extra_conf="autosave_on_changes true\nmax_packet_size 67584\n"
    ).start()
    site = write_site(
        work, community=COMMUNITY, horizon_h=6, solver={"time_limit_s": 3.0, "threads": 1}
    )
    state = work / "state"
    db = state / "ems-state.sqlite"
    log_path = work / "ems.log"
    argv = [
        sys.executable,
        "-c",
        "import sys; from adapters.cli.main import main; sys.exit(main())",
        "run",
        "--simulate",
        "--config",
        str(site),
        "--hours",
        str(args.hours),
        "--state",
        str(state),
        "--start",
        START_LOCAL,
        "--mqtt-host",
        servers.LOOPBACK,
        "--mqtt-port",
        str(broker.port),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}

    def launch() -> subprocess.Popen:
        return subprocess.Popen(
            argv, stdout=log_path.open("a"), stderr=subprocess.STDOUT, cwd=REPO, env=env
        )

    start_utc = pd.Timestamp(START_LOCAL, tz="Europe/Rome").tz_convert(timezone.utc)
    witness = Witness(broker.port, start_utc)
    witness_thread = threading.Thread(
        target=witness.run,
        args=(args.witness_interval, lambda: steps_done(db) < witness_until),
        daemon=True,
    )
    t0 = time.perf_counter()
    proc = launch()
    # the broker queues for the daemon's session once it exists: start witnessing after the
    # daemon's first step (it subscribes before it plans)
    while steps_done(db) < 1 and proc.poll() is None:
        time.sleep(0.1)
    witness_thread.start()
    exits: list[int] = []
    lifetimes: list[list[tuple[int, int]]] = [[]]  # per daemon process: (steps, rss bytes)
    events: list[tuple[float, str]] = []  # (seconds since start, when the fault began; what)
    junk_sent = 0

    def event(t: float, text: str) -> None:
        events.append((t - t0, f"step {steps_done(db)}: {text}"))

    try:
        while True:
            code = proc.poll()
            n = steps_done(db)
            if code is not None:
                exits.append(code)
                if code == 0 or n >= total_steps:
                    break
                event(time.perf_counter(), f"daemon exited with {code} (not ours): restarted")
                proc = launch()
                lifetimes.append([])
                continue
            rss = rss_bytes(proc.pid)
            if rss > 0:  # 0: already exited
                lifetimes[-1].append((n, rss))
            if kills and n >= kills[0]:
                kills.pop(0)
                event(time.perf_counter(), "daemon SIGKILL, restarted")
                os.kill(proc.pid, signal.SIGKILL)
                exits.append(proc.wait())
                proc = launch()
                lifetimes.append([])
            if restarts and n >= restarts[0]:
                restarts.pop(0)
                sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
                if args.broker_signal != "random":
                    sig = signal.SIGKILL if args.broker_signal == "kill" else signal.SIGTERM
                down_s = rng.uniform(0.5, 3.0)
                event(time.perf_counter(), f"broker {sig.name}, down {down_s:.1f} s")
                broker.stop(sig=sig)
                time.sleep(down_s)
                broker.start()
            if bursts and n >= bursts[0]:
                bursts.pop(0)
                ts = (start_utc + pd.Timedelta(minutes=15 * n)).isoformat()
                event(time.perf_counter(), f"{args.burst_size} malformed payloads + a 1 MB packet")
                junk_sent += burst(broker.port, rng, args.burst_size, ts)
            if n >= witness_until and not witness.stop.is_set():
                witness.stop.set()
            time.sleep(0.1)
        wall_s = time.perf_counter() - t0
        witness.stop.set()
        witness_thread.join(5)
        assert len(witness.infos) < 65_535, "message ids would repeat: raise --witness-interval"
        sent = len(witness.infos)
        acked = witness.acknowledged()
        sys.path.insert(0, str(REPO))
        from adapters.runtime.daemon import StateDB

        statedb = StateDB(db)
        taken = statedb.received("state/market/price/pz/")
        taken_ts = {
            pd.Timestamp(r[0])
            for r in statedb.db.execute(
                "SELECT ts FROM received WHERE source LIKE 'state/market/price/pz/%'"
            )
        }
        hours = statedb.hours()
        steps = steps_done(db)
        statedb.close()
        lost = [
            (seq, t - t0) for seq, t in sorted(acked.items()) if witness.ts(seq) not in taken_ts
        ]
        last = [rss for s, rss in lifetimes[-1] if s >= lifetimes[-1][0][0] + 4] or [
            rss for _s, rss in lifetimes[-1]
        ]
        log_text = log_path.read_text(errors="replace")
        ours = sum(1 for _t, e in events if "SIGKILL, restarted" in e)
        crashes = [c for c in exits if c not in (0, -signal.SIGKILL)]
        result = {
            "simulated_hours": args.hours,
            "steps": steps,
            "steps_expected": total_steps,
            "hours_logged": len(hours),
            "wall_s": round(wall_s, 1),
            "daemon_sigkills": ours,
            "broker_restarts": sum(1 for _t, e in events if "broker" in e),
            "malformed_sent": junk_sent,
            "witness_sent": sent,
            "witness_acknowledged_by_broker": len(acked),
            "witness_taken_by_daemon": taken,
            "lost_state_messages": len(lost),
            "lost_within_1s_before_a_broker_sigkill": before_broker_sigkill(lost, events),
            "lost": locate(lost, events)[:50],
            "daemon_exits": exits,
            "crashes": len(crashes),
            "tracebacks_in_log": log_text.count("Traceback"),
            "rss_last_process_mib": {
                "start": round(last[0] / 2**20, 1),
                "end": round(last[-1] / 2**20, 1),
                "max": round(max(last) / 2**20, 1),
                "steps": [lifetimes[-1][0][0], lifetimes[-1][-1][0]],
            },
            "rss_change_pct": round(100 * (last[-1] - last[0]) / last[0], 1),
            "events": [f"{t:.2f} s, {text}" for t, text in events],
            "seed": args.seed,
            "cpu_count": os.cpu_count(),
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        }
        print(json.dumps(result, indent=1))
        if args.out:
            args.out.write_text(json.dumps(result, indent=1) + "\n")
        ok = (
            result["lost_state_messages"] == 0
            and result["crashes"] == 0
            and steps == total_steps
            and len(hours) == int(args.hours)
            and abs(result["rss_change_pct"]) <= 10.0
        )
        print("PASS" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        witness.stop.set()
        witness.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work directory: {work}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
