"""The common technology interface (oemof's one-class-per-component, REopt's one file per family).

A technology instance is one device (or one device family) at one hub. The builder calls, in
order, :meth:`declare_sizes`, :meth:`add_operation` and :meth:`add_costs` on a fresh Pyomo block
``model.tech[name]``. A technology only talks to the rest of the model through the context's
registries (balances, costs, CO2, shared limits), so adding a technology touches its own module
and the registry in :mod:`ems.techs.registry`.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable
from typing import Any, ClassVar

import pyomo.environ as pyo

from ems.model.context import BuildContext

Term = Callable[[str, int], Any]


class Technology(ABC):
    kind: ClassVar[str] = "technology"

    def __init__(self, name: str, hub: str) -> None:
        self.name = name
        self.hub = hub
        self.block: pyo.Block | None = None
        self.flows: list[tuple[str, str, Term]] = []  # (carrier, label, signed term) for reports

    # ---- build phases
    def build(self, ctx: BuildContext) -> None:
        blk = pyo.Block()
        ctx.model.add_component(self.block_name, blk)
        self.block = blk
        ctx.current_tech = (self.name, self.hub)
        self.declare_sizes(ctx, blk)
        self.add_operation(ctx, blk)
        self.add_costs(ctx, blk)
        ctx.current_tech = None

    @property
    def block_name(self) -> str:
        return f"tech_{self.name}"

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        """Request size handles with ``ctx.size`` (variables in design, parameters in operation)."""

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        """Variables and constraints over ``ctx.T``; register port terms with :meth:`port`."""

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        """Register operating cost, revenue and CO2 terms (capex comes through the size handles)."""

    # ---- helpers
    def port(
        self, ctx: BuildContext, carrier: str, label: str, term: Term, hub: str | None = None
    ) -> None:
        """Register a signed term on the (hub, carrier) balance: + supplies, − uses."""
        ctx.add_balance(hub or self.hub, carrier, term)
        self.flows.append((carrier, label, term))

    def sizes(self) -> dict[str, float]:
        """Installed sizes in this device's units, for results and ``sizes.yaml``."""
        return {}
