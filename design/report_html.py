"""``report.html``: one self-contained page a CER's members can read (no external files, no
network, no script): sizes, KPIs against the AS-IS case, cash flows, the incentive per plant,
the energy balances, the solver records and notes. Plots are the PNGs the study wrote, inlined
as base64 data URIs."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from design.cashflow import Variant, annual_basis, shared_by_hub
from design.report import kpi_tables

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1d2733;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:3px solid #2b7bba;padding-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;color:#2b5b8a}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #ccd5df;padding:.25rem .6rem;text-align:right}
th{background:#eef3f8}
td.l,th.l{text-align:left}
.neg{color:#b3261e}.pos{color:#1b7a3a}
img{max-width:100%;border:1px solid #e3e8ee;margin:.4rem 0}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.4rem .8rem;margin:.4rem 0}
.muted{color:#5f6b7a;font-size:.85rem}
"""


def _num(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, (int, float)):
        v = round(float(x), digits) + 0.0  # no "-0"
        return f"{v:,.{digits}f}"
    return html.escape(str(x))


def _table(head: list[str], rows: list[list[Any]], left: int = 1) -> str:
    th = "".join(
        f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(head)
    )
    body = []
    for row in rows:
        tds = "".join(
            f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def incentive_per_plant(r: Any) -> list[dict[str, Any]]:
    """Shared energy and incentive attributed to each PV plant: per hour ∝ its hub's export
    (the ledger attributes by plant; a hub's plants split its share ∝ their production)."""
    built = r.design.built
    if r.scenario.community != "virtual" or not hasattr(built.model, "tech_community"):
        return []
    import pyomo.environ as pyo

    b = annual_basis(r)
    g = built.ctx.grid
    blk = built.model.tech_community
    if hasattr(blk, "shared_plant_kw"):  # DM 414 rules: the model's own attribution and rates
        keys, money = {}, {}
        for h in blk.H:
            keys[h] = sum(
                pyo.value(blk.shared_plant_kw[h, k]) * g.annual_factor(k[0]) for k in g.index()
            )
            money[h] = sum(
                pyo.value(
                    blk.shared_plant_kw[h, k]
                    * (
                        blk.tip_eur_per_kwh[h, k] * blk.one_minus_f[h]
                        + blk.valorisation_eur_per_kwh
                    )
                )
                * g.annual_factor(k[0])
                for k in g.index()
            )
    else:
        _withdrawn, keys = shared_by_hub(b)
        money = {h: v / 1e3 * b.incentive_eur_per_mwh for h, v in keys.items()}
    rows = []
    for hub, shared_kwh in keys.items():
        pvs = [t for t in built.techs if t.renewable_plant and t.hub == hub]
        energy = {
            t.name: sum(
                max(float(pyo.value(term(p, s))), 0.0) * g.annual_factor(p)
                for carrier, _label, term in t.flows
                if carrier == "electricity"
                for p, s in g.index()
            )
            for t in pvs
        }
        total = sum(energy.values())
        for t in pvs:
            share = energy[t.name] / total if total > 0 else 0.0
            mwh = shared_kwh * share / 1e3
            rows.append(
                {
                    "plant": t.name,
                    "hub": hub,
                    "kwp": t.sizes().get("kwp", 0.0),
                    "pv_mwh": energy[t.name] / 1e3,
                    "shared_mwh": mwh,
                    "incentive_eur": money[hub] * share,
                }
            )
    return rows


def _kpi_rows(r: Any) -> list[list[Any]]:
    k, a = r.design.kpis, r.asis.kpis
    vs = k.get("vs_asis", {})
    spec = [
        ("annualised cost €/y", "annualised_cost_eur_per_y", "annualised_cost_pct", 0),
        ("Capex (annualised) €/y", "capex_annualised_eur_per_y", None, 0),
        ("Opex (O&M + grid − sale) €/y", "opex_eur_per_y", "opex_pct", 0),
        ("incentive €/y", "incentive_eur_per_y", None, 0),
        ("investment €", "investment_eur", None, 0),
        ("CO2 t/y", "co2_t_per_y", "co2_pct", 1),
        ("PV MWh/y", "pv_mwh_per_y", None, 1),
        ("self-consumption %", "self_consumption_pct", None, 1),
        ("shared energy MWh/y", "shared_energy_mwh_per_y", None, 1),
    ]
    rows = []
    for label, key, change, digits in spec:
        ch = vs.get(change) if change else None
        rows.append(
            [
                html.escape(label),
                _num(k.get(key), digits),
                _num(a.get(key), digits),
                "" if ch is None else _num(ch, 1) + " %",
            ]
        )
    return rows


def _cashflow_section(variants: list[Variant], out: Path) -> str:
    parts = ["<h2>Cash flows</h2>"]
    parts.append(
        '<p class="muted">Incremental against the AS-IS case; members are the hubs; the incentive '
        "reaches them by the statute's allocation. NPV at the scenario's interest rate; DPB = "
        "discounted payback.</p>"
    )
    rows = []
    for v in variants:
        for subject, m in v.metrics.items():
            dpb = m["discounted_payback_y"]
            rows.append(
                [
                    html.escape(v.label) + ("" if v.eligible else " (not eligible)"),
                    html.escape(subject),
                    _num(m["investment_eur"]),
                    _num(m["npv_eur"]),
                    _num(m["irr_pct"], 1),
                    _num(dpb, 1) if dpb is not None else "–",
                ]
            )
    parts.append(
        _table(["variant", "member", "investment €", "NPV €", "IRR %", "DPB years"], rows, 2)
    )
    for v in variants:
        if v.note:
            parts.append(f'<p class="note">{html.escape(v.label)}: {html.escape(v.note)}</p>')
    if (out / "cashflow.png").is_file():
        parts.append(_img(out / "cashflow.png", "cash flows per year"))
    return "".join(parts)


def render(
    r: Any, variants: list[Variant], out: Path, sizes: list[dict[str, Any]], images: list[Path]
) -> str:
    """The page; ``images`` are the PNGs this run wrote (a stale file in ``out`` is not shown)."""
    s = r.scenario
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(s.name)} — design report</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{html.escape(s.name)}: design report</h1>",
        f'<p class="muted">{html.escape(s.community)} community, {len(s.hubs)} hubs, objective '
        f"{html.escape(s.objective.kind)}; written by <code>ems design</code>.</p>",
    ]
    for note in r.notes:
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    parts.append("<h2>Sizes</h2>")
    parts.append(
        _table(
            ["hub", "item", "installed", "maximum", "unit"],
            [
                [
                    html.escape(row["hub"]),
                    html.escape(str(row["item"])),
                    _num(row["installed"], 2),
                    _num(row["max"], 2),
                    html.escape(row["unit"]),
                ]
                for row in sizes
            ],
            2,
        )
    )
    if (out / "sizes.png").is_file():
        parts.append(_img(out / "sizes.png", "sizes vs maximum"))
    parts.append("<h2>Key figures against the AS-IS case</h2>")
    parts.append(_table(["KPI", "design", "AS-IS", "change"], _kpi_rows(r)))
    hubs = r.design.kpis.get("hubs", {})
    parts.append(
        _table(
            [
                "hub",
                "PV MWh/y",
                "import MWh/y",
                "export MWh/y",
                "self-cons. % of PV",
                "% of demand",
            ],
            [
                [
                    html.escape(h),
                    _num(v["pv_mwh_per_y"], 1),
                    _num(v["import_mwh_per_y"], 1),
                    _num(v["export_mwh_per_y"], 1),
                    _num(v["self_consumption_pct"], 1),
                    _num(v["self_supplied_share_of_demand_pct"], 1),
                ]
                for h, v in hubs.items()
            ],
        )
    )
    for kind, table in kpi_tables():  # each technology's own section
        per_hub = r.design.kpis.get(kind, {})
        if not per_hub:
            continue
        parts.append(f"<h2>{html.escape(table.title)}</h2>")
        cols = table.columns
        rows = [
            [html.escape(h)]
            + [
                _num(c[col.key], col.decimals if col.html_decimals is None else col.html_decimals)
                for col in cols
            ]
            for h, c in per_hub.items()
        ]
        parts.append(_table(["hub", *(col.header for col in cols)], rows))
    parts.append(_cashflow_section(variants, out))
    plants = incentive_per_plant(r)
    if plants:
        parts.append("<h2>Incentive per plant</h2>")
        parts.append(
            '<p class="muted">Shared energy of each hub\'s plant (DM 414 rules: as the model '
            "attributes it; flat incentive: hour by hour ∝ its export), split between the hub's "
            "PV fields ∝ their production.</p>"
        )
        parts.append(
            _table(
                ["plant", "hub", "kWp", "PV MWh/y", "shared MWh/y", "incentive €/y"],
                [
                    [
                        html.escape(p["plant"]),
                        html.escape(p["hub"]),
                        _num(p["kwp"], 1),
                        _num(p["pv_mwh"], 1),
                        _num(p["shared_mwh"], 1),
                        _num(p["incentive_eur"]),
                    ]
                    for p in plants
                ],
                2,
            )
        )
    pngs = [p for p in images if p.suffix == ".png"]
    from design.surplus import surplus_per_set

    sets = surplus_per_set(r.design.built)
    if sets:
        parts.append("<h2>Surplus rule per set of plants</h2>")
        parts.append(
            '<p class="muted">DM 414/2023: the share of the TIP above 55 % (TIP only) or 45 % '
            "(TIP + grant) of shared / injected energy goes to non-company members or social "
            "purposes.</p>"
        )
        parts.append(
            _table(
                ["set", "plants", "shared / injected %", "threshold %", "TIP €/y", "surplus €/y"],
                [
                    [
                        html.escape(x["set"]),
                        html.escape(", ".join(x["plants"])),
                        _num(x["shared_over_injected_pct"], 1),
                        _num(x["threshold_pct"]),
                        _num(x["tip_eur_per_y"]),
                        _num(x["surplus_eur_per_y"]),
                    ]
                    for x in sets
                ],
                2,
            )
        )
    balances = [p for p in pngs if p.name.startswith("balance_")]
    others = [p for p in pngs if p not in balances and p.name not in ("sizes.png", "cashflow.png")]
    if balances or others:
        parts.append("<h2>Energy balances</h2>")
        for p in balances + others:
            parts.append(f"<p class='muted'>{html.escape(p.stem.replace('_', ' '))}</p>")
            parts.append(_img(p, p.stem))
    parts.append("<h2>Solver records</h2><ul>")
    for rec in (r.asis.record, r.design.record):
        parts.append(f"<li><code>{html.escape(rec.line())}</code></li>")
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def write_report(
    r: Any, variants: list[Variant], out: Path, sizes: list[dict[str, Any]], images: list[Path]
) -> Path:
    p = out / "report.html"
    p.write_text(render(r, variants, out, sizes, images), encoding="utf-8")
    return p
