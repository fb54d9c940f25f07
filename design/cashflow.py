"""Yearly cash flows of a design over a horizon (default 20 years), for the community and per
member, with NPV, IRR and discounted payback; "TIP only" against "PNRR grant + TIP × (1 − F)".

What a business plan needs and the annualised objective hides (REopt's and HOMER's cash-flow
sheets are the model). Everything is *incremental against the AS-IS case*: the investment is the
new equipment, the savings are AS-IS bills − design bills. Members are the hubs (one POD each);
a plant belongs to the hub where it stands; the incentive reaches the members through the
statute's allocation (the accounting's pots and :func:`ems.accounting.statement.allocate_cents`).

Year 0 holds the investment; years 1…N the operation. Per year:

* **replacements** at k × lifetime < N at today's cost, **salvage** (linear residual value of the
  last purchase) in year N;
* **O&M** = share of Capex per year, escalated by ``om_escalation_per_y``;
* **bill savings** (purchase + gas) and **sale**, escalated by ``energy_escalation_per_y``;
* **PV degradation** ``(1 − d)^(y−1)``: the lost PV energy is taken, hour by hour of the optimal
  dispatch, first from the export and then as extra import (dispatch not re-optimised: a
  conservative first-order estimate), and the shared energy is recomputed as
  min(Σ export, Σ import);
* **TIP** for ``tip_years`` (20) from entry into service (year 1), **valorisation** every year;
* **GSE fees** (DM 106/2024): a fixed part per plant and a variable part per kW, paid while the
  plants are incentivised; the figures are not sourced here (``finance.gse_fee_*``, null = not
  counted, and the console says so), as in ``ems/data/accounting_parameters.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.accounting import rules
from ems.accounting.statement import allocate_cents
from ems.errors import ConfigError
from ems.model.builder import BuiltModel
from ems.techs.registry import REGISTRY

if TYPE_CHECKING:
    from design.study import StudyResult

#: DM 127/2025: PNRR grant for CER plants in towns up to this many inhabitants.
GRANT_MAX_TOWN_POPULATION = 50_000
#: DM 414/2023: maximum eligible cost of a plant for the PNRR grant, €/kW, by power band.
GRANT_MAX_COST_EUR_PER_KW = ((20.0, 1500.0), (200.0, 1200.0), (600.0, 1100.0), (1000.0, 1050.0))
#: technologies whose injection is renewable (TIP-eligible) and whose cost the grant covers
RENEWABLE_KINDS = frozenset(r.kind for r in REGISTRY if r.tech.renewable_plant)
ITEMS = (
    "capex",
    "replacement",
    "salvage",
    "om",
    "bill_savings",
    "sale",
    "compute_value",
    "tip",
    "valorisation",
    "gse_fees",
    "incentive_allocated",
)


def grant_f_factor(grant_pct: float) -> float:
    """F of DM 414/2023 Annex 1 (the ledger's :func:`ems.accounting.rules.grant_factor`)."""
    return float(rules.grant_factor(grant_pct))


def grant_eligible_cost_eur(capex_eur: float, power_kw: float) -> float:
    """Eligible cost of a plant: its Capex up to the DM 414/2023 ceiling for its power."""
    for band_kw, cap in GRANT_MAX_COST_EUR_PER_KW:
        if power_kw <= band_kw:
            return min(capex_eur, cap * power_kw)
    return min(capex_eur, GRANT_MAX_COST_EUR_PER_KW[-1][1] * power_kw)


@dataclass
class Investment:
    size: str
    tech: str
    hub: str
    kind: str
    capex_eur: float
    lifetime_y: float
    om_fraction_per_y: float
    power_kw: float


@dataclass
class Basis:
    """Annual figures of the design and the AS-IS, per hub, from the solved models."""

    hubs: list[str]
    investments: list[Investment]
    energy_design: dict[str, float]  # purchase + gas, €/y
    energy_asis: dict[str, float]
    sale_design: dict[str, float]
    sale_asis: dict[str, float]
    compute_design: dict[str, float]  # value of an AI cluster's compute, €/y
    shared_mwh: float
    incentive_eur_per_mwh: float  # average TIP (after the scenario's F) + valorisation
    valorisation_eur_per_mwh: float
    tip_gross_eur_per_mwh: float  # average TIP before F (the grant variant applies its own F)
    asis_incentive_eur: float
    hourly: pd.DataFrame  # per (period, step): weight and per-hub pv/import/export kW and prices
    f_exempt_share: float  # share of the shared energy withdrawn by F-exempt members
    n_plants: int  # hubs with new renewable plants (one POD each)
    plants_kw: float


@dataclass
class Variant:
    name: str
    label: str
    eligible: bool
    note: str
    flows: pd.DataFrame  # columns: subject, year, ITEMS..., net, discounted, cumulative
    metrics: dict[str, dict[str, float | None]] = field(default_factory=dict)


def _tech_cost(built: BuiltModel, tech: str, cat: str) -> float:
    terms = built.ctx.tech_costs.get((tech, cat), [])
    return float(sum(pyo.value(t) for t in terms)) if terms else 0.0


def _per_hub(built: BuiltModel, hubs: list[str], cats: tuple[str, ...]) -> dict[str, float]:
    out = dict.fromkeys(hubs, 0.0)
    for tech in built.techs:
        if tech.hub in out:
            out[tech.hub] += sum(_tech_cost(built, tech.name, c) for c in cats)
    return out


def _hourly(built: BuiltModel, hubs: list[str]) -> pd.DataFrame:
    g = built.ctx.grid
    idx = pd.MultiIndex.from_tuples(g.index(), names=["period", "step"])
    df = pd.DataFrame(index=idx)
    df["weight"] = [g.annual_factor(p) for p, _t in g.index()]
    for tech in built.techs:
        blk = tech.block
        if tech.grid_connection and tech.hub in hubs:
            h = tech.hub
            df[f"{h}:import"] = [pyo.value(blk.p_import_kw[i]) for i in g.index()]
            df[f"{h}:export"] = [pyo.value(blk.p_export_kw[i]) for i in g.index()]
            df[f"{h}:buy"] = [pyo.value(blk.price_buy[i]) for i in g.index()]
            df[f"{h}:sell"] = [pyo.value(blk.price_sell[i]) for i in g.index()]
    for h in hubs:
        df[f"{h}:pv"] = 0.0
    for tech in built.techs:
        if tech.renewable_plant and tech.hub in hubs:
            for carrier, _label, term in tech.flows:
                if carrier == "electricity":
                    df[f"{tech.hub}:pv"] += [max(pyo.value(term(*i)), 0.0) for i in g.index()]
    return df.fillna(0.0)


def annual_basis(r: StudyResult) -> Basis:
    built, asis = r.design.built, r.asis.built
    hubs = [h.id for h in r.scenario.hubs]
    invest: list[Investment] = []
    by_name = {t.name: t for t in built.techs}
    for full, expr in built.ctx.capex_eur.items():
        meta = built.ctx.size_meta.get(full, {})
        capex = float(pyo.value(expr))
        if capex <= 1e-6:
            continue
        tech = by_name.get(meta.get("tech", ""))
        handle = built.ctx.sizes[full]
        added = handle.value() - handle.unit_size * handle.existing_units
        invest.append(
            Investment(
                full,
                meta.get("tech", full),
                meta.get("hub") or (tech.hub if tech else "community"),
                tech.kind if tech else "",
                capex,
                float(meta.get("lifetime_y", 20.0)),
                float(meta.get("om_fraction_per_y", 0.0)),
                added if handle.unit in ("kW", "kWp") else 0.0,
            )
        )
    shared = 0.0
    prices = r.scenario.prices
    virtual = r.scenario.community == "virtual"
    incentive = prices.incentive_eur_per_mwh if virtual else 0.0
    valorisation = prices.valorisation_eur_per_mwh if virtual else 0.0
    tip_gross = incentive - valorisation
    if hasattr(built.model, "tech_community"):
        g = built.ctx.grid
        blk = built.model.tech_community
        shared = sum(pyo.value(blk.shared_kw[i]) * g.annual_factor(i[0]) for i in g.index()) / 1e3
        if hasattr(blk, "tip_gross_eur") and shared > 1e-9:  # DM 414 rules: hourly rates
            tip_gross = float(pyo.value(blk.tip_gross_eur)) / shared
            valorisation = float(pyo.value(blk.valorisation_eur)) / shared
            incentive = float(pyo.value(blk.tip_eur)) / shared + valorisation
    return Basis(
        hubs=hubs,
        investments=invest,
        energy_design=_per_hub(built, hubs, ("energy",)),
        energy_asis=_per_hub(asis, hubs, ("energy",)),
        sale_design=_per_hub(built, hubs, ("revenue_sale",)),
        sale_asis=_per_hub(asis, hubs, ("revenue_sale",)),
        compute_design=_per_hub(built, hubs, ("revenue_compute",)),
        shared_mwh=shared,
        incentive_eur_per_mwh=incentive,
        valorisation_eur_per_mwh=valorisation,
        tip_gross_eur_per_mwh=tip_gross,
        asis_incentive_eur=r.asis.costs["revenue_incentive"],
        hourly=(hourly := _hourly(built, hubs)),
        f_exempt_share=_f_exempt_share(r, hubs, hourly),
        n_plants=len({i.hub for i in invest if i.kind in RENEWABLE_KINDS}),
        plants_kw=sum(i.power_kw for i in invest if i.kind in RENEWABLE_KINDS),
    )


def _f_exempt_share(r: StudyResult, hubs: list[str], hourly: pd.DataFrame) -> float:
    """Share of the shared energy withdrawn by members exempt from F (the ledger's
    ``F_EXEMPT_KINDS``: households, public, third-sector, religious, environmental bodies)."""
    from ems.accounting.config import F_EXEMPT_KINDS, MemberKind

    kind = {h.id: MemberKind(h.member_kind) for h in r.scenario.hubs}
    withdrawn, _injected = _shared_split(hubs, hourly)
    total = sum(withdrawn.values())
    if total <= 0:
        return 0.0
    return sum(v for h, v in withdrawn.items() if kind[h] in F_EXEMPT_KINDS) / total


def degradation_effect(b: Basis, factor: float) -> tuple[dict[str, float], dict[str, float], float]:
    """PV output × ``factor`` on the optimal dispatch: (extra purchase €/y per hub, lost sale €/y
    per hub, lost shared energy MWh/y). Lost PV goes first out of the export, then into import."""
    df = b.hourly
    w = df["weight"].to_numpy()
    extra_buy, lost_sale = {}, {}
    exp_tot = np.zeros(len(df))
    exp_new = np.zeros(len(df))
    imp_tot = np.zeros(len(df))
    imp_new = np.zeros(len(df))
    for h in b.hubs:
        if f"{h}:import" not in df:
            extra_buy[h] = lost_sale[h] = 0.0
            continue
        lost = df[f"{h}:pv"].to_numpy() * (1.0 - factor)
        exp = df[f"{h}:export"].to_numpy()
        imp = df[f"{h}:import"].to_numpy()
        less_export = np.minimum(exp, lost)
        more_import = lost - less_export
        extra_buy[h] = float(np.sum(w * more_import * df[f"{h}:buy"].to_numpy()))
        lost_sale[h] = float(np.sum(w * less_export * df[f"{h}:sell"].to_numpy()))
        exp_tot += exp
        exp_new += exp - less_export
        imp_tot += imp
        imp_new += imp + more_import
    shared_old = np.minimum(exp_tot, imp_tot)
    shared_new = np.minimum(exp_new, imp_new)
    lost_shared = float(np.sum(w * (shared_old - shared_new))) / 1e3
    return extra_buy, lost_sale, lost_shared


def shared_by_hub(b: Basis) -> tuple[dict[str, float], dict[str, float]]:
    """Each hub's part of the hourly shared energy, kWh/y: (∝ its import, ∝ its export)."""
    return _shared_split(b.hubs, b.hourly)


def _shared_split(
    all_hubs: list[str], df: pd.DataFrame
) -> tuple[dict[str, float], dict[str, float]]:
    w = df["weight"].to_numpy()
    hubs = [h for h in all_hubs if f"{h}:import" in df]
    imp = {h: df[f"{h}:import"].to_numpy() for h in hubs}
    exp = {h: df[f"{h}:export"].to_numpy() for h in hubs}
    imp_sum = sum(imp.values()) if hubs else np.zeros(len(df))
    exp_sum = sum(exp.values()) if hubs else np.zeros(len(df))
    shared = np.minimum(imp_sum, exp_sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        withdrawn = {
            h: float(np.sum(w * np.where(imp_sum > 0, shared * imp[h] / imp_sum, 0.0)))
            for h in hubs
        }
        injected = {
            h: float(np.sum(w * np.where(exp_sum > 0, shared * exp[h] / exp_sum, 0.0)))
            for h in hubs
        }
    return withdrawn, injected


def allocation_keys(r: StudyResult, b: Basis) -> list[tuple[float, dict[str, float]]]:
    """The statute's pots as (share, {hub: key}): by_withdrawn ∝ each hub's share of the hourly
    shared energy (its import / Σ import), by_injected ∝ its export share, fixed/weights quotas."""
    withdrawn, injected = shared_by_hub(b)
    pots = []
    for i, pot in enumerate(r.scenario.finance.allocation):
        if pot.method == "by_withdrawn":
            keys = withdrawn
        elif pot.method == "by_injected":
            keys = injected
        else:
            keys = dict(pot.quotas or {})
            unknown = sorted(set(keys) - set(b.hubs))
            if unknown:
                raise ConfigError(
                    r.scenario.source_file,
                    f"finance.allocation[{i}].quotas",
                    f"unknown hub(s) {', '.join(unknown)} (hubs: {', '.join(b.hubs)})",
                )
        pots.append((pot.share_pct, keys))
    return pots


def _allocate(total_eur: float, pots: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    """Split a yearly amount by the statute, to the cent, with the ledger's largest remainder."""
    cents = int(round(total_eur * 100))
    sign = 1 if cents >= 0 else -1
    pot_cents = allocate_cents(
        abs(cents), {str(i): Decimal(str(s)) for i, (s, _k) in enumerate(pots)}
    )
    out: dict[str, float] = {}
    for i, (_s, keys) in enumerate(pots):
        clean = {h: Decimal(str(round(max(v, 0.0), 9))) for h, v in keys.items()}
        if not clean:
            continue
        for h, c in allocate_cents(pot_cents[str(i)], clean).items():
            out[h] = out.get(h, 0.0) + sign * c / 100.0
    return out


def _replacement_years(lifetime_y: float, horizon: int) -> list[int]:
    step = max(1, int(round(lifetime_y)))
    return list(range(step, horizon, step))


def _salvage_fraction(lifetime_y: float, horizon: int) -> float:
    step = max(1, int(round(lifetime_y)))
    last = max([0, *_replacement_years(lifetime_y, horizon)])
    return max(0.0, (last + step - horizon) / step)


def build_flows(r: StudyResult, b: Basis, grant_pct: float = 0.0) -> pd.DataFrame:
    """Yearly flows per subject (each hub, 'community' for shared infrastructure) and 'total'."""
    fin = r.scenario.finance
    n = fin.horizon_y
    subjects = [*b.hubs, "community"]
    rows: dict[tuple[str, int], dict[str, float]] = {
        (s, y): dict.fromkeys(ITEMS, 0.0) for s in subjects for y in range(n + 1)
    }
    grant_total = 0.0
    for inv in b.investments:
        subj = inv.hub if inv.hub in b.hubs else "community"
        grant = 0.0
        if grant_pct > 0 and inv.kind in RENEWABLE_KINDS:
            grant = grant_pct / 100.0 * grant_eligible_cost_eur(inv.capex_eur, inv.power_kw)
            grant_total += grant
        rows[(subj, 0)]["capex"] -= inv.capex_eur - grant
        for y in _replacement_years(inv.lifetime_y, n):
            rows[(subj, y)]["replacement"] -= inv.capex_eur
        if fin.salvage == "linear":
            rows[(subj, n)]["salvage"] += inv.capex_eur * _salvage_fraction(inv.lifetime_y, n)
        for y in range(1, n + 1):
            rows[(subj, y)]["om"] -= (
                inv.om_fraction_per_y * inv.capex_eur * (1 + fin.om_escalation_per_y) ** (y - 1)
            )
    f = grant_f_factor(grant_pct)
    tip_rate = b.incentive_eur_per_mwh - b.valorisation_eur_per_mwh  # after the scenario's F
    if grant_pct > 0:
        tip_rate = b.tip_gross_eur_per_mwh  # the variant's F replaces the scenario's
    pots = allocation_keys(r, b) if b.shared_mwh > 0 else []
    for y in range(1, n + 1):
        esc = (1 + fin.energy_escalation_per_y) ** (y - 1)
        factor = (1 - fin.pv_degradation_per_y) ** (y - 1)
        extra_buy, lost_sale, lost_shared = degradation_effect(b, factor)
        for h in b.hubs:
            row = rows[(h, y)]
            row["bill_savings"] = (b.energy_asis[h] - b.energy_design[h] - extra_buy[h]) * esc
            row["sale"] = (b.sale_design[h] - lost_sale[h] - b.sale_asis[h]) * esc
            row["compute_value"] = b.compute_design[h]
        shared_wh = int(round(max(b.shared_mwh - lost_shared, 0.0) * 1e6))
        tip = 0.0
        if y <= fin.tip_years and tip_rate > 0:
            # the ledger's rule: E × rate × (1 − F)
            # F does not apply to the energy withdrawn by exempt members (DM 127/2025)
            exempt_wh = int(round(shared_wh * b.f_exempt_share))
            tip = float(
                rules.tip_amount_eur(
                    shared_wh, Decimal(str(tip_rate)), Decimal(str(f)), exempt_wh=exempt_wh
                )
            )
        val = float(rules.valorisation_eur(shared_wh, Decimal(str(b.valorisation_eur_per_mwh))))
        incentive = tip + val
        fees = _fees(fin, b, incentive)
        # the AS-IS incentive (existing plants in a community) is earned in both cases: only the
        # increment counts; AS-IS plants have no grant
        a_inc = b.asis_incentive_eur
        a_tip = a_inc * tip_rate / b.incentive_eur_per_mwh if b.incentive_eur_per_mwh else 0.0
        a_tip = a_tip if y <= fin.tip_years else 0.0
        a_val = a_inc - (a_inc * tip_rate / b.incentive_eur_per_mwh if a_inc else 0.0)
        tip, val = tip - a_tip, val - a_val
        com = rows[("community", y)]
        com["tip"], com["valorisation"], com["gse_fees"] = tip, val, -fees
        distributable = tip + val - fees
        share = _allocate(distributable, pots) if pots else {}
        com["incentive_allocated"] = -sum(share.values())
        for h, v in share.items():
            rows[(h, y)]["incentive_allocated"] += v
    df = pd.DataFrame(
        [{"subject": s, "year": y, **vals} for (s, y), vals in rows.items()],
        columns=["subject", "year", *ITEMS],
    )
    total = df.groupby("year", as_index=False)[list(ITEMS)].sum()
    total.insert(0, "subject", "total")
    df = pd.concat([df, total], ignore_index=True)
    df["net"] = df[list(ITEMS)].sum(axis=1)
    disc = (1 + fin.interest_rate) ** df["year"]
    df["discounted"] = df["net"] / disc
    df["cumulative_discounted"] = df.groupby("subject")["discounted"].cumsum()
    df.attrs["grant_eur"] = grant_total
    return df


def _fees(fin: Any, b: Basis, incentive_eur: float) -> float:
    """GSE fees of a year with incentive: fixed per new plant + variable per kW (DM 106/2024)."""
    if incentive_eur <= 0:
        return 0.0
    fixed = fin.gse_fee_fixed_eur_per_plant_y or 0.0
    variable = fin.gse_fee_variable_eur_per_kw_y or 0.0
    return fixed * b.n_plants + variable * b.plants_kw


def npv(flows: list[float], rate: float) -> float:
    return float(sum(v / (1 + rate) ** y for y, v in enumerate(flows)))


def irr(flows: list[float]) -> float | None:
    """The rate where NPV = 0 (brentq on [−99 %, 1000 %]); None without a sign change."""
    from scipy.optimize import brentq

    if not any(v < 0 for v in flows) or not any(v > 0 for v in flows):
        return None
    lo, hi = -0.99, 10.0
    f_lo, f_hi = npv(flows, lo), npv(flows, hi)
    if f_lo * f_hi > 0:
        return None
    return float(brentq(lambda x: npv(flows, x), lo, hi, xtol=1e-10))


def discounted_payback_y(flows: list[float], rate: float) -> float | None:
    """First (interpolated) year when the cumulative discounted flow turns ≥ 0; None if never."""
    cum = 0.0
    for y, v in enumerate(flows):
        d = v / (1 + rate) ** y
        if cum < 0 <= cum + d and y > 0:
            return y - 1 + (-cum / d if d else 0.0)
        cum += d
    return None if cum < 0 else 0.0


def metrics(df: pd.DataFrame, rate: float) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for subject, sub in df.groupby("subject", sort=False):
        flows = sub.sort_values("year")["net"].tolist()
        invest = -float(sub[sub["year"] == 0]["net"].sum())
        if not any(abs(v) > 0.5 for v in flows):
            continue  # e.g. the community's transfers that net to zero
        out[str(subject)] = {
            "investment_eur": invest,
            "npv_eur": npv(flows, rate),
            "irr_pct": None if (x := irr(flows)) is None else 100 * x,
            "discounted_payback_y": discounted_payback_y(flows, rate) if invest > 0 else None,
        }
    return out


def cash_flow_variants(r: StudyResult) -> list[Variant]:
    """'TIP only', and with ``finance.grant`` also 'PNRR grant + TIP × (1 − F)' side by side."""
    b = annual_basis(r)
    fin = r.scenario.finance
    base = build_flows(r, b)
    out = [Variant("tip_only", "TIP only", True, "", base, metrics(base, fin.interest_rate))]
    if fin.grant is not None:
        g = fin.grant
        pop = g.town_population
        if pop is None:
            eligible, note = True, "town population not stated: eligibility (≤ 50,000) unchecked"
        elif pop <= GRANT_MAX_TOWN_POPULATION:
            eligible, note = True, f"town of {pop:,} inhabitants ≤ 50,000: eligible"
        else:
            eligible, note = False, f"town of {pop:,} inhabitants > 50,000: not eligible"
        flows = build_flows(r, b, g.pct)
        grant_eur = flows.attrs["grant_eur"]
        note += (
            f"; grant {grant_eur:,.0f} € ({g.pct:g} % of the eligible PV cost), "
            f"F = {grant_f_factor(g.pct):.2f}"
            + (
                f", not applied to the {100 * b.f_exempt_share:.0f} % of shared energy withdrawn "
                "by exempt members"
                if b.f_exempt_share > 0
                else ""
            )
        )
        out.append(
            Variant(
                "pnrr_grant",
                f"PNRR {g.pct:g} % grant + TIP × (1 − F)",
                eligible,
                note,
                flows,
                metrics(flows, fin.interest_rate),
            )
        )
    return out


def cashflow_csv(variants: list[Variant]) -> pd.DataFrame:
    frames = []
    for v in variants:
        df = v.flows.copy()
        df.insert(0, "variant", v.name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True).round(2)


def console_lines(variants: list[Variant], fin: Any = None) -> list[str]:
    lines = ["", "Cash flows (incremental vs AS-IS; NPV at the scenario's interest rate):"]
    if fin is not None and (
        fin.gse_fee_fixed_eur_per_plant_y is None or fin.gse_fee_variable_eur_per_kw_y is None
    ):
        lines.append(
            "  GSE fees not counted where not set (finance.gse_fee_fixed_eur_per_plant_y, "
            "gse_fee_variable_eur_per_kw_y: DM 106/2024, from your GSE contract)"
        )
    lines.append(
        f"  {'variant':<34}{'subject':<11}{'invest €':>12}{'NPV €':>13}{'IRR %':>8}{'DPB y':>7}"
    )
    for v in variants:
        for subject, m in v.metrics.items():
            irr_s = "–" if m["irr_pct"] is None else f"{m['irr_pct']:.1f}"
            dpb = m["discounted_payback_y"]
            dpb_s = ("never" if m["investment_eur"] > 0 else "–") if dpb is None else f"{dpb:.1f}"
            lines.append(
                f"  {v.label[:33]:<34}{subject:<11}{m['investment_eur'] + 0.0:>12,.0f}"
                f"{m['npv_eur'] + 0.0:>13,.0f}{irr_s:>8}{dpb_s:>7}"
            )
        if v.note:
            lines.append(f"    {v.note}" + ("" if v.eligible else " (shown for comparison)"))
    return lines


def plot_cashflow(variants: list[Variant], out: Path, title: str) -> Path:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(variants), figsize=(7 * len(variants), 4.2), squeeze=False, sharey=True
    )
    colours = plt.get_cmap("tab10").colors
    for ax, v in zip(axes[0], variants, strict=True):
        tot = v.flows[v.flows["subject"] == "total"].sort_values("year")
        years = tot["year"].to_numpy()
        pos = np.zeros(len(tot))
        neg = np.zeros(len(tot))
        for i, item in enumerate(ITEMS):
            if item == "incentive_allocated":
                continue  # an internal transfer (community → members), zero in the total
            vals = tot[item].to_numpy() / 1e3
            if not np.any(np.abs(vals) > 1e-6):
                continue
            up, down = np.maximum(vals, 0), np.minimum(vals, 0)
            ax.bar(years, up, bottom=pos, color=colours[i % 10], label=item.replace("_", " "))
            ax.bar(years, down, bottom=neg, color=colours[i % 10])
            pos, neg = pos + up, neg + down
        ax.plot(years, tot["cumulative_discounted"] / 1e3, "k-o", ms=3, label="cumulative (disc.)")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_title(v.label + ("" if v.eligible else " — not eligible"), fontsize=9)
        ax.set_xlabel("year")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[0][0].set_ylabel("k€ (incremental vs AS-IS)")
    fig.suptitle(f"{title}: cash flows")
    fig.tight_layout()
    p = out / "cashflow.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def fmt_money(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x + 0.0:,.0f}"


def summary(variants: list[Variant]) -> dict[str, Any]:
    """For results.json: per variant, the metrics per subject."""
    return {
        v.name: {"label": v.label, "eligible": v.eligible, "note": v.note, "metrics": v.metrics}
        for v in variants
    }
