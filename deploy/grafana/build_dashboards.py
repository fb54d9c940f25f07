"""Generate the Grafana dashboards (JSON) of cer-ems.

Run: ``python deploy/grafana/build_dashboards.py``.

All queries are raw InfluxQL against the datasource uid ``cer-ems-influx``, so the dashboards work on
InfluxDB 1.x and on 2.x/3.x through the v1 compatibility API. Template variables: ``community``
and (hub detail) ``hub``. The JSON files are committed; this script keeps them consistent.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's ems/ first

from ems.techs import registry  # noqa: E402

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


def kind_is(*kinds: str) -> str:
    """``"kind" = 'pv'``, or the parenthesised OR of several kinds."""
    terms = [f"\"kind\" = '{k}'" for k in kinds]
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def series(
    expr: str,
    source: str,
    where: str = "",
    *,
    by: tuple[str, ...] = (),
    every: str = "$__interval",
    fill: str | None = "none",
) -> str:
    """``SELECT expr FROM source WHERE where AND $timeFilter GROUP BY time(every), by… fill(…)``.

    ``source`` is a measurement name, or a parenthesised subquery; ``fill=None`` leaves fill out.
    """
    src = source if source.startswith("(") else f'"{source}"'
    cond = f"{where} AND $timeFilter" if where else "$timeFilter"
    group = ", ".join([f"time({every})", *(f'"{tag}"' for tag in by)])
    tail = f" fill({fill})" if fill is not None else ""
    return f"SELECT {expr} FROM {src} WHERE {cond} GROUP BY {group}{tail}"


def total(expr: str, measurement: str, where: str) -> str:
    """One value over the dashboard's range (stat panels, subqueries)."""
    return f'SELECT {expr} FROM "{measurement}" WHERE {where} AND $timeFilter'


