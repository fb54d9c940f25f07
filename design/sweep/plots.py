"""Sweep plots: Pareto front (cost vs CO2) with each point's sizes, tornado chart of the
sensitivity axes, Monte Carlo distribution of the chosen KPI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from design.sweep.spec import Sweep  # noqa: E402

COST = "kpi.annualised_cost_eur_per_y"
CO2 = "kpi.co2_t_per_y"


def pareto_mask(cost: np.ndarray, co2: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """True for points no other point dominates (≤ on both, < on one; minimising both)."""
    n = len(cost)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        better_eq = (cost <= cost[i] + tol) & (co2 <= co2[i] + tol)
        strictly = (cost < cost[i] - tol) | (co2 < co2[i] - tol)
        if np.any(better_eq & strictly):
            keep[i] = False
    return keep


def size_summary(row: pd.Series) -> str:
    """The variant's sizes in one line (``label.sizes``, written by the variant from its
    technologies: 'PV 385 kWp · bat 50 kWh · 6 chargers'); a row cached before that column
    existed: its non-zero sizes summed over hubs by item."""
    text = row.get("label.sizes")
    if isinstance(text, str):
        return text
    other: dict[str, float] = {}
    for col, val in row.items():
        if str(col).startswith("size.") and not pd.isna(val) and val:
            key = str(col).split(".", 2)[2]
            other[key] = other.get(key, 0.0) + val
    return " · ".join(f"{k} {v:.3g}" for k, v in list(other.items())[:4])


def plot_pareto(df: pd.DataFrame, out: Path, title: str) -> Path | None:
    ok = df[(df["status"] == "ok") & (df["group"] == "grid")].drop_duplicates("hash")
    if ok.empty or COST not in ok or CO2 not in ok:
        return None
    cost = ok[COST].to_numpy(dtype=float) / 1000.0
    co2 = ok[CO2].to_numpy(dtype=float)
    front = pareto_mask(cost, co2)
    fig, ax = plt.subplots(figsize=(10, 6.5))
    ax.scatter(cost[~front], co2[~front], c="0.6", s=25, label="dominated variants")
    order = np.argsort(cost[front])
    ax.plot(cost[front][order], co2[front][order], "-o", c="tab:green", label="Pareto front")
    rows = ok[front].iloc[order]
    # labels fanned out to the upper right, one line of offset per point, with a leader line
    for k, ((x, y), (_i, r)) in enumerate(
        zip(zip(cost[front][order], co2[front][order], strict=True), rows.iterrows(), strict=True)
    ):
        ax.annotate(
            f"{r['label']}: {size_summary(r)}",
            (x, y),
            textcoords="offset points",
            xytext=(14, 12 + 22 * (k % 6)),
            fontsize=7,
            arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.6},
        )
    for (x, y), (_i, r) in zip(
        zip(cost[~front], co2[~front], strict=True), ok[~front].iterrows(), strict=True
    ):
        ax.annotate(r["label"], (x, y), textcoords="offset points", xytext=(4, -10), fontsize=6,
                    color="0.4")  # fmt: skip
    asis_cost, asis_co2 = "asis.annualised_cost_eur_per_y", "asis.co2_t_per_y"
    if asis_cost in ok and asis_co2 in ok:
        # the AS-IS point is usually far away: named in the legend, not drawn (it would squash
        # the front into a corner)
        ax.plot(
            [], [], " ",
            label=f"AS-IS: {ok[asis_cost].iloc[0] / 1000:,.1f} k€/y, {ok[asis_co2].iloc[0]:,.1f} t/y",
        )  # fmt: skip
    ax.set_xlabel("annualised cost, k€/y")
    ax.set_ylabel("CO2, t/y")
    ax.set_title(f"{title}: cost vs CO2")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.margins(x=0.35, y=0.45)
    fig.tight_layout()
    p = out / "pareto.png"
    fig.savefig(p, dpi=130)
    plt.close(fig)
    return p


def tornado_table(df: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """Per sensitivity axis: the KPI at its lowest and highest value, vs the base."""
    col = kpi if kpi in df else f"kpi.{kpi}"
    base = df[(df["group"] == "base") & (df["status"] == "ok")]
    sens = df[(df["group"] == "sensitivity") & (df["status"] == "ok")]
    if base.empty or sens.empty or col not in df:
        return pd.DataFrame()
    b = float(base[col].iloc[0])
    rows = []
    for ax_col in [c for c in sens.columns if c.startswith("axis.")]:
        sub = sens[sens[ax_col].notna()]
        if sub.empty:
            continue
        values = sub[col].astype(float)
        lo_i, hi_i = values.idxmin(), values.idxmax()
        rows.append(
            {
                "axis": ax_col.removeprefix("axis."),
                "base": b,
                "low": float(values.min()),
                "low_at": sub.loc[lo_i, ax_col],
                "high": float(values.max()),
                "high_at": sub.loc[hi_i, ax_col],
                "swing": float(values.max() - values.min()),
            }
        )
    return pd.DataFrame(rows).sort_values("swing") if rows else pd.DataFrame()


def plot_tornado(df: pd.DataFrame, kpi: str, out: Path, title: str) -> Path | None:
    t = tornado_table(df, kpi)
    if t.empty:
        return None
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.6 * len(t)))
    y = np.arange(len(t))
    b = float(t["base"].iloc[0])
    ax.barh(y, t["low"] - b, left=b, color="tab:blue", label="lower KPI")
    ax.barh(y, t["high"] - b, left=b, color="tab:orange", alpha=0.8, label="higher KPI")
    for yi, (_i, r) in zip(y, t.iterrows(), strict=True):
        if r["swing"] <= 1e-9 * max(1.0, abs(b)):
            ax.annotate("no change", (b, yi), ha="left", va="center", fontsize=7,
                        xytext=(3, 0), textcoords="offset points")  # fmt: skip
            continue
        ax.annotate(f"{r['low_at']}", (r["low"], yi), ha="right", va="center", fontsize=7,
                    xytext=(-3, 0), textcoords="offset points")  # fmt: skip
        ax.annotate(f"{r['high_at']}", (r["high"], yi), ha="left", va="center", fontsize=7,
                    xytext=(3, 0), textcoords="offset points")  # fmt: skip
    ax.axvline(b, c="k", lw=1)
    ax.set_yticks(y, t["axis"])
    ax.set_xlabel(f"{kpi} (base {b:,.0f})")
    ax.set_title(f"{title}: sensitivity")
    ax.margins(x=0.15)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    p = out / "tornado.png"
    fig.savefig(p, dpi=130)
    plt.close(fig)
    return p


def mc_stats(values: np.ndarray) -> dict[str, float]:
    return {
        "n": float(len(values)),
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "p10": float(np.percentile(values, 10)),
        "p50": float(np.percentile(values, 50)),
        "p90": float(np.percentile(values, 90)),
    }


def plot_monte_carlo(df: pd.DataFrame, kpi: str, out: Path, title: str) -> Path | None:
    col = kpi if kpi in df else f"kpi.{kpi}"
    mc = df[(df["group"] == "monte_carlo") & (df["status"] == "ok")]
    if mc.empty or col not in mc:
        return None
    v = mc[col].astype(float).to_numpy()
    s = mc_stats(v)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(v, bins=max(5, min(40, len(v) // 2)), color="tab:blue", alpha=0.75)
    for name, ls in (("p10", ":"), ("p50", "-"), ("p90", ":")):
        ax.axvline(s[name], c="k", ls=ls, lw=1)
        ax.annotate(name.upper(), (s[name], ax.get_ylim()[1] * 0.95), fontsize=7, ha="center")
    ax.set_xlabel(kpi)
    ax.set_ylabel("samples")
    ax.set_title(
        f"{title}: {len(v)} price paths, mean {s['mean']:,.0f}, P10–P90 "
        f"{s['p10']:,.0f}–{s['p90']:,.0f}"
    )
    fig.tight_layout()
    p = out / "monte_carlo.png"
    fig.savefig(p, dpi=130)
    plt.close(fig)
    return p


def write_plots(df: pd.DataFrame, sweep: Sweep, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    kpi = sweep.spec.kpi
    paths: list[Any] = [
        plot_pareto(df, out, sweep.name),
        plot_tornado(df, kpi, out, sweep.name),
        plot_monte_carlo(df, kpi, out, sweep.name),
    ]
    return [p for p in paths if p is not None]
