"""Key performance indicators of a solved design (or AS-IS) case, computed from the flows."""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from ems.model import results as res
from ems.model.builder import BuiltModel


def _pct_change(new: float, old: float) -> float | None:
    return None if abs(old) < 1e-9 else 100.0 * (new - old) / abs(old)


def compute_kpis(
    built: BuiltModel, costs: dict[str, float], asis: dict[str, float] | None = None
) -> dict[str, Any]:
    """Annual energy per hub and label, self-consumption, shared energy, money and CO2 (vs AS-IS)."""
    g = built.ctx.grid
    fl = res.flows(built)
    fl["mwh"] = [
        kw * g.annual_factor(p) / 1000.0 for kw, p in zip(fl["kw"], fl["period"], strict=False)
    ]
    annual = fl.groupby(["hub", "carrier", "label"])["mwh"].sum()
    hubs: dict[str, Any] = {}
    for hub in sorted(set(fl["hub"])):
        a = annual.loc[hub] if hub in annual.index.get_level_values(0) else None
        if a is None:
            continue
        el = a.loc["electricity"] if "electricity" in a.index.get_level_values(0) else a.iloc[0:0]
        pv = float(sum(v for k, v in el.items() if str(k).startswith("PV")))
        export = float(-el.get("grid export", 0.0))
        imp = float(el.get("grid import", 0.0))
        demand = float(-el.get("load", 0.0))
        hubs[hub] = {
            "energy_mwh_per_y": {str(k): round(float(v), 3) for k, v in el.items()},
            "pv_mwh_per_y": round(pv, 3),
            "import_mwh_per_y": round(imp, 3),
            "export_mwh_per_y": round(export, 3),
            "self_consumption_pct": None if pv <= 1e-9 else round(100.0 * (pv - export) / pv, 2),
            # the seed's "autoconsumo" (§5.1): self-produced and self-consumed energy / demand
            "self_supplied_share_of_demand_pct": None
            if demand <= 1e-9
            else round(100.0 * (pv - export) / demand, 2),
        }
    # money per hub, from the grid connections' own prices (eq. 20 terms, before Capex)
    for tech in built.techs:
        if tech.grid_connection and tech.hub in hubs:
            blk = tech.block
            buy = sum(
                pyo.value(blk.price_buy[p, t] * blk.p_import_kw[p, t]) * g.annual_factor(p)
                for p, t in g.index()
            )
            sell = sum(
                pyo.value(blk.price_sell[p, t] * blk.p_export_kw[p, t]) * g.annual_factor(p)
                for p, t in g.index()
            )
            hubs[tech.hub]["grid_purchase_eur_per_y"] = round(buy, 2)
            hubs[tech.hub]["sale_eur_per_y"] = round(sell, 2)
    pv_total = sum(h["pv_mwh_per_y"] for h in hubs.values())
    export_total = sum(h["export_mwh_per_y"] for h in hubs.values())
    shared = 0.0
    m = built.model
    if hasattr(m, "tech_community"):
        blk = m.tech_community
        shared = (
            sum(pyo.value(blk.shared_kw[p, t]) * g.annual_factor(p) for p, t in g.index()) / 1000.0
        )
    opex = costs["om"] + costs["energy"] - costs["revenue_sale"]
    out: dict[str, Any] = {
        "annualised_cost_eur_per_y": costs["total"],
        "capex_annualised_eur_per_y": costs["capex"],
        "investment_eur": costs["capex_investment"],
        "opex_eur_per_y": opex,
        "grid_purchase_eur_per_y": costs["energy"],
        "sale_revenue_eur_per_y": costs["revenue_sale"],
        "incentive_eur_per_y": costs["revenue_incentive"],
        "co2_t_per_y": costs["co2_t"],
        "self_consumption_pct": None
        if pv_total <= 1e-9
        else 100.0 * (pv_total - export_total) / pv_total,
        "shared_energy_mwh_per_y": shared,
        "pv_mwh_per_y": pv_total,
        "hubs": hubs,
    }
    for tech in built.techs:  # each technology's own section (e.g. a sized AI cluster)
        own = tech.design_kpis(g, fl) if tech.kpi_table is not None else None
        if own is not None:
            out.setdefault(tech.kind, {})[tech.hub] = own
    if asis is not None:
        asis_opex = asis["om"] + asis["energy"] - asis["revenue_sale"]
        out["vs_asis"] = {
            "annualised_cost_pct": _pct_change(costs["total"], asis["total"]),
            "opex_pct": _pct_change(opex, asis_opex),
            "co2_pct": _pct_change(costs["co2_t"], asis["co2_t"]),
            "simple_payback_y": None
            if asis_opex - opex - costs["revenue_incentive"] <= 0
            else costs["capex_investment"] / (asis_opex - opex + costs["revenue_incentive"]),
        }
    return out
