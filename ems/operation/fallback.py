"""Rule-based fallback (SPEC §4): what the devices do when there is no usable plan.

No kind is named here. Every operated technology of a hub gives its turns in the hub's merit
order (:meth:`ems.techs.base.Technology.fallback_passes`: a sort key and a rule); the rules run
in key order on one :class:`~ems.techs.base.RuleState` — what is left to cover of the hub's heat,
cooling and net electric load — each taking its share and returning its devices' setpoints.
The shipped technologies order themselves: the demands and solar thermal first (< 10), the
absorption chillers on CHP heat (10), the CHP following the heat (20, largest models first), heat
pumps cooling (30) and heating (40), the electric boilers (45), the boilers (50), the absorption
chillers on other heat (60), the AI cluster's inference floor (70), the EV safe power (80), the
battery on the net load left (90), then the stores, district-heating stations and electric links
held at 0 (95: each hub on its own). Each rule's arithmetic lives in its technology's module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ems.techs.base import Raw, RuleState, Technology

if TYPE_CHECKING:
    from ems.operation.assembly import OperationSetup

#: Passes from this key on are the supply side: heat and cooling to cover are floored at 0 once
#: the demands and the solar-thermal output are in.
SUPPLY_KEY = 10.0


def hub_rules(techs: list[Technology], st: RuleState, from_key: float = 0.0) -> list[Raw]:
    """The rule-based dispatch of one hub (SPEC §4): every technology's passes in merit order
    (demands, then CHP following the heat, heat pumps, boilers, then AI floor, EV safe power and
    the battery on what is left). Heat and cooling to cover are floored at 0 once the demands
    and the solar-thermal output are in (before the first supply pass)."""
    passes = [
        (key, i, rule)
        for i, t in enumerate(x for x in techs if x.hub == st.hub)
        for key, rule in t.fallback_passes()
    ]
    out: list[Raw] = []
    clamped = False
    for key, _i, rule in sorted(passes, key=lambda p: (p[0], p[1])):
        if key[0] < from_key:
            continue
        if not clamped and key[0] >= SUPPLY_KEY:
            st.heat_kw, st.cooling_kw, clamped = max(st.heat_kw, 0.0), max(st.cooling_kw, 0.0), True
        out += rule(st)
    return out


def rule_setpoints(
    setup: OperationSetup, hub: str, heat_kw: float, cooling_kw: float, first: dict[str, float]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The heat-led rule of one hub for a given heat (heating + DHW net of solar thermal) and
    cooling demand: the simulated plant's baseline and safe mode. {(hub, kind, id): values}."""
    installed = frozenset(t.kind for t in setup.installed(hub))
    st = RuleState(hub, heat_kw, cooling_kw, first=first, hub_kinds=installed)
    return {(h, k, d): v for h, k, d, v in hub_rules(setup.operated(), st, from_key=SUPPLY_KEY)}
