"""Helpers shared by the multi-energy technologies: fixed-size lookup, time-indexed Params."""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from ems.model.context import BuildContext


def fixed_value(fixed: dict[str, Any] | None, key: str) -> float | None:
    """Units of size ``key`` from a ``sizes.yaml`` entry (None: a decision in design mode)."""
    if fixed is None:
        return None
    return float(fixed.get(key, 0.0))


def indexed_param(
    ctx: BuildContext,
    blk: pyo.Block,
    name: str,
    keys: list[str],
    values: dict[tuple[str, str, int], float],
) -> pyo.Param:
    """A mutable Param indexed (key, period, step): COP per mode, capacity per mode..."""
    blk.add_component(f"{name}_set", pyo.Set(initialize=keys, ordered=True))
    keyset = blk.component(f"{name}_set")
    par = pyo.Param(keyset, ctx.T, initialize=values, mutable=True, within=pyo.Reals)
    blk.add_component(name, par)
    return par


def gas_costs(
    ctx: BuildContext, blk: pyo.Block, fuel_kw: Any, gas_eur_per_kwh: float, gas_t_per_mwh: float
) -> None:
    """Fuel purchase (energy cost) and CO2 of the fuel (seed §3.3, gas 0.205 t/MWh)."""
    blk.gas_eur_per_kwh = pyo.Param(initialize=gas_eur_per_kwh, mutable=True)
    ctx.add_cost(
        "energy", sum(ctx.weight(p) * blk.gas_eur_per_kwh * fuel_kw[p, t] for p, t in ctx.T)
    )
    ctx.add_co2(sum(ctx.weight(p) * gas_t_per_mwh / 1000.0 * fuel_kw[p, t] for p, t in ctx.T))


def set_gas_price(blk: pyo.Block, gas_eur_per_kwh: float, what: str) -> None:
    """Operation: the gas price (€/kWh of fuel) of a block built with :func:`gas_costs`; value only."""
    v = float(gas_eur_per_kwh)
    if not (v == v) or v < 0 or v > 10:
        raise ValueError(
            f"{what}.gas_eur_per_kwh: {gas_eur_per_kwh!r} is not a price in [0, 10] €/kWh"
        )
    blk.gas_eur_per_kwh = v


class GasFired:
    """Mixin of the gas-fired technologies (boiler, CHP): the gas price of the horizon in
    operation, on a block built with :func:`gas_costs`."""

    name: str
    block: pyo.Block | None

    def update(self, gas_eur_per_kwh: float | None = None) -> None:
        """Operation: gas price (€/kWh of fuel) for the horizon; value only."""
        assert self.block is not None, "build the model first"
        if gas_eur_per_kwh is not None:
            set_gas_price(self.block, gas_eur_per_kwh, self.name)

    def take_state(self, inp: Any) -> None:
        self.update(gas_eur_per_kwh=getattr(inp, "gas_eur_per_kwh", None))
