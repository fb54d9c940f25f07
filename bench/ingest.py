"""Ingest benchmark: sustained MQTT → store throughput with zero loss.

Publishers are Mosquitto's own ``mosquitto_pub -l -q 1`` processes (one per device topic), fed at
a fixed offered rate; the EMS ingest (paho client, pydantic validation, batched store writes) runs
in this process; the broker is a private Mosquitto configured like ``deploy/mosquitto`` (QoS 1,
large queues). For each offered rate the run publishes ``rate × seconds`` messages, waits until the
ingest accepted all of them, flushes the store and counts the points in the store.

A rate is *sustained* when every message is in the store (loss 0), the ingest kept pace (accepted
rate ≥ 97 % of the offered rate) and was never more than ``--max-lag`` seconds behind the publishers.

    python bench/ingest.py --store influx --rates 2000,5000,8000 --seconds 20
    python bench/ingest.py --store sqlite --rates 2000,5000 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

from adapters.influx import InfluxSettings, InfluxStore  # noqa: E402
from adapters.influx.influxql import InfluxQLClient  # noqa: E402
from adapters.mqtt import MqttClient, MqttSettings, TelemetryIngest  # noqa: E402
from adapters.sqlite_store import SQLiteStore  # noqa: E402
from tests.integration import servers  # noqa: E402

DEVICES = [  # (hub, kind, device): 8 topics, one mosquitto_pub each
    ("hub1", "pv", "pv1"),
    ("hub1", "battery", "bat1"),
    ("hub1", "ev_charger", "cp1"),
    ("hub1", "ai_cluster", "gpu1"),
    ("hub2", "pv", "pv1"),
    ("hub2", "battery", "bat1"),
    ("hub3", "chp", "chp1"),
    ("hub4", "heat_pump", "hp1"),
]


def payload(kind: str, ts_ms: int, i: int) -> str:
    p = round(1.0 + (i % 97) * 0.1, 2)
    doc: dict = {"ts": ts_ms, "p_kw": p}
    if kind == "battery":
        doc["soc_pct"] = 50.0
    elif kind == "ev_charger":
        doc["plugged"] = True
    elif kind == "chp":
        doc.update(heat_kw=2 * p, units_on=1)
    elif kind == "heat_pump":
        doc["mode"] = "heating"
    elif kind == "ai_cluster":
        doc["queued_e_kwh"] = 10.0
    return json.dumps(doc, separators=(",", ":"))


def run_rate(
    rate: int,
    seconds: float,
    store_kind: str,
    mqtt_port: int,
    influx_url: str | None,
    workdir: Path,
    max_lag_s: float,
    batch_size: int,
) -> dict:
    community = f"bench{rate}x{int(time.time()) % 100000}"
    n_per_device = int(rate * seconds / len(DEVICES))
    total = n_per_device * len(DEVICES)
    if store_kind == "influx":
        store = InfluxStore(
            InfluxSettings(
                url=influx_url,
                database="bench",
                batch_size=batch_size,
                flush_interval_s=1.0,
                buffer_path=workdir / f"{community}.buf",
            )
        )
    else:
        store = SQLiteStore(workdir / f"{community}.sqlite", batch_size=batch_size)
    client = MqttClient(
        MqttSettings(
            port=mqtt_port,
            community=community,
            client_id=f"{community}-ingest",
            status_interval_s=5,
        )
    ).start()
    ingest = TelemetryIngest(client, store).start()
    assert client.wait_subscribed(10)
    base_ms = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp() * 1000)
    # payloads generated up front so the publishing loop costs the ingest process nothing
    lines = [
        [(payload(kind, base_ms + i, i) + "\n").encode() for i in range(n_per_device)]
        for _h, kind, _d in DEVICES
    ]
    procs = [
        subprocess.Popen(
            [
                "mosquitto_pub",
                "-h",
                "127.0.0.1",
                "-p",
                str(mqtt_port),
                "-q",
                "1",
                "-M",
                "1000",
                "-i",
                f"{community}-pub{k}",
                "-l",
                "-t",
                f"cer/{community}/{hub}/{kind}/{dev}/state",
            ],
            stdin=subprocess.PIPE,
            bufsize=1 << 16,
        )
        for k, (hub, kind, dev) in enumerate(DEVICES)
    ]
    max_lag = 0.0
    tick = 0.02
    start = time.monotonic()
    sent = 0
    while sent < n_per_device:
        due = min(n_per_device, int((time.monotonic() - start) * rate / len(DEVICES)) + 1)
        if due > sent:
            for device_lines, proc in zip(lines, procs, strict=False):
                proc.stdin.write(b"".join(device_lines[sent:due]))
                proc.stdin.flush()
            sent = due
        published = sent * len(DEVICES)
        lag = (published - ingest.accepted) / rate
        max_lag = max(max_lag, lag)
        time.sleep(tick)
    publish_end = time.monotonic()
    for proc in procs:
        proc.stdin.close()
    deadline = time.monotonic() + 120
    while ingest.accepted < total and time.monotonic() < deadline:
        time.sleep(0.01)
    accepted_end = time.monotonic()
    max_lag = max(max_lag, accepted_end - publish_end)
    for proc in procs:
        proc.wait(timeout=60)
    flushed = store.flush(120)
    flush_end = time.monotonic()
    if store_kind == "influx":
        series = InfluxQLClient(influx_url, "bench").series(
            f'SELECT count("p_kw") FROM telemetry WHERE "community" = \'{community}\''
        )
        stored = series[0]["values"][0][1] if series else 0
    else:
        stored = store.count("telemetry")
    counts = ingest.counters()
    ingest.stop()
    client.stop()
    store.close()
    result = {
        "store": store_kind,
        "offered_msg_s": rate,
        "messages": total,
        "accepted": counts["accepted"],
        "rejected": counts["rejected"],
        "stored": stored,
        "lost": total - stored,
        "ingest_msg_s": round(total / (accepted_end - start)),
        "end_to_end_msg_s": round(total / (flush_end - start)),
        "max_lag_s": round(max_lag, 2),
        "flushed": flushed,
    }
    result["sustained"] = (
        result["lost"] == 0
        and flushed
        and max_lag <= max_lag_s
        and result["ingest_msg_s"] >= 0.97 * rate
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["influx", "sqlite"], default="influx")
    parser.add_argument(
        "--rates", default="2000,5000,8000", help="offered rates, msg/s, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time per rate")
    parser.add_argument("--influx-url", help="use this InfluxDB 1.x instead of a private influxd")
    parser.add_argument(
        "--max-lag", type=float, default=2.0, help="max seconds behind to call a rate sustained"
    )
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    if shutil.which("mosquitto_pub") is None:
        sys.exit("mosquitto_pub not found (apt-get install mosquitto-clients)")
    workdir = Path(tempfile.mkdtemp(prefix="ems-bench-"))
    broker = servers.mosquitto(workdir / "mosquitto").start()
    influxd = None
    influx_url = args.influx_url
    if args.store == "influx" and not influx_url:
        influxd = servers.influxd(workdir / "influxd").start()
        influx_url = influxd.url
    print(
        f"# {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, store {args.store}", flush=True
    )
    results = []
    try:
        for rate in [int(r) for r in args.rates.split(",")]:
            result = run_rate(
                rate,
                args.seconds,
                args.store,
                broker.port,
                influx_url,
                workdir,
                args.max_lag,
                args.batch_size,
            )
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        broker.stop()
        if influxd is not None:
            influxd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    best = max((r["offered_msg_s"] for r in results if r["sustained"]), default=0)
    print(f"# highest sustained rate with zero loss into {args.store}: {best} msg/s")


if __name__ == "__main__":
    main()
