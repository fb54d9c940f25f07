"""Per-size options a scenario sets on the design model after it is built.

``integer: false`` on a PV entry or a hub's battery makes that size continuous (any kWp instead
of whole panel steps, any kWh instead of whole modules), as REopt and Calliope size by default.
Only sizes whose operation does not count units are offered: a CHP, heat pump or chiller keeps
whole units (its per-step units-on count is bounded by them).
"""

from __future__ import annotations

import pyomo.environ as pyo

from ems.config.schema import Scenario
from ems.model.builder import BuiltModel


def continuous_tech_names(s: Scenario) -> list[str]:
    """Technology names whose sizes the scenario wants continuous."""
    names = []
    for hub in s.hubs:
        names += [f"{hub.id}_{pv.type}" for pv in hub.pv if not pv.integer]
        if hub.battery is not None and not hub.battery.integer:
            names.append(f"{hub.id}_battery")
    return names


def apply_continuous_sizes(s: Scenario, built: BuiltModel) -> list[str]:
    """Relax the integrality of the chosen size variables; returns their names."""
    prefixes = tuple(f"tech_{n}." for n in continuous_tech_names(s))
    relaxed = []
    if not prefixes:
        return relaxed
    for full, handle in built.ctx.sizes.items():
        if handle.is_variable and full.startswith(prefixes):
            handle.units.domain = pyo.NonNegativeReals
            relaxed.append(full)
    return relaxed


def exclusive_stores_for_verification(techs: list) -> int:
    """The verified dispatch must not charge and discharge a lossy thermal store in the same
    step (its losses would act as a hidden heat sink and the plot shows ±800 kW): switch on
    the store's per-step exclusivity binary. Cheap there — sizes are fixed and days solved one by
    one — and a valid restriction, so the proven gap stays a true gap. Returns how many."""
    return sum(1 for tech in techs if tech.exclusive_for_verification())
