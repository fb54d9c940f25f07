"""Generic result extraction: sizes, per-port energy flows, cost and CO2 breakdown."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyomo.environ as pyo

from ems.model.builder import BuiltModel
from ems.model.context import COST_CATEGORIES


def sizes_by_hub(built: BuiltModel) -> dict[str, dict[str, dict[str, float]]]:
    """{hub: {tech name: {quantity: value}}} — reported the same in both modes."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for tech in built.techs:
        sz = tech.sizes()
        if sz:
            out.setdefault(tech.hub, {})[tech.name] = {k: round(float(v), 6) for k, v in sz.items()}
    return out


def flows(built: BuiltModel) -> pd.DataFrame:
    """Long table (hub, carrier, label, period, step, kw): every signed balance term's value."""
    rows: list[tuple[str, str, str, str, int, float]] = []
    for tech in built.techs:
        for carrier, label, term in tech.flows:
            for p, t in built.ctx.grid.index():
                rows.append((tech.hub, carrier, label, p, t, float(pyo.value(term(p, t)))))
    df = pd.DataFrame(rows, columns=["hub", "carrier", "label", "period", "step", "kw"])
    return df.groupby(["hub", "carrier", "label", "period", "step"], as_index=False, sort=False)[
        "kw"
    ].sum()


def balance_residuals(built: BuiltModel) -> float:
    """Largest |Σ terms| over all balances (must be ~0 when balances are hard)."""
    m = built.model
    worst = 0.0
    for h, c in m.B:
        for p, t in m.T:
            body = pyo.value(m.balance[h, c, p, t].body)
            worst = max(worst, abs(body))
    return worst


def cost_breakdown(built: BuiltModel) -> dict[str, float]:
    m = built.model
    out = {cat: float(pyo.value(getattr(m, f"cost_{cat}"))) for cat in COST_CATEGORIES}
    out["total"] = float(pyo.value(m.cost_total))
    out["co2_t"] = float(pyo.value(m.co2_total_t))
    out["capex_investment"] = float(sum(pyo.value(e) for e in built.ctx.capex_eur.values()))
    return out


def series(built: BuiltModel, tech_name: str, var: str) -> pd.Series:
    """A time-indexed variable or param of one tech as a Series indexed (period, step)."""
    blk = built.model.component(built.tech(tech_name).block_name)
    comp: Any = blk.component(var)
    data = {idx: float(pyo.value(comp[idx])) for idx in comp}
    return pd.Series(data).sort_index()
