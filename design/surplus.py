"""The yearly surplus rule of DM 414/2023 per set of plants (TIP only 55 %, TIP + grant 45 %),
computed on the design's annual figures with the ledger's :func:`ems.accounting.rules.surplus_by_set`.

The surplus is the part of the TIP the community must pass to its non-company members or spend
on social purposes; it does not change what the GSE pays, so it is reported, not optimised."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyomo.environ as pyo

from ems.accounting import rules
from ems.model.builder import BuiltModel


def surplus_per_set(built: BuiltModel) -> list[dict[str, Any]]:
    """One row per set of plants; empty without the DM 414 incentive."""
    m = built.model
    if not hasattr(m, "tech_community") or not hasattr(m.tech_community, "shared_plant_kw"):
        return []
    blk = m.tech_community
    g = built.ctx.grid
    grids = {t.hub: t for t in built.techs if t.grid_connection}
    plants = []
    for h in blk.H:
        w = [(k, g.annual_factor(k[0])) for k in g.index()]
        tip_w = [pyo.value(blk.tip_eur_per_kwh[h, k]) for k, _ in w]
        incentivised = sum(
            pyo.value(blk.shared_plant_kw[h, k]) * f
            for (k, f), rate in zip(w, tip_w, strict=True)
            if rate > 0
        )
        injected = sum(pyo.value(grids[h].block.p_export_kw[k]) * f for k, f in w)
        tip = sum(
            pyo.value(blk.shared_plant_kw[h, k] * blk.tip_eur_per_kwh[h, k] * blk.one_minus_f[h])
            * f
            for k, f in w
        )
        plants.append(
            rules.SurplusPlant(
                plant_id=h,
                has_grant=pyo.value(blk.one_minus_f[h]) < 1.0,
                incentivised_shared_wh=int(round(incentivised * 1000)),
                injected_wh=int(round(injected * 1000)),
                tip_eur=Decimal(str(round(tip, 9))),
            )
        )
    return [
        {
            "set": s.name,
            "plants": list(s.plant_ids),
            "threshold_pct": float(s.threshold) * 100,
            "shared_over_injected_pct": float(s.ratio) * 100,
            "tip_eur_per_y": float(s.tip_eur),
            "surplus_eur_per_y": float(s.surplus_eur),
        }
        for s in rules.surplus_by_set(plants)
    ]


def console_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    out = [
        "",
        "Surplus rule per set of plants (DM 414/2023: TIP above the threshold goes to non-company "
        "members or social purposes):",
    ]
    for r in rows:
        out.append(
            f"  {r['set']:<16} plants {', '.join(r['plants'])}: shared/injected "
            f"{r['shared_over_injected_pct']:.1f} % vs {r['threshold_pct']:.0f} %, TIP "
            f"{r['tip_eur_per_y']:,.0f} €/y, surplus {r['surplus_eur_per_y'] + 0.0:,.0f} €/y"
        )
    return out
