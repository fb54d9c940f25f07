"""Monte Carlo price paths for a sweep's ``monte_carlo`` samples.

A path multiplies the base prices month by month: ``f_m = exp(L + Σ_{k≤m} σ_m ε_k)`` with a level
shock ``L ~ N(0, σ_L)`` and monthly steps ``ε_k ~ N(0, 1)`` (a geometric random walk), drawn for
the purchase and the sale price with correlated shocks. Its median is the base path (factor 1).
Sample ``k`` of seed ``s`` is the same on every machine (``numpy.random.default_rng([s, k])``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ems.tariffs import arera_bands

MC_BUY = "mc_purchase_eur_per_kwh"
MC_SELL = "mc_zonal_price_eur_per_mwh"


def monthly_factors(path: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(purchase, sale) multiplicative factors for months 1..12 of sample ``path['sample']``."""
    rng = np.random.default_rng([int(path["seed"]), int(path["sample"])])
    rho = float(path["sale_correlation"])
    z = rng.standard_normal((13, 2))  # row 0: level shocks, rows 1..12: monthly steps
    buy = z[:, 0]
    sell = rho * z[:, 0] + np.sqrt(max(0.0, 1.0 - rho * rho)) * z[:, 1]
    out = []
    for shocks in (buy, sell):
        log_f = path["level_sigma"] * shocks[0] + path["monthly_sigma"] * np.cumsum(shocks[1:])
        out.append(np.exp(log_f))
    return out[0], out[1]


def apply_to_hourly(
    scenario: dict[str, Any], hourly: pd.DataFrame, path: dict[str, Any]
) -> dict[str, Any]:
    """Add the sample's purchase and sale price columns to an hourly table (index = timestamps)
    and point the scenario's prices at them. Returns the scenario's new ``prices`` mapping."""
    buy_f, sell_f = monthly_factors(path)
    month = hourly.index.month.to_numpy() - 1
    prices = dict(scenario["prices"])
    if prices.get("purchase_bands"):
        bands = prices.pop("purchase_bands")
        f23 = bands.get("F23")
        band_price = {
            "F1": bands["F1"],
            "F2": bands.get("F2", f23),
            "F3": bands.get("F3", f23),
        }
        base_buy = np.array([band_price[b] for b in arera_bands(hourly.index)], dtype=float)
    else:
        base_buy = hourly[prices["purchase_column"]].to_numpy(dtype=float)
    hourly[MC_BUY] = base_buy * buy_f[month]
    prices["purchase_column"] = MC_BUY
    if prices.get("sale_column"):
        base_sell = hourly[prices["sale_column"]].to_numpy(dtype=float)
    else:
        base_sell = np.full(len(hourly), 1000.0 * float(prices.pop("sale_eur_per_kwh")))
        prices["sale_factor"] = 1.0
    hourly[MC_SELL] = base_sell * sell_f[month]
    prices["sale_column"] = MC_SELL
    prices.pop("sale_eur_per_kwh", None)
    return prices


def apply_level_only(
    scenario: dict[str, Any], days: pd.DataFrame, path: dict[str, Any]
) -> dict[str, Any]:
    """Typical days given directly carry no calendar: scale by the path's annual mean factors
    (band prices in the scenario, a purchase price column in ``days``)."""
    buy_f, sell_f = monthly_factors(path)
    prices = dict(scenario["prices"])
    b, s = float(buy_f.mean()), float(sell_f.mean())
    if prices.get("purchase_bands"):
        prices["purchase_bands"] = {
            k: (None if v is None else v * b) for k, v in prices["purchase_bands"].items()
        }
    else:
        days[MC_BUY] = days[prices["purchase_column"]] * b
        prices["purchase_column"] = MC_BUY
    if prices.get("sale_column"):
        prices["sale_factor"] = prices.get("sale_factor", 1.0) * s
    else:
        prices["sale_eur_per_kwh"] = float(prices["sale_eur_per_kwh"]) * s
    return prices
