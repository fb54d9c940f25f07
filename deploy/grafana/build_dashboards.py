"""Generate the Grafana dashboards (JSON) of cer-ems. Run: ``python deploy/grafana/build_dashboards.py``.

All queries are raw InfluxQL against the datasource uid ``cer-ems-influx``, so the dashboards work on
InfluxDB 1.x and on 2.x/3.x through the v1 compatibility API. Template variables: ``community``
and (hub detail) ``hub``. The JSON files are committed; this script keeps them consistent.
"""

from __future__ import annotations

import json
from pathlib import Path

DS = {"type": "influxdb", "uid": "cer-ems-influx"}
C = '"community" =~ /^$community$/'
H = '"hub" =~ /^$hub$/'
OUT = Path(__file__).parent / "dashboards"


def target(query: str, ref: str, alias: str = "") -> dict:
    return {
        "datasource": DS,
        "refId": ref,
        "rawQuery": True,
        "resultFormat": "time_series",
        "query": query,
        "alias": alias,
    }


def panel(
    title: str,
    queries: list[tuple[str, str]],
    unit: str,
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    kind: str = "timeseries",
    description: str = "",
) -> dict:
    targets = [target(q, chr(ord("A") + i), alias) for i, (q, alias) in enumerate(queries)]
    result = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if kind == "timeseries"
        else {
            "reduceOptions": {
                "calcs": ["sum"] if unit == "currencyEUR" else ["lastNotNull"],
                "fields": "",
            }
        },
    }
    return result


def variable(name: str, query: str, label: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": query,
        "refresh": 2,
        "includeAll": False,
        "multi": False,
        "sort": 1,
    }


def dashboard(
    uid: str, title: str, panels: list[dict], variables: list[dict], tags: list[str]
) -> dict:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
    return {
        "uid": uid,
        "title": title,
        "tags": ["cer-ems", *tags],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": variables},
        "panels": panels,
        "annotations": {"list": []},
    }


COMMUNITY = variable(
    "community", 'SHOW TAG VALUES FROM "telemetry" WITH KEY = "community"', "Community"
)
HUB = variable("hub", f'SHOW TAG VALUES FROM "telemetry" WITH KEY = "hub" WHERE {C}', "Hub")


def community_overview() -> dict:
    t = "$timeFilter GROUP BY time($__interval)"
    panels = [
        panel(
            "Grid import per hub",
            [
                (
                    f'SELECT mean("import_p_kw") FROM "telemetry" WHERE {C} AND "kind" = \'meter\' AND {t}, "hub" fill(none)',
                    "$tag_hub",
                )
            ],
            "kwatt",
            0,
            0,
        ),
        panel(
            "Grid export per hub",
            [
                (
                    f'SELECT mean("export_p_kw") FROM "telemetry" WHERE {C} AND "kind" = \'meter\' AND {t}, "hub" fill(none)',
                    "$tag_hub",
                )
            ],
            "kwatt",
            12,
            0,
        ),
        panel(
            "PV production per hub",
            [
                (
                    f'SELECT sum("p") FROM (SELECT mean("p_kw") AS "p" FROM "telemetry" WHERE {C} AND "kind" = \'pv\' AND {t}, "hub", "device") WHERE $timeFilter GROUP BY time($__interval), "hub" fill(none)',
                    "$tag_hub",
                )
            ],
            "kwatt",
            0,
            8,
        ),
        panel(
            "Load per hub (measured and forecast)",
            [
                (
                    f'SELECT mean("load_p_kw") FROM "telemetry" WHERE {C} AND "kind" = \'meter\' AND {t}, "hub" fill(none)',
                    "$tag_hub measured",
                ),
                (
                    f'SELECT mean("p_kw") FROM "forecast" WHERE {C} AND "kind" = \'load\' AND {t}, "hub" fill(none)',
                    "$tag_hub forecast",
                ),
            ],
            "kwatt",
            12,
            8,
        ),
        panel(
            "Shared energy (hourly)",
            [
                (
                    f'SELECT sum("e_shared_kwh") FROM "shared_energy" WHERE {C} AND $timeFilter GROUP BY time(1h) fill(none)',
                    "shared",
                ),
                (
                    f'SELECT sum("e_injected_kwh") FROM "shared_energy" WHERE {C} AND $timeFilter GROUP BY time(1h) fill(none)',
                    "injected",
                ),
                (
                    f'SELECT sum("e_withdrawn_kwh") FROM "shared_energy" WHERE {C} AND $timeFilter GROUP BY time(1h) fill(none)',
                    "withdrawn",
                ),
            ],
            "kwatth",
            0,
            16,
        ),
        panel(
            "Incentive, valorisation, sale (daily)",
            [
                (
                    f'SELECT sum("tip_eur") FROM "incentive" WHERE {C} AND $timeFilter GROUP BY time(1d) fill(none)',
                    "TIP",
                ),
                (
                    f'SELECT sum("valorisation_eur") FROM "incentive" WHERE {C} AND $timeFilter GROUP BY time(1d) fill(none)',
                    "valorisation",
                ),
                (
                    f'SELECT sum("sale_eur") FROM "incentive" WHERE {C} AND $timeFilter GROUP BY time(1d) fill(none)',
                    "sale",
                ),
            ],
            "currencyEUR",
            12,
            16,
        ),
        panel(
            "Incentive in range",
            [(f'SELECT sum("tip_eur") FROM "incentive" WHERE {C} AND $timeFilter', "TIP €")],
            "currencyEUR",
            0,
            24,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Shared energy in range",
            [(f'SELECT sum("e_shared_kwh") FROM "shared_energy" WHERE {C} AND $timeFilter', "kWh")],
            "kwatth",
            6,
            24,
            6,
            4,
            kind="stat",
        ),
    ]
    return dashboard(
        "cer-ems-community", "CER EMS — community overview", panels, [COMMUNITY], ["community"]
    )


