"""Multi-energy outputs of a design study (seed chapter 6): annual energy per hub (Fig. 25),
exchanges between hubs (Fig. 21), dependency and contribution indices (Tables 4–5), change of
operating cost and CO2 per hub vs AS-IS (Tables 6–7), investment and payback, heating balance of
a typical day per hub (Fig. 23).

Indices, as the seed defines them (§6.1.1):
- dependency (Table 4) = energy taken from the other hubs / own demand, per year — electric:
  taken / electric load; thermal: heat withdrawn from district heating / the heat demand it can
  serve (heating + DHW + absorption-chiller feed; the seed divides by heating alone, which
  exceeds 100 % at a hub whose chiller runs on district heat);
- contribution (Table 5) = energy given to the other hubs / own production — electric: given /
  (PV + CHP); thermal: heat injected into district heating / CHP heat.
Exchange matrix: the networks are pools (Σ given = Σ taken, η_DH for heat), so hub-to-hub flows
are attributed pro rata each step: flow i→j = given_i × taken_j / Σ taken.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pyomo.environ as pyo  # noqa: E402

from ems.model import results as res  # noqa: E402
from ems.model.builder import BuiltModel  # noqa: E402
from ems.techs.kpi import Bar  # noqa: E402
from ems.techs.registry import REGISTRY  # noqa: E402


def thermal_size_rows(built: BuiltModel) -> list[dict[str, Any]]:
    """Rows of the sizes table for the multi-energy technologies (installed vs maximum)."""
    return [row for t in built.techs if _multi_energy(t) for row in t.size_rows()]


def _multi_energy(tech: Any) -> bool:
    """A technology on a carrier other than electricity, or an electric link between hubs."""
    return tech.exchange_carrier is not None or any(c != "electricity" for c, _l, _f in tech.flows)


def is_multi_energy(built: BuiltModel) -> bool:
    return any(_multi_energy(t) for t in built.techs)


def _declared_bars() -> list[Bar]:
    """The bars the registered technologies declare (``Technology.energy_bars``), in order."""
    bars = {b.name: b for r in REGISTRY for b in r.tech.energy_bars}
    return sorted(bars.values(), key=lambda b: b.order)


#: The bars of the hub-energy figure (Fig. 25), MWh/y per hub; each technology declares the bars
#: its flows feed (``energy_bars``) and which bar each flow feeds (``Technology.port(..., bar=,
#: sign=)``), so no kind is named here.
BARS = tuple(b.name for b in _declared_bars())
#: local electricity generation (the denominator of the electric contribution, Table 5)
GENERATION = tuple(b.name for b in _declared_bars() if b.generation)


def panel_bars(panel: str) -> list[str]:
    """The bars one panel of the figure draws (``electricity``, ``heating``), in their order."""
    bars = [b for b in _declared_bars() if b.panel == panel]
    return [b.name for b in sorted(bars, key=lambda b: b.panel_order)]


def hub_energy(built: BuiltModel) -> dict[str, dict[str, float]]:
    """Annual MWh per hub: loads, productions, grid, exchanges (the bars of Fig. 25)."""
    g = built.ctx.grid
    weights = [(k, g.annual_factor(k[0]) / 1000.0) for k in g.index()]
    out: dict[str, dict[str, float]] = {}
    for tech in built.techs:
        if tech.hub == "community" or not tech.flows:
            continue
        bars = out.setdefault(tech.hub, dict.fromkeys(BARS, 0.0))
        for carrier, label, term in tech.flows:
            bar = tech.bars.get((carrier, label))
            if bar is not None:
                mwh = sum(float(pyo.value(term(*k))) * w for k, w in weights)
                bars[bar[0]] += bar[1] * mwh
    return dict(sorted(out.items()))


def _pct(num: float, den: float) -> float | None:
    return None if den <= 1e-9 else 100.0 * num / den


def indices(energy: dict[str, dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Tables 4–5: dependency on and contribution to the community, electric and thermal, %."""
    return {
        h: {
            "dependency_el_pct": _pct(e["el_taken"], e["electric_load"]),
            # DH heat reaches heating, DHW and the chillers' feed: all three are the denominator
            # (the seed's heating demand alone gives > 100 % at a hub whose chiller runs on DH;
            # kept as dependency_th_seed_pct for the comparison with the seed's Table 4)
            "dependency_th_pct": _pct(
                e["dh_taken"],
                e["heating_load"] + e.get("dhw_load", 0.0) + e.get("chiller_heat", 0.0),
            ),
            "dependency_th_seed_pct": _pct(e["dh_taken"], e["heating_load"]),
            "contribution_el_pct": _pct(e["el_given"], sum(e[b] for b in GENERATION)),
            "contribution_th_pct": _pct(e["dh_given"], e["chp_heat"]),
        }
        for h, e in energy.items()
    }