def community_overview() -> dict:
    meter = f"{C} AND {kind_is('meter')}"
    pv_per_device = series(
        'mean("p_kw") AS "p"',
        "telemetry",
        f"{C} AND {kind_is('pv')}",
        by=("hub", "device"),
        fill=None,
    )
    panels = [
        panel(
            "Grid import per hub",
            [(series('mean("import_p_kw")', "telemetry", meter, by=("hub",)), "$tag_hub")],
            "kwatt",
            0,
            0,
        ),
        panel(
            "Grid export per hub",
            [(series('mean("export_p_kw")', "telemetry", meter, by=("hub",)), "$tag_hub")],
            "kwatt",
            12,
            0,
        ),
        panel(
            "PV production per hub",
            [(series('sum("p")', f"({pv_per_device})", by=("hub",)), "$tag_hub")],
            "kwatt",
            0,
            8,
        ),
        panel(
            "Load per hub (measured and forecast)",
            [
                (
                    series('mean("load_p_kw")', "telemetry", meter, by=("hub",)),
                    "$tag_hub measured",
                ),
                (
                    series('mean("p_kw")', "forecast", f"{C} AND {kind_is('load')}", by=("hub",)),
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
                (series(f'sum("{field}")', "shared_energy", C, every="1h"), alias)
                for field, alias in (
                    ("e_shared_kwh", "shared"),
                    ("e_injected_kwh", "injected"),
                    ("e_withdrawn_kwh", "withdrawn"),
                )
            ],
            "kwatth",
            0,
            16,
        ),
        panel(
            "Incentive, valorisation, sale (daily)",
            [
                (series(f'sum("{field}")', "incentive", C, every="1d"), alias)
                for field, alias in (
                    ("tip_eur", "TIP"),
                    ("valorisation_eur", "valorisation"),
                    ("sale_eur", "sale"),
                )
            ],
            "currencyEUR",
            12,
            16,
        ),
        panel(
            "Incentive in range",
            [(total('sum("tip_eur")', "incentive", C), "TIP €")],
            "currencyEUR",
            0,
            24,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Shared energy in range",
            [(total('sum("e_shared_kwh")', "shared_energy", C), "kWh")],
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
    w = f"{C} AND {H}"

    def measured(
        field: str, *kinds: str, agg: str = "mean", by: tuple[str, ...] = ("device",)
    ) -> str:
        return series(f'{agg}("{field}")', "telemetry", f"{w} AND {kind_is(*kinds)}", by=by)

    def setpoint(field: str, *kinds: str, by: tuple[str, ...] = ("device",)) -> str:
        where = f"{w} AND {kind_is(*kinds)}"
        return series(f'last("{field}")', "setpoint", where, by=by, fill="previous")

    plugged = total(
        '"p_kw" * 0 + 1 AS "plugged_i"',
        "telemetry",
        f'{w} AND {kind_is("ev_charger")} AND "plugged" = true',
    )
    # every other controllable kind of the registry driven by an electric power setpoint (CHP,
    # heat pumps, thermal stores, electric boilers…); battery and EV chargers have own panels
    own_panel = ("battery", "ev_charger")
    thermal = tuple(
        k
        for k, m in registry.setpoint_models().items()
        if k in registry.controllable_device_kinds()
        and "p_kw" in m.model_fields
        and k not in own_panel
    )
    panels = [
        panel(
            "Battery power: setpoint vs measured",
            [
                (measured("p_kw", "battery"), "$tag_device measured"),
                (setpoint("p_kw", "battery"), "$tag_device setpoint"),
            ],
            "kwatt",
            0,
            0,
        ),
        panel(
            "Battery state of charge",
            [
                (measured("soc_pct", "battery"), "$tag_device"),
                (
                    series(
                        'mean("soc_pct")', "plan", f"{w} AND {kind_is('battery')}", by=("device",)
                    ),
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
                (measured("p_kw", "ev_charger"), "$tag_device kW"),
                (setpoint("p_kw", "ev_charger"), "$tag_device setpoint kW"),
                (measured("vehicle_soc_pct", "ev_charger"), "$tag_device SoC %"),
            ],
            "kwatt",
            0,
            8,
        ),
        panel(
            "EV sessions (plugged)",
            [(series('max("plugged_i")', f"({plugged})", by=("device",), fill="0"), "$tag_device")],
            "none",
            12,
            8,
            description="1 while a vehicle is plugged in",
        ),
        panel(
            "AI cluster: power vs cap",
            [
                (measured("p_kw", "ai_cluster"), "$tag_device power"),
                (setpoint("p_cap_kw", "ai_cluster"), "$tag_device cap"),
                (measured("queued_e_kwh", "ai_cluster"), "$tag_device queued kWh"),
            ],
            "kwatt",
            0,
            16,
        ),
        panel(
            "CHP, heat pumps and other devices: setpoint vs measured",
            [
                (measured("p_kw", *thermal, by=("kind", "device")), "$tag_device measured"),
                (setpoint("p_kw", *thermal, by=("kind", "device")), "$tag_device setpoint"),
            ],
            "kwatt",
            12,
            16,
        ),
        panel(
            "Grid exchange",
            [
                (measured("import_p_kw", "meter", by=()), "import"),
                (measured("export_p_kw", "meter", by=()), "export"),
                (measured("p_kw", "pv", by=()), "PV"),
            ],
            "kwatt",
            0,
            24,
            24,
        ),
    ]
    return dashboard("cer-ems-hub", "CER EMS — hub detail", panels, [COMMUNITY, HUB], ["hub"])


DEVICE_FAULTS = "|".join(
    [
        "ocpp_profiles_rejected",
        "ocpp_profiles_failed",
        "ocpp_refused_auth",
        "ocpp_refused_unknown",
        "modbus_timeout",
        "modbus_exception_response",
        "modbus_connect_failed",
        "modbus_write_failed",
        "modbus_writeback_mismatch",
        "modbus_not_sunspec",
    ]
)


def ems_health() -> dict:
    panels = [
        panel(
            "Solve time",
            [(series('max("solve_time_s")', "solver", C), "solve time")],
            "s",
            0,
            0,
        ),
        panel(
            "MIP gap",
            [(series('max("gap_pct")', "solver", C), "gap")],
            "percent",
            12,
            0,
        ),
        panel(
            "Fallbacks (rule-based control used)",
            [(series('sum("fallback")', "solver", C, fill="0"), "fallbacks")],
            "none",
            0,
            8,
        ),
        panel(
            "Last solver status",
            [(total('last("status")', "solver", C), "status")],
            "none",
            12,
            8,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Fallbacks in range",
            [(total('sum("fallback")', "solver", C), "fallbacks")],
            "none",
            18,
            8,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Rejected payloads (per interval)",
            [(series('non_negative_difference(last("rejected"))', "ingest", C), "rejected")],
            "none",
            0,
            16,
        ),
        panel(
            "Rejected payloads by reason (counters since start)",
            [(series("last(/^rejected_/)", "ingest", C), "$col")],
            "none",
            12,
            16,
        ),
        panel(
            "Accepted telemetry rate",
            [(series('non_negative_derivative(last("accepted"), 1s)', "ingest", C), "msg/s")],
            "none",
            0,
            24,
        ),
        panel(
            "InfluxDB disk buffer",
            [(series('last("store_points_buffered_disk")', "ingest", C), "points on disk")],
            "none",
            12,
            24,
        ),
        panel(
            "Devices on OCPP / Modbus",
            [
                (series('last("ocpp_connected")', "devices", C), "OCPP charge points connected"),
                (series('last("modbus_answering")', "devices", C), "Modbus devices answering"),
            ],
            "none",
            0,
            32,
            description="adapters/ocpp and adapters/modbus (docs/devices.md); their telemetry is "
            "in the same panels as MQTT telemetry",
        ),
        panel(
            "Device faults (counters since start)",
            [(series(f"last(/^({DEVICE_FAULTS})$/)", "devices", C), "$col")],
            "none",
            12,
            32,
            description="profiles rejected by chargers (the plan stops counting on them), "
            "Modbus timeouts, exception responses, failed or mismatching writes",
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