def hub_detail() -> dict:
    t = "$timeFilter GROUP BY time($__interval)"
    w = f"{C} AND {H}"
    panels = [
        panel(
            "Battery power: setpoint vs measured",
            [
                (
                    f'SELECT mean("p_kw") FROM "telemetry" WHERE {w} AND "kind" = \'battery\' AND {t}, "device" fill(none)',
                    "$tag_device measured",
                ),
                (
                    f'SELECT last("p_kw") FROM "setpoint" WHERE {w} AND "kind" = \'battery\' AND {t}, "device" fill(previous)',
                    "$tag_device setpoint",
                ),
            ],
            "kwatt",
            0,
            0,
        ),
        panel(
            "Battery state of charge",
            [
                (
                    f'SELECT mean("soc_pct") FROM "telemetry" WHERE {w} AND "kind" = \'battery\' AND {t}, "device" fill(none)',
                    "$tag_device",
                ),
                (
                    f'SELECT mean("soc_pct") FROM "plan" WHERE {w} AND "kind" = \'battery\' AND {t}, "device" fill(none)',
                    "$tag_device plan",
                ),
            ],
            "percent",
            12,
            0,
        ),
        panel(
            "EV charging: power, setpoint, vehicle SoC",
            [
                (
                    f'SELECT mean("p_kw") FROM "telemetry" WHERE {w} AND "kind" = \'ev_charger\' AND {t}, "device" fill(none)',
                    "$tag_device kW",
                ),
                (
                    f'SELECT last("p_kw") FROM "setpoint" WHERE {w} AND "kind" = \'ev_charger\' AND {t}, "device" fill(previous)',
                    "$tag_device setpoint kW",
                ),
                (
                    f'SELECT mean("vehicle_soc_pct") FROM "telemetry" WHERE {w} AND "kind" = \'ev_charger\' AND {t}, "device" fill(none)',
                    "$tag_device SoC %",
                ),
            ],
            "kwatt",
            0,
            8,
        ),
        panel(
            "EV sessions (plugged)",
            [
                (
                    f'SELECT max("plugged_i") FROM (SELECT "p_kw" * 0 + 1 AS "plugged_i" FROM "telemetry" WHERE {w} AND "kind" = \'ev_charger\' AND "plugged" = true AND $timeFilter) WHERE $timeFilter GROUP BY time($__interval), "device" fill(0)',
                    "$tag_device",
                ),
            ],
            "none",
            12,
            8,
            description="1 while a vehicle is plugged in",
        ),
        panel(
            "AI cluster: power vs cap",
            [
                (
                    f'SELECT mean("p_kw") FROM "telemetry" WHERE {w} AND "kind" = \'ai_cluster\' AND {t}, "device" fill(none)',
                    "$tag_device power",
                ),
                (
                    f'SELECT last("p_cap_kw") FROM "setpoint" WHERE {w} AND "kind" = \'ai_cluster\' AND {t}, "device" fill(previous)',
                    "$tag_device cap",
                ),
                (
                    f'SELECT mean("queued_e_kwh") FROM "telemetry" WHERE {w} AND "kind" = \'ai_cluster\' AND {t}, "device" fill(none)',
                    "$tag_device queued kWh",
                ),
            ],
            "kwatt",
            0,
            16,
        ),
        panel(
            "CHP and heat pump: setpoint vs measured",
            [
                (
                    f'SELECT mean("p_kw") FROM "telemetry" WHERE {w} AND ("kind" = \'chp\' OR "kind" = \'heat_pump\') AND {t}, "kind", "device" fill(none)',
                    "$tag_device measured",
                ),
                (
                    f'SELECT last("p_kw") FROM "setpoint" WHERE {w} AND ("kind" = \'chp\' OR "kind" = \'heat_pump\') AND {t}, "kind", "device" fill(previous)',
                    "$tag_device setpoint",
                ),
            ],
            "kwatt",
            12,
            16,
        ),
        panel(
            "Grid exchange",
            [
                (
                    f'SELECT mean("import_p_kw") FROM "telemetry" WHERE {w} AND "kind" = \'meter\' AND {t} fill(none)',
                    "import",
                ),
                (
                    f'SELECT mean("export_p_kw") FROM "telemetry" WHERE {w} AND "kind" = \'meter\' AND {t} fill(none)',
                    "export",
                ),
                (
                    f'SELECT mean("p_kw") FROM "telemetry" WHERE {w} AND "kind" = \'pv\' AND {t} fill(none)',
                    "PV",
                ),
            ],
            "kwatt",
            0,
            24,
            24,
        ),
    ]
    return dashboard("cer-ems-hub", "CER EMS — hub detail", panels, [COMMUNITY, HUB], ["hub"])