def exchange_matrices(built: BuiltModel) -> dict[str, dict[str, dict[str, float]]]:
    """{"electricity"|"heat": {from hub: {to hub: MWh/y}}}, pro-rata attribution per step (the
    heat matrix counts heat as received, after the network efficiency)."""
    g = built.ctx.grid
    out: dict[str, dict[str, dict[str, float]]] = {}
    for carrier in ("electricity", "heat"):
        st = [t for t in built.techs if t.exchange_carrier == carrier]
        if not st:
            continue
        mat = {a.hub: {b.hub: 0.0 for b in st} for a in st}
        for p, t in g.index():
            give = {s.hub: float(pyo.value(s.to_kw(p, t))) for s in st}
            take = {s.hub: float(pyo.value(s.from_kw(p, t))) for s in st}
            tot_take, tot_give = sum(take.values()), sum(give.values())
            if tot_take <= 1e-9 or tot_give <= 1e-9:
                continue
            for i, gi in give.items():
                for j, tj in take.items():
                    # received by j from i: j's intake split by the givers' shares
                    mat[i][j] += tj * gi / tot_give * g.annual_factor(p) / 1000.0
        out[carrier] = mat
    return out


def hub_money(
    built: BuiltModel, gas_eur_per_kwh: float, gas_t_per_mwh: float, grid_t_per_mwh: float
) -> dict[str, dict[str, float]]:
    """Per hub: investment €, opex €/y (grid purchase − sale + gas + O&M), CO2 t/y."""
    g = built.ctx.grid
    m = built.model
    out: dict[str, dict[str, float]] = {}
    block_hub = {t.block_name: t.hub for t in built.techs}
    for name, capex in built.ctx.capex_eur.items():
        hub = block_hub.get(name.split(".")[0], "community")
        out.setdefault(hub, {"investment_eur": 0.0, "opex_eur_per_y": 0.0, "co2_t_per_y": 0.0})
        out[hub]["investment_eur"] += float(pyo.value(capex))
    for tech in built.techs:
        blk = m.component(tech.block_name)
        h = out.setdefault(
            tech.hub, {"investment_eur": 0.0, "opex_eur_per_y": 0.0, "co2_t_per_y": 0.0}
        )
        for p, t in g.index():
            w = g.annual_factor(p)
            if tech.grid_connection:
                imp, exp = pyo.value(blk.p_import_kw[p, t]), pyo.value(blk.p_export_kw[p, t])
                h["opex_eur_per_y"] += w * (
                    pyo.value(blk.price_buy[p, t]) * imp - pyo.value(blk.price_sell[p, t]) * exp
                )
                h["co2_t_per_y"] += w * grid_t_per_mwh / 1000.0 * imp
            fuel = blk.component("fuel_kw")
            if fuel is not None:
                f = pyo.value(fuel[p, t])
                h["opex_eur_per_y"] += w * gas_eur_per_kwh * f
                h["co2_t_per_y"] += w * gas_t_per_mwh / 1000.0 * f
                om = getattr(getattr(tech, "spec", None), "om_eur_per_kwh_el", 0.0) or 0.0
                if om:
                    h["opex_eur_per_y"] += w * om * pyo.value(blk.p_el_kw[p, t])
    for name, capex in built.ctx.capex_eur.items():  # capex-based O&M
        tech = next((t for t in built.techs if t.block_name == name.split(".")[0]), None)
        frac = getattr(getattr(tech, "spec", None), "om_fraction_per_y", 0.0) or 0.0
        if tech is not None and frac:
            out[tech.hub]["opex_eur_per_y"] += frac * float(pyo.value(capex))
    return out


