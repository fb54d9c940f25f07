"""Rule-based fallback (SPEC §4): what each device does when there is no usable plan.

- battery: PV self-consumption — charge from the hub's surplus, discharge on its deficit, within
  power and state-of-charge limits;
- EV charge points: the safe power (never above charger or vehicle limits) while energy is owed;
- AI cluster: its inference floor (batch work waits);
- CHP (when a site has one): follow the heat demand — not modelled in operation yet.
"""

from __future__ import annotations


def battery_p_kw(net_kw: float, soc: float, capacity_kwh: float, p_max_kw: float, soc_min: float, soc_max: float,
                 dt_h: float, eta_charge: float = 0.95, eta_discharge: float = 0.95) -> float:
    """Battery power (+ charge, − discharge) for a hub whose net load (load − PV) is ``net_kw``."""
    if capacity_kwh <= 0 or p_max_kw <= 0:
        return 0.0
    e = soc * capacity_kwh
    if net_kw < 0:  # surplus → charge up to soc_max
        room_kw = max(0.0, (soc_max * capacity_kwh - e) / (eta_charge * dt_h))
        return min(-net_kw, p_max_kw, room_kw)
    avail_kw = max(0.0, (e - soc_min * capacity_kwh) * eta_discharge / dt_h)
    return -min(net_kw, p_max_kw, avail_kw)


def ev_p_kw(need_kwh: float, p_point_kw: float, safe_kw: float, p_vehicle_kw: float | None = None) -> float:
    """Safe EV charging power: ``safe_kw`` capped by charger and vehicle while energy is owed."""
    if need_kwh <= 1e-6:
        return 0.0
    return max(0.0, min(safe_kw, p_point_kw, p_vehicle_kw or p_point_kw))


def ai_cap_kw(floor_kw: float) -> float:
    """AI cluster cap: serve inference only."""
    return max(0.0, floor_kw)
