"""Every Grafana panel query (and template variable query) runs against a real InfluxDB after an
ingest and returns data."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.influx import InfluxSettings, InfluxStore
from ems.ports.timeseries import Point
from tests.conftest import unique
from tests.integration.helpers import (
    Pipeline,
    Publisher,
    clear_retained,
    forget_session,
    wait_until,
)

pytestmark = pytest.mark.integration

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards").glob("*.json")
)
STEPS = 24  # 5-minute steps over the last two hours


def _telemetry(step: int, hub: str, ts: datetime) -> list[tuple[str, str, dict]]:
    iso = ts.isoformat()
    return [
        (
            "meter",
            "pod",
            {
                "ts": iso,
                "import_p_kw": 20.0 + step,
                "export_p_kw": 1.0 * (step % 3),
                "load_p_kw": 30.0,
            },
        ),
        ("pv", "pv1", {"ts": iso, "p_kw": 10.0 + step % 5}),
        ("pv", "pv2", {"ts": iso, "p_kw": 4.0}),
        ("battery", "bat1", {"ts": iso, "p_kw": -2.0, "soc_pct": 40.0 + step}),
        (
            "ev_charger",
            "cp1",
            {
                "ts": iso,
                "plugged": step % 4 != 0,
                "p_kw": 0.0 if step % 4 == 0 else 7.4,
                "vehicle_soc_pct": 50.0,
            },
        ),
        ("chp", "chp1", {"ts": iso, "p_kw": 45.0, "heat_kw": 70.0, "units_on": 1}),
        ("heat_pump", "hp1", {"ts": iso, "mode": "heating", "p_kw": 8.0, "heat_kw": 28.0}),
        (
            "ai_cluster",
            "gpu1",
            {"ts": iso, "p_kw": 11.0, "p_cap_kw": 15.0, "queued_e_kwh": 30.0 - step},
        ),
    ]


def _other_points(community: str, t0: datetime) -> list[Point]:
    points: list[Point] = []
    for step in range(STEPS):
        ts = t0 + timedelta(minutes=5 * step)
        ns = int(ts.timestamp()) * 10**9
        for hub in ("hub1", "hub2"):
            tags = {"community": community, "hub": hub}
            for kind, device, fields in (
                ("battery", "bat1", {"p_kw": -1.5}),
                ("ev_charger", "cp1", {"p_kw": 7.0}),
                ("ai_cluster", "gpu1", {"p_cap_kw": 14.0}),
                ("chp", "chp1", {"p_kw": 45.0, "units_on": 1}),
                ("heat_pump", "hp1", {"p_kw": 8.0, "mode": "heating"}),
            ):
                points.append(
                    Point(
                        "setpoint",
                        ns,
                        {**tags, "kind": kind, "device": device},
                        {**fields, "valid_until_epoch_s": int(ts.timestamp()) + 900},
                    )
                )
            points.append(
                Point(
                    "plan",
                    ns,
                    {**tags, "kind": "battery", "device": "bat1"},
                    {"p_kw": -1.5, "soc_pct": 45.0, "horizon_step": 0},
                )
            )
            points.append(
                Point("forecast", ns, {**tags, "kind": "load", "device": "hub"}, {"p_kw": 29.0})
            )
        points.append(
            Point(
                "shared_energy",
                ns,
                {"community": community, "kind": "hourly"},
                {"e_shared_kwh": 12.0, "e_injected_kwh": 20.0, "e_withdrawn_kwh": 12.0},
            )
        )
        points.append(
            Point(
                "incentive",
                ns,
                {"community": community, "kind": "hourly"},
                {"tip_eur": 1.56, "valorisation_eur": 0.13, "sale_eur": 2.2},
            )
        )
        # the counters an earlier daemon run reported every 5 minutes
        points.append(
            Point(
                "ingest",
                ns,
                {"community": community, "hub": "ems", "device": "earlier-run", "kind": "ingest"},
                {
                    "accepted": 100 * step,
                    "rejected": step,
                    "rejected_not_json": step,
                    "store_points_buffered_disk": 0,
                },
            )
        )
        # the device bridges' counters (adapters/devices/runtime.py status_fields)
        points.append(
            Point(
                "devices",
                ns,
                {"community": community, "hub": "ems", "device": "bridges", "kind": "devices"},
                {
                    "ocpp_connected": 3.0,
                    "ocpp_profiles_rejected": float(step // 6),
                    "modbus_answering": 5.0,
                    "modbus_timeout": float(step),
                },
            )
        )
        points.append(
            Point(
                "solver",
                ns,
                {"community": community, "hub": "ems", "kind": "receding_horizon"},
                {
                    "status": "optimal",
                    "objective_eur": 120.0,
                    "gap_pct": 0.4,
                    "solve_time_s": 3.2,
                    "fallback": int(step == 5),
                    "stale_inputs": 0,
                },
            )
        )
    return points


def _substitute(query: str, community: str) -> str:
    return (
        query.replace("$timeFilter", "time >= now() - 6h AND time <= now()")
        .replace("$__interval", "5m")
        .replace("$community", re.escape(community))
        .replace("$hub", "hub1")
    )


def _has_data(series: list[dict]) -> bool:
    return any(any(v is not None for v in row[1:]) for s in series for row in s.get("values", []))


def test_every_panel_query_returns_data(influx_url, mqtt_broker, tmp_path):
    assert len(DASHBOARDS) == 3
    host, port = mqtt_broker
    community = unique("gf")
    store = InfluxStore(
        InfluxSettings(
            url=influx_url,
            database=unique("grafana_"),
            buffer_path=tmp_path / "b.sqlite",
            flush_interval_s=0.2,
        )
    )
    ingest_id = unique("ingest-")
    pipeline = Pipeline.start(host, port, community, store, client_id=ingest_id)
    publisher = Publisher(host, port, unique("pub-"))
    t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5 * STEPS)
    try:
        n = 0
        for step in range(STEPS):
            for hub in ("hub1", "hub2"):
                for kind, device, payload in _telemetry(
                    step, hub, t0 + timedelta(minutes=5 * step)
                ):
                    publisher.publish(f"cer/{community}/{hub}/{kind}/{device}/state", payload)
                    n += 1
        assert wait_until(lambda: pipeline.ingest.accepted >= n, 30), pipeline.ingest.counters()
        publisher.publish(
            f"cer/{community}/hub1/pv/pv1/state", b"not json"
        )  # one rejection for the health board
        assert wait_until(lambda: pipeline.ingest.counters()["rejected"] == 1, 10)
        pipeline.ingest.report()
        store.write(_other_points(community, t0))
        assert store.flush(20)

        checked = 0
        for path in DASHBOARDS:
            board = json.loads(path.read_text())
            for var in board["templating"]["list"]:
                series = store.query(_substitute(var["query"], community))
                assert series and series[0]["values"], (
                    f"{path.name}: variable {var['name']} has no values"
                )
            for panel in board["panels"]:
                for target in panel["targets"]:
                    assert target["rawQuery"] and target["datasource"]["uid"] == "cer-ems-influx"
                    query = _substitute(target["query"], community)
                    series = store.query(query)
                    assert _has_data(series), (
                        f"{path.name}: panel {panel['title']!r} query {target['refId']} empty: {query}"
                    )
                    checked += 1
        assert checked >= 25
    finally:
        publisher.close()
        pipeline.stop()
        store.close()
        forget_session(host, port, ingest_id)
        clear_retained(host, port, [f"cer/{community}/ems/status"])