def thermal_kpis(r: Any) -> dict[str, Any]:
    """Everything chapter 6 compares, for results.json and the console."""
    s = r.scenario
    args = (s.prices.gas_eur_per_kwh, s.emissions.gas_t_per_mwh, s.emissions.grid_t_per_mwh)
    energy = hub_energy(r.design.built)
    money = hub_money(r.design.built, *args)
    money_asis = hub_money(r.asis.built, *args)
    per_hub: dict[str, Any] = {}
    for hub in sorted((set(money) | set(money_asis)) - {"community"}):
        d, a = money.get(hub, {}), money_asis.get(hub, {})
        opex_d, opex_a = d.get("opex_eur_per_y", 0.0), a.get("opex_eur_per_y", 0.0)
        co2_d, co2_a = d.get("co2_t_per_y", 0.0), a.get("co2_t_per_y", 0.0)
        per_hub[hub] = {
            "investment_eur": d.get("investment_eur", 0.0),
            "opex_eur_per_y": opex_d,
            "opex_asis_eur_per_y": opex_a,
            "opex_change_pct": None
            if abs(opex_a) < 1e-9
            else 100.0 * (opex_d - opex_a) / abs(opex_a),
            "co2_t_per_y": co2_d,
            "co2_asis_t_per_y": co2_a,
            "co2_change_pct": None if co2_a < 1e-9 else 100.0 * (co2_d - co2_a) / co2_a,
        }
    inv = sum(v["investment_eur"] for v in per_hub.values())
    op_d = sum(v["opex_eur_per_y"] for v in per_hub.values())
    op_a = sum(v["opex_asis_eur_per_y"] for v in per_hub.values())
    c_d = sum(v["co2_t_per_y"] for v in per_hub.values())
    c_a = sum(v["co2_asis_t_per_y"] for v in per_hub.values())
    total = {
        "investment_eur": inv,
        "opex_eur_per_y": op_d,
        "opex_asis_eur_per_y": op_a,
        "opex_change_pct": None if abs(op_a) < 1e-9 else 100.0 * (op_d - op_a) / abs(op_a),
        "co2_t_per_y": c_d,
        "co2_asis_t_per_y": c_a,
        "co2_change_pct": None if c_a < 1e-9 else 100.0 * (c_d - c_a) / c_a,
        "simple_payback_y": None if op_a - op_d <= 0 else inv / (op_a - op_d),
    }
    return {
        "sizes": res.sizes_by_hub(r.design.built),
        "energy_mwh_per_y": energy,
        "indices_pct": indices(energy),
        "exchanges_mwh_per_y": exchange_matrices(r.design.built),
        "per_hub": per_hub,
        "community": total,
        "asis_energy_mwh_per_y": hub_energy(r.asis.built),
    }


def _f(x: Any, d: int = 0) -> str:
    return "–" if x is None else f"{round(x, d) + 0.0:,.{d}f}"  # + 0.0: never "-0.0"


