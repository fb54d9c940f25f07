"""Rule-based fallback (SPEC §4): what each device does when there is no usable plan.

- battery: PV self-consumption — charge from the hub's surplus, discharge on its deficit, within
  power and state-of-charge limits;
- EV charge points: the safe power (never above charger or vehicle limits) while energy is owed;
- AI cluster: its inference floor (batch work waits);
- CHP: follow the heat demand (:func:`thermal_rule`): enough units on to cover the hub's heat
  demand within their min/max load, largest units first; heat pumps cover what the CHP does not,
  the boilers the rest; absorption chillers run on CHP heat first, heat pumps cool the rest;
  no district-heating or electric-link exchange (each hub on its own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def ev_p_kw(
    need_kwh: float, p_point_kw: float, safe_kw: float, p_vehicle_kw: float | None = None
) -> float:
    """Safe EV charging power: ``safe_kw`` capped by charger and vehicle while energy is owed."""
    if need_kwh <= 1e-6:
        return 0.0
    return max(0.0, min(safe_kw, p_point_kw, p_vehicle_kw or p_point_kw))


def ai_cap_kw(floor_kw: float) -> float:
    """AI cluster cap: serve inference only."""
    return max(0.0, floor_kw)


# --------------------------------------------------------------------------- thermal (heat-led)
@dataclass(frozen=True)
class ChpUnits:
    """One CHP model at a hub: n identical units, fuel = a·P + b per unit on, heat = η_th·fuel."""

    model: str
    n_units: int
    p_el_kw: float
    min_load: float
    a_fuel: float
    b_fuel_kw: float
    eta_th: float

    def heat_kw(self, p_el_kw: float, units: float = 1.0) -> float:
        return self.eta_th * (self.a_fuel * p_el_kw + self.b_fuel_kw * units)

    def p_for_heat(self, heat_kw: float) -> float:
        """Electric power of one unit that makes ``heat_kw`` of heat, within its load range."""
        p = (heat_kw / self.eta_th - self.b_fuel_kw) / self.a_fuel
        return min(max(p, self.min_load * self.p_el_kw), self.p_el_kw)


@dataclass(frozen=True)
class HpUnits:
    """One heat-pump model at a hub at the current outdoor temperature: n units, one mode each."""

    model: str
    n_units: int
    modes: tuple[str, ...]
    cop_heat: float = 3.0
    heat_kw: float = 0.0  # capacity per unit (heating)
    eer: float = 3.0
    cool_kw: float = 0.0  # capacity per unit (cooling)


@dataclass
class ThermalRulePlan:
    chp: dict[str, tuple[int, float, float]] = field(
        default_factory=dict
    )  # model -> (units on, P_el kW, heat kW)
    hp: list[tuple[str, int, str, float, float]] = field(
        default_factory=list
    )  # (model, unit 1.., mode, P_el kW, output kW)
    boiler: dict[str, float] = field(default_factory=dict)  # model -> heat kW
    chiller: dict[str, float] = field(default_factory=dict)  # model -> cooling kW
    unmet_heat_kw: float = 0.0
    unmet_cooling_kw: float = 0.0


def chp_heat_led(
    heat_kw: float, models: list[ChpUnits]
) -> tuple[dict[str, tuple[int, float, float]], float]:
    """Units on enough to cover ``heat_kw`` within min/max load, largest models first; a unit is
    started only if the heat left is at least its minimum-load heat (no heat is dumped). Returns
    {model: (units on, P_el, heat)} and the heat left uncovered."""
    left = max(float(heat_kw), 0.0)
    out: dict[str, tuple[int, float, float]] = {m.model: (0, 0.0, 0.0) for m in models}
    for m in sorted(models, key=lambda m: -m.p_el_kw):
        q_min, q_max = m.heat_kw(m.min_load * m.p_el_kw), m.heat_kw(m.p_el_kw)
        units, p_tot, q_tot = 0, 0.0, 0.0
        for _ in range(max(int(m.n_units), 0)):
            if left < q_min - 1e-9:
                break
            p = m.p_for_heat(min(left, q_max))
            q = m.heat_kw(p)
            units, p_tot, q_tot, left = units + 1, p_tot + p, q_tot + q, max(left - q, 0.0)
        out[m.model] = (units, p_tot, q_tot)
    return out, left


def _hp_units(
    plan: ThermalRulePlan, hps: list[HpUnits], free: dict[str, int], mode: str, left_kw: float
) -> float:
    """Give ``mode`` (cooling or heating) whole heat-pump units from those still ``free`` until
    ``left_kw`` is covered; appends (model, unit, mode, p_el_kw, q_kw) to ``plan.hp``; returns
    what is left."""
    for hp in hps:
        q_unit, eff = (hp.cool_kw, hp.eer) if mode == "cooling" else (hp.heat_kw, hp.cop_heat)
        if mode not in hp.modes or q_unit <= 0 or left_kw <= 1e-9:
            continue
        for _ in range(min(free[hp.model], math.ceil(left_kw / q_unit - 1e-9))):
            q = min(left_kw, q_unit)
            plan.hp.append((hp.model, hp.n_units - free[hp.model] + 1, mode, q / eff, q))
            free[hp.model] -= 1
            left_kw -= q
    return left_kw


def thermal_rule(
    heat_kw: float,
    cooling_kw: float,
    chps: list[ChpUnits],
    hps: list[HpUnits],
    boilers: list[tuple[str, float]],
    chillers: list[tuple[str, float, float]],
) -> ThermalRulePlan:
    """The rule-based thermal dispatch of one hub (SPEC §4 "CHP following heat demand").

    ``heat_kw``: heating + DHW demand net of solar thermal; ``cooling_kw``: cooling demand;
    ``boilers``: (model, capacity kW); ``chillers``: (model, capacity kWc, COP_th). With a CHP at
    the hub the absorption chillers run first (their feed is added to the heat the CHP follows);
    heat pumps cover the cooling left, then the heat the CHP leaves; boilers the rest."""
    plan = ThermalRulePlan()
    cooling_left = max(float(cooling_kw), 0.0)
    feed = 0.0
    if chps:
        for model, cap, cop in chillers:
            c = min(cooling_left, cap)
            plan.chiller[model] = c
            cooling_left -= c
            feed += c / cop
    chp, heat_left = chp_heat_led(max(heat_kw, 0.0) + feed, chps)
    plan.chp = chp
    # heat pumps: cooling first (comfort and the chillers' backup), then heating
    free = {hp.model: hp.n_units for hp in hps}
    cooling_left = _hp_units(plan, hps, free, "cooling", cooling_left)
    heat_left = _hp_units(plan, hps, free, "heating", heat_left)
    for model, cap in boilers:
        q = min(heat_left, cap)
        plan.boiler[model] = q
        heat_left -= q
    if (
        not chps
    ):  # chillers without a CHP: what the heat pumps could not cool, on boiler/network heat
        for model, cap, _cop in chillers:
            c = min(cooling_left, cap)
            plan.chiller[model] = c
            cooling_left -= c
    plan.unmet_heat_kw, plan.unmet_cooling_kw = max(heat_left, 0.0), max(cooling_left, 0.0)
    return plan
