"""BuildContext: the Pyomo model plus the registries technologies write into.

Technologies never touch each other: they register port terms on (hub, carrier) balances, cost
terms by category, emission terms, and size handles. The builder closes the balances and writes
the objective once every technology has run (ARCHITECTURE §6.5).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
import pyomo.environ as pyo

from ems.model.timegrid import TimeGrid

Mode = Literal["design", "operation"]

COST_CATEGORIES = (
    "capex",
    "om",
    "energy",
    "revenue_sale",
    "revenue_incentive",
    "revenue_compute",  # value of an AI cluster's compute (design)
    "penalty",
)


def capital_recovery_factor(rate: float, lifetime_y: float) -> float:
    """CRF = i(1+i)^n / ((1+i)^n − 1); 1/n when i = 0 (seed: eqs. (132)–(142) of [1])."""
    if rate == 0:
        return 1.0 / lifetime_y
    g = (1 + rate) ** lifetime_y
    return rate * g / (g - 1)


@dataclass
class SizeHandle:
    """A size that is a variable in design mode and a mutable parameter in operation mode.

    ``units`` is the integer (or continuous) count; ``expr`` = units × unit_size is what
    constraints use. Capex is registered through the handle, so it vanishes in operation mode.
    """

    name: str
    unit_size: float
    unit: str
    units: Any  # pyo.Var or mutable pyo.Param
    max_units: float
    existing_units: float
    is_variable: bool
    ub_units: float = 0.0  # upper bound: the maximum in design, the installed size in operation
    #: a unit count whose units on are integer per step (CHP): the design's strengthened cuts
    #: hold per value of these counts (their "configuration", design/decomposition.py)
    commitment: bool = False

    @property
    def expr(self) -> Any:
        return self.unit_size * self.units

    @property
    def ub(self) -> float:
        """Upper bound of the size in its unit (kW, kWh, m²…): every big-M derives from it."""
        return self.unit_size * self.ub_units

    def value_units(self) -> float:
        return float(pyo.value(self.units))

    def value(self) -> float:
        return self.unit_size * self.value_units()


@dataclass
class BuildContext:
    model: pyo.ConcreteModel
    mode: Mode
    grid: TimeGrid
    data: pd.DataFrame  # indexed by (period, step); columns are series (loads, yields, prices, ...)
    interest_rate: float = 0.05
    balances: dict[tuple[str, str], list[Any]] = field(default_factory=lambda: defaultdict(list))
    costs: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    co2_t: list[Any] = field(default_factory=list)
    sizes: dict[str, SizeHandle] = field(default_factory=dict)
    capex_eur: dict[str, Any] = field(
        default_factory=dict
    )  # per size: total (not annualised) capex
    asis: bool = False  # AS-IS baseline: every size fixed at its existing value
    shared_uses: dict[tuple[str, str], list[Any]] = field(default_factory=lambda: defaultdict(list))
    limits: dict[tuple[str, str], float] = field(
        default_factory=dict
    )  # e.g. ("roof_m2", hub) -> m2
    # attribution for per-member cash flows (design/cashflow.py): the technology being built
    current_tech: tuple[str, str] | None = None  # (tech name, hub)
    tech_costs: dict[tuple[str, str], list[Any]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (tech name, category) -> cost terms
    size_meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # per size: tech, lifetime

    # ---- time
    @property
    def T(self) -> pyo.Set:
        return self.model.T

    def series(self, column: str) -> dict[tuple[str, int], float]:
        """A data column as {(period, step): value} for Param initialisation."""
        if column not in self.data.columns:
            from ems.errors import DataError

            raise DataError(f"data has no column {column!r} (have: {', '.join(self.data.columns)})")
        col = self.data[column]
        if not col.index.is_unique:
            return {(p, t): float(col.loc[(p, t)]) for p, t in self.grid.index()}
        # one dict instead of a .loc look-up per step (the same values: issue 17, build time)
        at = dict(zip(col.index, col.to_numpy(), strict=True))
        return {(p, t): float(at[(p, t)]) for p, t in self.grid.index()}

    def param(self, block: pyo.Block, name: str, values: dict[tuple[str, int], float]) -> pyo.Param:
        """A mutable time-indexed Param on ``block`` (updated in place in operation mode)."""
        par = pyo.Param(self.T, initialize=values, mutable=True, within=pyo.Reals)
        block.add_component(name, par)
        return par

    def weight(self, p: str) -> float:
        """Annual (design) or horizon (operation) energy per kW held for one step."""
        return self.grid.annual_factor(p)

    # ---- sizes
    def size(
        self,
        block: pyo.Block,
        name: str,
        *,
        unit_size: float,
        unit: str,
        max_units: float,
        existing_units: float = 0.0,
        integer: bool = True,
        capex_eur_per_unit: float = 0.0,
        lifetime_y: float = 20.0,
        om_fraction_per_y: float = 0.0,
        fixed_units: float | None = None,
    ) -> SizeHandle:
        """Declare a size: integer/continuous Var in design mode, mutable Param in operation mode.

        Capex counts only units beyond the existing ones, annualised with the CRF.
        """
        full = f"{block.local_name}.{name}"
        variable = self.mode == "design" and not self.asis and fixed_units is None
        value = 0.0
        if variable:
            lb = existing_units
            ub = max(max_units, existing_units)
            units = pyo.Var(
                domain=pyo.NonNegativeIntegers if integer else pyo.NonNegativeReals, bounds=(lb, ub)
            )
        else:
            value = (
                existing_units
                if self.asis
                else (fixed_units if fixed_units is not None else existing_units)
            )
            units = pyo.Param(initialize=value, mutable=True, within=pyo.NonNegativeReals)
        block.add_component(name, units)
        ub = max(max_units, existing_units) if variable else float(value)
        handle = SizeHandle(full, unit_size, unit, units, max_units, existing_units, variable, ub)
        self.sizes[full] = handle
        if variable and capex_eur_per_unit > 0:
            capex_total = capex_eur_per_unit * (units - existing_units)
            self.capex_eur[full] = capex_total
            crf = capital_recovery_factor(self.interest_rate, lifetime_y)
            self.costs["capex"].append(crf * capex_total)
            self.costs["om"].append(om_fraction_per_y * capex_total)
            tech = self.current_tech or (block.local_name, "")
            self.tech_costs[(tech[0], "capex")].append(crf * capex_total)
            self.tech_costs[(tech[0], "om")].append(om_fraction_per_y * capex_total)
            self.size_meta[full] = {
                "tech": tech[0],
                "hub": tech[1],
                "lifetime_y": lifetime_y,
                "om_fraction_per_y": om_fraction_per_y,
            }
        return handle

    # ---- registries
    def add_balance(self, hub: str, carrier: str, term: Any) -> None:
        """Register a (p, t)-indexed supply (+) or use (−) term, e.g. lambda p, t: +x[p, t]."""
        self.balances[(hub, carrier)].append(term)

    def add_cost(self, category: str, expr: Any) -> None:
        if category not in COST_CATEGORIES:
            raise ValueError(f"unknown cost category {category}")
        self.costs[category].append(expr)
        if self.current_tech is not None:
            self.tech_costs[(self.current_tech[0], category)].append(expr)

    def add_co2(self, expr: Any) -> None:
        self.co2_t.append(expr)

    def add_shared_use(self, key: tuple[str, str], expr: Any) -> None:
        """Use of a shared limited resource (roof area of a hub...); the builder adds Σ ≤ limit."""
        self.shared_uses[key].append(expr)
