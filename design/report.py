"""Outputs of a design study: console tables, results.json, dispatch CSVs, sizes.yaml, PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from design.cashflow import cashflow_csv, plot_cashflow  # noqa: E402
from design.cashflow import summary as cashflow_summary  # noqa: E402
from design.study import StudyResult  # noqa: E402
from design.surplus import surplus_per_set  # noqa: E402
from ems.config.sizes import SizesFile  # noqa: E402
from ems.model import results as res  # noqa: E402
from ems.techs.kpi import KpiTable  # noqa: E402
from ems.techs.registry import REGISTRY  # noqa: E402


def sizes_table(r: StudyResult) -> list[dict[str, Any]]:
    """One row per hub and sized item: installed vs maximum (each technology's
    :meth:`~ems.techs.base.Technology.size_rows`)."""
    rows = [row for tech in r.design.built.techs for row in tech.size_rows()]
    for row in rows:
        row["installed"] = round(row["installed"] + 0.0, 3)
    return rows


def sizes_yaml(r: StudyResult) -> dict[str, Any]:
    """What operation mode reads: {hub: {entry: {quantity: value}}}, each technology's own
    entries (:meth:`ems.techs.base.Technology.size_entry`; the file model is
    :class:`ems.config.sizes.SizesFile`)."""
    return SizesFile.from_techs(r.design.built.techs, r.scenario.name).hubs


def _fmt(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (int, float)):
        return f"{round(x, digits) + 0.0:,.{digits}f}"  # + 0.0: never "-0.0"
    return str(x)


def kpi_tables() -> list[tuple[str, KpiTable]]:
    """(kind, its section) of every registered technology with a section of its own in the
    design report (its KPIs are under its kind in the KPI dict)."""
    return [(r.kind, r.tech.kpi_table) for r in REGISTRY if r.tech.kpi_table is not None]


def console_report(r: StudyResult) -> str:
    lines = [f"== {r.scenario.name} ({r.scenario.community} community) =="]
    lines.append("")
    lines.append("Sizes (installed / maximum):")
    lines.append(f"  {'hub':<8}{'item':<28}{'installed':>12}{'max':>12}  unit")
    for row in sizes_table(r):
        lines.append(
            f"  {row['hub']:<8}{row['item']:<28}{_fmt(row['installed'], 2):>12}"
            f"{_fmt(row['max'], 2):>12}  {row['unit']}"
        )
    k, a = r.design.kpis, r.asis.kpis
    vs = k.get("vs_asis", {})
    lines.append("")
    lines.append(f"  {'KPI':<34}{'design':>14}{'AS-IS':>14}{'change':>10}")

    def kpi(label: str, key: str, change: str | None = None, digits: int = 0) -> None:
        ch = vs.get(change) if change else None
        lines.append(
            f"  {label:<34}{_fmt(k[key], digits):>14}{_fmt(a[key], digits):>14}"
            f"{(_fmt(ch, 1) + ' %') if ch is not None else '':>10}"
        )

    kpi("annualised cost €/y", "annualised_cost_eur_per_y", "annualised_cost_pct")
    kpi("  Capex (annualised) €/y", "capex_annualised_eur_per_y")
    kpi("  Opex (O&M + grid − sale) €/y", "opex_eur_per_y", "opex_pct")
    kpi("  incentive €/y", "incentive_eur_per_y")
    kpi("investment €", "investment_eur")
    kpi("CO2 t/y", "co2_t_per_y", "co2_pct", 1)
    kpi("PV MWh/y", "pv_mwh_per_y", None, 1)
    kpi("self-consumption %", "self_consumption_pct", None, 1)
    kpi("shared energy MWh/y", "shared_energy_mwh_per_y", None, 1)
    for hub, h in k["hubs"].items():
        lines.append(
            f"  {hub}: PV {_fmt(h['pv_mwh_per_y'], 1)} MWh/y, import {_fmt(h['import_mwh_per_y'], 1)}, "
            "export "
            f"{_fmt(h['export_mwh_per_y'], 1)}, self-consumption {_fmt(h['self_consumption_pct'])} % of PV, "
            f"{_fmt(h['self_supplied_share_of_demand_pct'])} % of demand"
        )
    for kind, table in kpi_tables():
        for hub, c in k.get(kind, {}).items():
            cells = (col.console.format(_fmt(c[col.key], col.decimals)) for col in table.columns)
            lines.append(f"  {hub}: {table.title} " + ", ".join(cells))
    if vs.get("simple_payback_y") is not None:
        lines.append(f"  simple payback: {vs['simple_payback_y']:.1f} years")
    lines.append("")
    lines.append("Solves:")
    for rec in (r.asis.record, r.design.record):
        lines.append("  " + rec.line())
    from design.report_thermal import is_multi_energy, thermal_console, verification_console

    if getattr(r, "verification", None):
        lines.append(verification_console(r.verification))
    for note in r.notes:
        lines.append(f"  note: {note}")
    if is_multi_energy(r.design.built):
        lines.append(thermal_console(thermal_kpis_of(r)))
    from design.cashflow import console_lines
    from design.surplus import console_lines as surplus_lines
    from design.surplus import surplus_per_set

    lines += surplus_lines(surplus_per_set(r.design.built))
    lines += console_lines(cash_flows(r), r.scenario.finance)
    return "\n".join(lines)


def cash_flows(r: StudyResult) -> list[Any]:
    """The cash-flow variants of a study, computed once and kept on the result."""
    from design.cashflow import cash_flow_variants

    if getattr(r, "_cash_flows", None) is None:
        r._cash_flows = cash_flow_variants(r)  # type: ignore[attr-defined]
    return r._cash_flows  # type: ignore[attr-defined]


def thermal_kpis_of(r: StudyResult) -> dict[str, Any]:
    """Chapter 6's KPIs of a study (:func:`design.report_thermal.thermal_kpis`), computed once
    and kept on the result: the console and the output files both read them."""
    from design.report_thermal import thermal_kpis

    if getattr(r, "_thermal_kpis", None) is None:
        r._thermal_kpis = thermal_kpis(r)  # type: ignore[attr-defined]
    return r._thermal_kpis  # type: ignore[attr-defined]


def write_outputs(r: StudyResult, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    payload = {
        "scenario": r.scenario.name,
        "community": r.scenario.community,
        "objective": r.scenario.objective.model_dump(),
        "solves": {"asis": r.asis.record.as_dict(), "design": r.design.record.as_dict()},
        "sizes": sizes_table(r),
        "kpis": r.design.kpis,
        "asis_kpis": r.asis.kpis,
        "costs": r.design.costs,
        "asis_costs": r.asis.costs,
        "typical_days": {
            p: {"weight": r.study.grid.weight[p], "kind": r.study.grid.kind.get(p)}
            for p in r.study.grid.periods
        },
        "notes": r.notes,
        "verification": getattr(r, "verification", None),
        "cash_flows": cashflow_summary(cash_flows(r)),
        "surplus_per_set": surplus_per_set(r.design.built),
    }
    p = out / "results.json"
    p.write_text(json.dumps(payload, indent=2, default=float))
    written.append(p)
    p = out / "sizes.yaml"
    p.write_text(
        "# written by ems design: the sizes operation mode reads\n"
        + yaml.safe_dump(
            SizesFile.from_techs(r.design.built.techs, r.scenario.name).to_dict(), sort_keys=False
        )
    )
    written.append(p)
    fl = res.flows(r.design.built)
    ddir = out / "dispatch"
    ddir.mkdir(exist_ok=True)
    for period, df in fl.groupby("period", sort=False):
        wide = df.pivot_table(
            index="step", columns=["hub", "carrier", "label"], values="kw", aggfunc="sum"
        )
        wide.columns = [f"{h}:{c}:{lab}" for h, c, lab in wide.columns]
        p = ddir / f"{period}.csv"
        wide.round(4).to_csv(p)
        written.append(p)
    variants = cash_flows(r)
    p = out / "cashflow.csv"
    cashflow_csv(variants).to_csv(p, index=False)
    written.append(p)
    written.append(plot_cashflow(variants, out, r.scenario.name))
    written += plot_sizes(r, out)
    written += plot_balances(r, fl, out)
    from design.report_thermal import write_thermal_outputs  # multi-energy hubs (chapter 6)

    written += write_thermal_outputs(r, out, fl, plot_balances)
    from design.report_html import write_report

    written.append(write_report(r, variants, out, sizes_table(r), written))
    return written


def plot_sizes(r: StudyResult, out: Path) -> list[Path]:
    """Installed vs maximum, one panel per unit (kWp, kWh, kW, units, m²) so a 7.4 kW charger
    is not drawn on a 300 kWp axis; bars labelled with their value; legend above the panels."""
    rows = pd.DataFrame(sizes_table(r))
    if rows.empty:
        return []
    units = list(dict.fromkeys(rows["unit"]))
    widths = [max(2.0, 0.55 * int((rows["unit"] == u).sum()) + 1.2) for u in units]
    fig, axes = plt.subplots(
        1,
        len(units),
        figsize=(min(sum(widths) + 1.0, 24), 4.6),
        squeeze=False,
        gridspec_kw={"width_ratios": widths},
    )
    for ax, unit in zip(axes[0], units, strict=True):
        sub = rows[rows["unit"] == unit]
        labels = [f"{h} {i}" for h, i in zip(sub["hub"], sub["item"], strict=True)]
        x = list(range(len(sub)))
        top = [
            float(m) if m is not None and m == m else float(v)
            for m, v in zip(sub["max"], sub["installed"], strict=True)
        ]
        ax.bar(x, top, color="#dddddd", label="maximum")
        bars = ax.bar(x, sub["installed"], color="#2b7bba", width=0.5, label="installed")
        ax.bar_label(bars, labels=[_fmt(v, 1) for v in sub["installed"]], fontsize=7, padding=2)
        ax.set_xticks(x, labels, fontsize=7, rotation=35, ha="right")
        ax.set_ylabel(unit)
        ax.set_ylim(0, max(top + [1e-6]) * 1.15)
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"{r.scenario.name}: sizes vs maximum", x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    p = out / "sizes.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]


def plot_balances(
    r: StudyResult, fl: pd.DataFrame, out: Path, carrier: str = "electricity"
) -> list[Path]:
    """Symmetric daily balance (supplies above zero, uses below) of each hub for the most weighted
    weekday and holiday typical day, like the seed's Figure 16."""
    g = r.study.grid
    sub_all = fl[fl["carrier"] == carrier]
    # days on which this carrier flows at all (no empty heating plot for a summer day)
    active = set(sub_all.loc[sub_all["kw"].abs() > 1e-6, "period"])
    picks: list[str] = []
    for kind in ("weekday", "holiday"):
        cands = [p for p in g.periods if g.kind.get(p, "weekday") == kind and p in active]
        if cands:
            picks.append(max(cands, key=lambda p: g.weight[p]))
    written = []
    palette = plt.get_cmap("tab20").colors
    colour = {
        label: palette[i % len(palette)]
        for i, label in enumerate(sorted(sub_all["label"].unique()))
    }
    hubs = sorted(h for h in sub_all["hub"].unique() if h != "community")
    for period in picks:
        fig, axes = plt.subplots(
            len(hubs), 1, figsize=(11, 2.6 * len(hubs)), squeeze=False, sharex=True
        )
        for ax, hub in zip(axes[:, 0], hubs, strict=False):
            sub = sub_all[(sub_all["hub"] == hub) & (sub_all["period"] == period)]
            wide = sub.pivot_table(
                index="step", columns="label", values="kw", aggfunc="sum"
            ).fillna(0.0)
            hours = [g.hour_of(t) for t in wide.index]
            pos_base = [0.0] * len(wide)
            neg_base = [0.0] * len(wide)
            for label in wide.columns:
                vals = wide[label].tolist()
                pos = [max(v, 0.0) for v in vals]
                neg = [min(v, 0.0) for v in vals]
                if any(v > 1e-6 for v in pos):
                    ax.bar(
                        hours,
                        pos,
                        bottom=pos_base,
                        width=g.dt_h * 0.9,
                        label=label,
                        align="edge",
                        color=colour[label],
                    )
                    pos_base = [b + v for b, v in zip(pos_base, pos, strict=False)]
                if any(v < -1e-6 for v in neg):
                    ax.bar(
                        hours,
                        neg,
                        bottom=neg_base,
                        width=g.dt_h * 0.9,
                        label=label,
                        align="edge",
                        hatch="//",
                        color=colour[label],
                    )
                    neg_base = [b + v for b, v in zip(neg_base, neg, strict=False)]
            ax.axhline(0, color="black", lw=0.6)
            ax.set_ylabel(f"{hub} kW")
            if ax.get_legend_handles_labels()[0]:  # a hub with nothing that day has no legend
                # outside the axes, so it never covers a bar
                ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        axes[-1, 0].set_xlabel("hour")
        fig.suptitle(
            f"{r.scenario.name}: {carrier} balance, typical day {period} ({g.weight[period]:.0f} days)"
        )
        fig.tight_layout()
        p = out / f"balance_{carrier}_{period}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written
