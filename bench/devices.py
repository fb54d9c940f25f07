"""Device-protocol benchmark: OCPP CSMS with many charge points, Modbus polling of many devices.

OCPP: the EMS side (CSMS + gateway + the MQTT path's ingest with validation and a SQLite store)
runs in this process; ``--chargers`` simulated charge points (the ``ocpp`` library's client over
real WebSockets, half 1.6J and half 2.0.1, basic auth) run in a child process. Each charge point
plugs a car, then sends MeterValues every ``--meter-every`` seconds (staggered). Every
``--plan-every`` seconds the EMS "publishes a plan": one setpoint per charge point at once, as a
control step does; the delivery latency is the time from handing the setpoint to the CSMS to the
charger's Accepted answer. CPU and memory are of this process (the EMS side) only.

Modbus: a pymodbus server with ``--modbus-devices`` unit ids (meters SDM630, SunSpec PV inverters
and batteries) in a child process; the bridge in this process polls each device every
``--poll-s`` seconds for ``--seconds``; reported: polls done vs due, poll duration, CPU, memory.

    python bench/devices.py ocpp --chargers 200 --seconds 90
    python bench/devices.py modbus --modbus-devices 50 --poll-s 1 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# run as a file (python bench/<name>.py): the checkout goes first on sys.path, so the
# imports below (noqa: E402) load this tree's code, not an installed copy.
sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

logging.basicConfig(level=logging.WARNING)
logging.getLogger("ocpp").setLevel(logging.ERROR)
PASSWORD = "bench-secret"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] if s else float("nan")


# ---------------------------------------------------------------------- OCPP: the chargers
async def _chargers_main(url: str, n: int, meter_every: float, seconds: float) -> None:
    from adapters.ocpp.simulator import SimChargePoint

    cps = [
        SimChargePoint(
            url, f"CP{i:04d}", version="ocpp1.6" if i % 2 else "ocpp2.0.1", password=PASSWORD
        )
        for i in range(n)
    ]
    sem = asyncio.Semaphore(50)

    async def up(cp: SimChargePoint) -> None:
        async with sem:
            await cp.connect()
            await cp.plug(soc_pct=30.0)

    await asyncio.gather(*(up(cp) for cp in cps))
    print("READY", flush=True)
    t_end = time.monotonic() + seconds

    async def run(cp: SimChargePoint, offset: float) -> None:
        await asyncio.sleep(offset)
        while time.monotonic() < t_end:
            cp.energy_wh += 7400 * meter_every / 3600
            await cp.meter(cp.limit_kw() * 1000.0, soc_pct=40.0, energy_wh=cp.energy_wh)
            await asyncio.sleep(meter_every)

    await asyncio.gather(*(run(cp, meter_every * i / n) for i, cp in enumerate(cps)))
    await asyncio.gather(*(cp.disconnect() for cp in cps), return_exceptions=True)


def bench_ocpp(args: argparse.Namespace) -> dict:
    from adapters.devices.gateway import DeviceGateway, ingest_deliver
    from adapters.mqtt.client import MqttClient
    from adapters.mqtt.config import MqttSettings
    from adapters.mqtt.ingest import TelemetryIngest
    from adapters.ocpp.config import OcppSettings
    from adapters.ocpp.csms import Csms
    from adapters.sqlite_store import SQLiteStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-ocpp-"))
    store = SQLiteStore(tmp / "ts.sqlite")
    ingest = TelemetryIngest(MqttClient(MqttSettings(community="bench")), store)
    gateway = DeviceGateway("bench", ingest_deliver(ingest))
    cps = [
        {"id": f"CP{i:04d}", "hub": f"hub{i // 50}", "device": f"cp{i}", "password": PASSWORD}
        for i in range(args.chargers)
    ]
    settings = OcppSettings(host="127.0.0.1", port=0, security_profile=1, charge_points=cps)
    csms = Csms(settings, gateway.submit).start()
    child = subprocess.Popen(
        [sys.executable, __file__, "_chargers", f"ws://127.0.0.1:{csms.port}/ocpp",
         str(args.chargers), str(args.meter_every), str(args.seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    t0 = time.monotonic()
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.startswith("READY"), line
    connect_s = time.monotonic() - t0
    proc = psutil.Process(os.getpid())
    cpu0, wall0 = proc.cpu_times(), time.monotonic()
    rss_peak = proc.memory_info().rss
    rounds = []
    t_end = wall0 + args.seconds - 2
    while time.monotonic() < t_end:
        time.sleep(min(args.plan_every, max(0.0, t_end - time.monotonic())))
        if time.monotonic() >= t_end:
            break
        now = datetime.now(timezone.utc)
        until = now + timedelta(minutes=30)
        n0 = len(csms.counters.latencies_s)
        futs = [
            csms.apply_setpoint(cp["hub"], "ev_charger", cp["device"],
                                {"ts": now, "valid_until": until, "p_kw": round(random.uniform(1.4, 7.4), 1)})
            for cp in cps
        ]  # fmt: skip
        for f in futs:
            f.result(30)
        rounds.append(list(csms.counters.latencies_s)[n0:])
        rss_peak = max(rss_peak, proc.memory_info().rss)
    child.wait(args.seconds + 60)
    cpu1, wall1 = proc.cpu_times(), time.monotonic()
    gateway.flush(30)
    lat = [x for r in rounds for x in r]
    c = ingest.counters()
    res = {
        "chargers": args.chargers,
        "connect_and_plug_s": round(connect_s, 2),
        "window_s": round(wall1 - wall0, 1),
        "meter_every_s": args.meter_every,
        "states_accepted": c["accepted"],
        "states_rejected": c["rejected"],
        "profile_rounds": len(rounds),
        "profiles_delivered": len(lat),
        "profiles_rejected_or_failed": csms.counters.profiles_rejected
        + csms.counters.profiles_failed,
        "latency_p50_s": round(_pct(lat, 0.5), 4),
        "latency_p95_s": round(_pct(lat, 0.95), 4),
        "latency_max_s": round(max(lat), 4) if lat else None,
        "ems_cpu_pct_of_one_core": round(
            100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (wall1 - wall0), 1
        ),
        "ems_rss_peak_mb": round(rss_peak / 2**20, 1),
    }
    csms.stop()
    gateway.close()
    store.close()
    return res


# ---------------------------------------------------------------------- Modbus
def _modbus_server_main(n: int) -> None:
    from adapters.modbus.maps import load_map
    from adapters.modbus.server import ModbusDeviceServer

    srv = ModbusDeviceServer()
    sdm = load_map("eastron_sdm630")
    for unit in range(1, n + 1):
        kind = ("meter", "pv", "battery")[unit % 3]
        if kind == "meter":
            srv.add_meter(unit, sdm, {"p_w": 12000.0, "import_e_kwh": 1000.0, "export_e_kwh": 10.0})
        elif kind == "pv":
            inv = {"W": 3000, "W_SF": 1, "WH": 10, "WH_SF": 0}
            srv.add_sunspec(
                unit, {1: {"Mn": "b"}, 103: inv, 120: {"WRtg": 5000, "WRtg_SF": 1}, 123: {}}
            )
        else:
            inv = {"W": 300, "W_SF": 1, "WH": 10, "WH_SF": 0}
            sto = {"WChaMax": 2000, "WChaMax_SF": 1, "ChaState": 5000, "ChaState_SF": -2}
            srv.add_sunspec(unit, {1: {"Mn": "b"}, 103: inv, 124: sto})
    srv.start()
    print(f"READY {srv.port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    srv.stop()


def bench_modbus(args: argparse.Namespace) -> dict:
    from adapters.modbus.bridge import ModbusBridge
    from adapters.modbus.config import ModbusSettings

    child = subprocess.Popen(
        [sys.executable, __file__, "_modbus_server", str(args.modbus_devices)],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    line = child.stdout.readline()
    assert line.startswith("READY"), line
    port = int(line.split()[1])
    devices = []
    for unit in range(1, args.modbus_devices + 1):
        kind = ("meter", "pv", "battery")[unit % 3]
        d = {"hub": f"hub{unit}", "kind": kind, "device": f"d{unit}", "host": "127.0.0.1",
             "port": port, "unit_id": unit, "poll_interval_s": args.poll_s, "timeout_s": 1.0}  # fmt: skip
        if kind == "meter":
            d["register_map"] = "eastron_sdm630"
        devices.append(d)
    states = [0]

    def on_state(*_a: object) -> None:
        states[0] += 1

    bridge = ModbusBridge(ModbusSettings(devices=devices), on_state).start()
    time.sleep(2.0)  # connect and discover
    proc = psutil.Process(os.getpid())
    n0, cpu0, wall0 = states[0], proc.cpu_times(), time.monotonic()
    bridge.poll_s.clear()
    time.sleep(args.seconds)
    n1, cpu1, wall1 = states[0], proc.cpu_times(), time.monotonic()
    st = bridge.status()
    durs = list(bridge.poll_s)
    bridge.stop()
    child.stdin.close()
    child.wait(10)
    due = args.modbus_devices * (wall1 - wall0) / args.poll_s
    return {
        "devices": args.modbus_devices,
        "poll_s": args.poll_s,
        "window_s": round(wall1 - wall0, 1),
        "polls_done": n1 - n0,
        "polls_due": round(due),
        "polls_done_pct": round(100 * (n1 - n0) / due, 1),
        "poll_duration_p50_ms": round(1000 * _pct(durs, 0.5), 2),
        "poll_duration_p95_ms": round(1000 * _pct(durs, 0.95), 2),
        "faults": {k: v for k, v in st.items() if k not in ("devices", "answering")},
        "ems_cpu_pct_of_one_core": round(
            100 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (wall1 - wall0), 1
        ),
        "ems_rss_mb": round(proc.memory_info().rss / 2**20, 1),
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_chargers":
        url, n, every, seconds = (
            sys.argv[2],
            int(sys.argv[3]),
            float(sys.argv[4]),
            float(sys.argv[5]),
        )
        asyncio.run(_chargers_main(url, n, every, seconds))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_modbus_server":
        _modbus_server_main(int(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["ocpp", "modbus", "all"])
    ap.add_argument("--chargers", type=int, default=200)
    ap.add_argument("--meter-every", type=float, default=10.0)
    ap.add_argument("--plan-every", type=float, default=15.0)
    ap.add_argument("--modbus-devices", type=int, default=50)
    ap.add_argument("--poll-s", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=90.0)
    args = ap.parse_args()
    out = {"machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}}
    if args.what in ("ocpp", "all"):
        out["ocpp"] = bench_ocpp(args)
    if args.what in ("modbus", "all"):
        out["modbus"] = bench_modbus(args)
    out["machine"]["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