def ems_health() -> dict:
    t = "$timeFilter GROUP BY time($__interval)"
    panels = [
        panel(
            "Solve time",
            [
                (
                    f'SELECT max("solve_time_s") FROM "solver" WHERE {C} AND {t} fill(none)',
                    "solve time",
                )
            ],
            "s",
            0,
            0,
        ),
        panel(
            "MIP gap",
            [(f'SELECT max("gap_pct") FROM "solver" WHERE {C} AND {t} fill(none)', "gap")],
            "percent",
            12,
            0,
        ),
        panel(
            "Fallbacks (rule-based control used)",
            [(f'SELECT sum("fallback") FROM "solver" WHERE {C} AND {t} fill(0)', "fallbacks")],
            "none",
            0,
            8,
        ),
        panel(
            "Last solver status",
            [(f'SELECT last("status") FROM "solver" WHERE {C} AND $timeFilter', "status")],
            "none",
            12,
            8,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Fallbacks in range",
            [(f'SELECT sum("fallback") FROM "solver" WHERE {C} AND $timeFilter', "fallbacks")],
            "none",
            18,
            8,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Rejected payloads (per interval)",
            [
                (
                    f'SELECT non_negative_difference(last("rejected")) FROM "ingest" WHERE {C} AND {t} fill(none)',
                    "rejected",
                ),
            ],
            "none",
            0,
            16,
        ),
        panel(
            "Rejected payloads by reason (counters since start)",
            [
                (f'SELECT last(/^rejected_/) FROM "ingest" WHERE {C} AND {t} fill(none)', "$col"),
            ],
            "none",
            12,
            16,
        ),
        panel(
            "Accepted telemetry rate",
            [
                (
                    f'SELECT non_negative_derivative(last("accepted"), 1s) FROM "ingest" WHERE {C} AND {t} fill(none)',
                    "msg/s",
                ),
            ],
            "none",
            0,
            24,
        ),
        panel(
            "InfluxDB disk buffer",
            [
                (
                    f'SELECT last("store_points_buffered_disk") FROM "ingest" WHERE {C} AND {t} fill(none)',
                    "points on disk",
                ),
            ],
            "none",
            12,
            24,
        ),
    ]
    return dashboard("cer-ems-health", "CER EMS — EMS health", panels, [COMMUNITY], ["health"])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in (
        ("community-overview", community_overview()),
        ("hub-detail", hub_detail()),
        ("ems-health", ems_health()),
    ):
        (OUT / f"{name}.json").write_text(json.dumps(board, indent=2) + "\n")


if __name__ == "__main__":
    main()
