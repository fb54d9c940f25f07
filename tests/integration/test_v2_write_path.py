"""The influxdb-client write path (InfluxDB 2.x/3.x API) against a real server: VictoriaMetrics
implements ``/api/v2/write``. Also its disk buffer when that server is unreachable."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from adapters.influx import InfluxSettings
from adapters.influx.sinks import V2ClientSink
from adapters.influx.spool import DiskSpool
from adapters.influx.writer import BufferedWriter
from ems.ports.timeseries import Point
from tests.conftest import unique

pytestmark = pytest.mark.integration


def _export(vm_url: str, match: str) -> list[dict]:
    urllib.request.urlopen(
        urllib.request.Request(f"{vm_url}/internal/force_flush"), timeout=10
    ).read()
    url = f"{vm_url}/api/v1/export?" + urllib.parse.urlencode({"match[]": match, "start": "0"})
    with urllib.request.urlopen(url, timeout=10) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]


def test_influxdb_client_writes_reach_victoria_metrics(vm_url, tmp_path):
    community = unique("v2")
    settings = InfluxSettings(
        url=vm_url,
        version=2,
        org="cer",
        bucket="ems",
        token="not-checked-by-vm",
        buffer_path=tmp_path / "buf.sqlite",
    )
    sink = V2ClientSink(settings.url, settings.token_value(), settings.org, settings.bucket)
    writer = BufferedWriter(
        sink, DiskSpool(settings.buffer_path), batch_size=100, flush_interval_s=0.1
    )
    t0_s = int((datetime.now(timezone.utc) - timedelta(hours=1)).timestamp())
    n = 250
    try:
        writer.write(
            Point(
                "telemetry",
                (t0_s + i) * 10**9,
                {"community": community, "hub": "hub1", "device": "bat1", "kind": "battery"},
                {"p_kw": float(i), "soc_pct": 50.0 + i / 10},
            )
            for i in range(n)
        )
        assert writer.flush(20), writer.stats()
        assert writer.stats()["points_sent"] == n
    finally:
        writer.close()

    def fetch() -> list[dict]:
        return _export(vm_url, f'{{__name__=~"telemetry_(p_kw|soc_pct)",community="{community}"}}')

    deadline = time.monotonic() + 20
    series = fetch()
    while sum(len(s["values"]) for s in series) < 2 * n and time.monotonic() < deadline:
        time.sleep(0.5)
        series = fetch()
    by_name = {s["metric"]["__name__"]: s for s in series}
    assert set(by_name) == {"telemetry_p_kw", "telemetry_soc_pct"}
    p = by_name["telemetry_p_kw"]
    assert {
        k: v for k, v in p["metric"].items() if k in ("community", "hub", "device", "kind")
    } == {"community": community, "hub": "hub1", "device": "bat1", "kind": "battery"}
    assert p["timestamps"] == [(t0_s + i) * 1000 for i in range(n)]
    assert p["values"] == [float(i) for i in range(n)]


def test_v2_path_buffers_on_disk_while_server_unreachable(tmp_path):
    from tests.integration.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    sink = V2ClientSink(url, "token", "cer", "ems", timeout_s=2)
    writer = BufferedWriter(
        sink, DiskSpool(tmp_path / "buf.sqlite"), batch_size=50, flush_interval_s=0.05
    )
    writer.write(Point("telemetry", i, {"hub": "h"}, {"p_kw": 1.0}) for i in range(120))
    try:
        deadline = time.monotonic() + 15
        while writer.stats()["points_buffered_disk"] < 120 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.stats()["points_buffered_disk"] == 120
        assert writer.stats()["points_sent"] == 0
    finally:
        writer.close(timeout_s=0.5)
    assert DiskSpool(tmp_path / "buf.sqlite").points == 120  # still there for the next run
