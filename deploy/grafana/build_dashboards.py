"""Generate the Grafana dashboards (JSON) of cer-ems.

Run: ``python deploy/grafana/build_dashboards.py``.

All queries are raw InfluxQL against the datasource uid ``cer-ems-influx``, so the dashboards work on
InfluxDB 1.x and on 2.x/3.x through the v1 compatibility API. Template variables: ``community``
and (hub detail) ``hub``. The JSON files are committed; this script keeps them consistent
(``tests/deploy/test_dashboards.py`` checks it). The technologies' panels are not listed here:
each technology declares its own (``panels``, :mod:`ems.techs.dashboard`) and the builder
iterates the registry.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's ems/ first

from ems.techs import registry  # noqa: E402
from ems.techs.dashboard import Panel, Series  # noqa: E402

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


UNITS = {"kW": "kwatt", "kWh": "kwatth", "%": "percent", "": "none"}  # domain unit -> Grafana's


def series_query(s: Series, where: str, device_kind: str | None) -> str:
    """The InfluxQL of one declared series (``where``: the board's filter)."""
    where = f"{where} AND {kind_is(s.kind or device_kind or '')}"
    if s.when is not None:  # 1 while the flag is true, 0 otherwise
        flag = f"{s.when}_i"
        ones = total(
            f'"{s.field}" * 0 + 1 AS "{flag}"', "telemetry", f'{where} AND "{s.when}" = true'
        )
        return series(f'max("{flag}")', f"({ones})", by=s.by, fill="0")
    if s.sum_devices:
        each = series(f'mean("{s.field}") AS "p"', s.source, where, by=(*s.by, "device"), fill=None)
        return series('sum("p")', f"({each})", by=s.by)
    if s.source == "setpoint":  # the last one sent holds until the next
        return series(f'last("{s.field}")', "setpoint", where, by=s.by, fill="previous")
    return series(f'mean("{s.field}")', s.source, where, by=s.by)


def tech_panels(board: str, where: str) -> list[tuple[float, bool, dict]]:
    """(order, wide, panel) of every panel the registered technologies declare on ``board``;
    equal titles are one panel with the series of each technology in registry order."""
    merged: dict[str, tuple[Panel, list[tuple[str, str]]]] = {}
    for r in registry.REGISTRY:
        for p in r.tech.panels:
            if p.board != board:
                continue
            queries = [(series_query(s, where, r.device_kind), s.alias) for s in p.series]
            merged.setdefault(p.title, (p, []))[1].extend(queries)
    out = []
    for p, queries in merged.values():
        made = panel(p.title, queries, UNITS[p.unit], 0, 0, description=p.description)
        out.append((p.order, p.wide, made))
    return out


def layout(placed: list[tuple[float, bool, dict]], fixed: Sequence[dict] = ()) -> list[dict]:
    """The panels in ``order`` (then ``fixed`` ones, with their own size) left to right, two per
    row (a wide one on a row of its own), on the 24-column grid."""
    panels = [p for _o, _w, p in sorted(placed, key=lambda t: t[0])]
    wide = {id(p) for _o, w, p in placed if w}
    x = y = row_h = 0
    for p in [*panels, *fixed]:
        pos = p["gridPos"]
        if id(p) in wide:
            pos["w"] = 24
        if x + pos["w"] > 24:
            x, y, row_h = 0, y + row_h, 0
        pos["x"], pos["y"] = x, y
        x, row_h = x + pos["w"], max(row_h, pos["h"])
    return [*panels, *fixed]


def community_overview() -> dict:
    fixed = [
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
            0,
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
            0,
            0,
        ),
        panel(
            "Incentive in range",
            [(total('sum("tip_eur")', "incentive", C), "TIP €")],
            "currencyEUR",
            0,
            0,
            6,
            4,
            kind="stat",
        ),
        panel(
            "Shared energy in range",
            [(total('sum("e_shared_kwh")', "shared_energy", C), "kWh")],
            "kwatth",
            0,
            0,
            6,
            4,
            kind="stat",
        ),
    ]
    panels = layout(tech_panels("community", C), fixed)
    return dashboard(
        "cer-ems-community", "CER EMS — community overview", panels, [COMMUNITY], ["community"]
    )


def other_devices(where: str) -> tuple[float, bool, dict] | None:
    """One panel for every controllable device kind driven by an electric power setpoint that
    declares no hub panel of its own (CHP, heat pumps, thermal stores, electric boilers…)."""
    own = {r.device_kind for r in registry.REGISTRY if any(p.board == "hub" for p in r.tech.panels)}
    kinds = tuple(
        k
        for k, m in registry.setpoint_models().items()
        if k in registry.controllable_device_kinds() and "p_kw" in m.model_fields and k not in own
    )
    if not kinds:
        return None
    kind = f"{where} AND {kind_is(*kinds)}"
    by = ("kind", "device")
    made = panel(
        "CHP, heat pumps and other devices: setpoint vs measured",
        [
            (series('mean("p_kw")', "telemetry", kind, by=by), "$tag_device measured"),
            (
                series('last("p_kw")', "setpoint", kind, by=by, fill="previous"),
                "$tag_device setpoint",
            ),
        ],
        "kwatt",
        0,
        0,
        description="every controllable device kind with an electric power setpoint and no "
        f"panel of its own: {', '.join(kinds)}",
    )
    return (50.0, False, made)


def hub_detail() -> dict:
    w = f"{C} AND {H}"
    placed = tech_panels("hub", w)
    other = other_devices(w)
    panels = layout(placed + ([other] if other else []))
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


def boards() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        f"{name}.json": json.dumps(board, indent=2) + "\n"
        for name, board in (
            ("community-overview", community_overview()),
            ("hub-detail", hub_detail()),
            ("ems-health", ems_health()),
        )
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in boards().items():
        (OUT / name).write_text(text)


if __name__ == "__main__":
    main()