def thermal_console(k: dict[str, Any]) -> str:
    lines = ["", "Annual energy per hub, MWh/y (Fig. 25):"]
    keys = BARS
    hubs = list(k["energy_mwh_per_y"])
    lines.append(f"  {'':<16}" + "".join(f"{h:>10}" for h in hubs))
    for key in keys:
        lines.append(
            f"  {key:<16}" + "".join(f"{_f(k['energy_mwh_per_y'][h][key], 1):>10}" for h in hubs)
        )
    lines.append(
        "Indices, % (Tables 4–5: dependency = taken / demand, contribution = given / production):"
    )
    for key in (
        "dependency_el_pct",
        "dependency_th_pct",
        "dependency_th_seed_pct",
        "contribution_el_pct",
        "contribution_th_pct",
    ):
        lines.append(
            f"  {key:<22}" + "".join(f"{_f(k['indices_pct'][h][key], 1):>10}" for h in hubs)
        )
    for carrier, mat in k["exchanges_mwh_per_y"].items():
        lines.append(f"Exchanges {carrier}, MWh/y (row gives to column, pro rata):")
        cols = list(mat)
        lines.append(f"  {'':<8}" + "".join(f"{c:>10}" for c in cols))
        for i in cols:
            lines.append(f"  {i:<8}" + "".join(f"{_f(mat[i][j], 1):>10}" for j in cols))
    lines.append(
        "Per hub vs AS-IS (Tables 6–7): investment k€, opex k€/y (AS-IS), change %, "
        "CO2 t/y (AS-IS), change %:"
    )
    for hub, v in list(k["per_hub"].items()) + [("total", k["community"])]:
        lines.append(
            f"  {hub:<10}{_f(v['investment_eur'] / 1e3):>8}{_f(v['opex_eur_per_y'] / 1e3):>8}"
            f" ({_f(v['opex_asis_eur_per_y'] / 1e3)}){_f(v['opex_change_pct'], 1):>8} %"
            f"{_f(v['co2_t_per_y']):>8} ({_f(v['co2_asis_t_per_y'])}){_f(v['co2_change_pct'], 1):>8} %"
        )
    if k["community"].get("simple_payback_y") is not None:
        lines.append(
            "  simple payback (investment / opex saving): "
            f"{k['community']['simple_payback_y']:.1f} years"
        )
    return "\n".join(lines)


def verification_console(v: dict[str, Any] | None) -> str:
    if not v:
        return ""
    line = (
        "  verification (sizes fixed, full integrality, day by day): "
        f"{v['verified_objective']:,.0f} vs sizing pass {v['sizing_objective']:,.0f} "
        f"({v['difference_pct']:+.3f} %); proven gap {v['proven_gap_pct']:.3f} % "
        f"(bound {v['sizing_bound']:,.0f}); {v['time_s']:.1f} s, total {v['total_time_s']:.1f} s"
    )
    late = v.get("days_at_time_limit") or []
    if v.get("sizing_stop") == "maxTimeLimit" or late:
        where = f"verification days {', '.join(late)}" if late else "sizing pass"
        line += (
            f"\n  WARNING: the {where} stopped on the wall-clock safety net (solver.time_limit_s), "
            f"not on the gap: the plan depends on the machine's load; it is proven within "
            f"{v['proven_gap_pct']:.3f} %"
        )
    return line


def write_thermal_outputs(r: Any, out: Path, fl: pd.DataFrame, plot_balances: Any) -> list[Path]:
    """thermal_kpis.json, exchange CSVs, annual energy bars, heating balance plots."""
    if not is_multi_energy(r.design.built):
        return []
    from design.report import thermal_kpis_of  # computed once per study (the console too)

    k = thermal_kpis_of(r)
    written: list[Path] = []
    p = out / "thermal_kpis.json"
    p.write_text(json.dumps({**k, "verification": r.verification}, indent=2, default=float))
    written.append(p)
    for carrier, mat in k["exchanges_mwh_per_y"].items():
        p = out / f"exchanges_{carrier}.csv"
        pd.DataFrame(mat).T.round(3).to_csv(p)
        written.append(p)
    written += plot_energy_bars(k, out, r.scenario.name)
    if "heat" in set(fl["carrier"]):
        written += plot_balances(r, fl, out, carrier="heat")
    if "cooling" in set(fl["carrier"]):
        written += plot_balances(r, fl, out, carrier="cooling")
    return written


def plot_energy_bars(k: dict[str, Any], out: Path, name: str) -> list[Path]:
    e = pd.DataFrame(k["energy_mwh_per_y"])
    el, th = panel_bars("electricity"), panel_bars("heating")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for ax, rows, title in ((axes[0], el, "electricity"), (axes[1], th, "heating")):
        e.loc[rows].plot.bar(ax=ax)
        ax.set_ylabel("MWh/y")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"{name}: annual energy per hub (like the seed's Fig. 25)")
    fig.tight_layout()
    p = out / "annual_energy_per_hub.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return [p]
