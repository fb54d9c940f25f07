"""EV fleet of a hub and its chargers (seed §3.2.5; constraints (100)–(121) of [1]).

Chargers: integer count per catalogue type (dumb / V1G / V2G, each with its power). While
present (``arrival_h``–``departure_h``) a vehicle may be plugged into one charger (binary
``plug[k,v,t]``); it plugs in at most once a day (seed §5.2.1: one contiguous session, binary
``plug_start``); at every step the vehicles plugged into a type are at most the chargers of that
type, so vehicles with long stays can share one charger in turn. The vehicle must leave with the
energy it needs. A dumb charger delivers full power in every plugged step but the last (then the
vehicle unplugs); V1G modulates 0..P; V2G also discharges down to a floor. Above ``taper_soc``
the vehicle's acceptance through V1G/V2G falls linearly to zero at full charge.

AS-IS: no chargers to size; vehicles charge at their own full power on arrival (a plain socket).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyomo.environ as pyo

from ems.config.schema import ChargerSpec, VehicleSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs.base import Technology


@dataclass(frozen=True)
class ChargerOption:
    key: str
    spec: ChargerSpec
    max_units: int
    existing_units: int = 0
    fixed_units: int | None = None


def presence_fraction(v: VehicleSpec, hour0: float, dt_h: float) -> float:
    """Share of the step [hour0, hour0+dt) during which the vehicle is plugged in."""
    lo, hi = max(v.arrival_h, hour0), min(v.departure_h, hour0 + dt_h)
    return max(0.0, hi - lo) / dt_h


def dumb_profile(
    v: VehicleSpec,
    p_charger_kw: float,
    eta: float,
    hours: list[float],
    dt_h: float,
    need_kwh: float,
) -> list[float]:
    """Grid-side power of full-power charging from arrival until ``need_kwh`` is stored."""
    p_max = min(v.p_max_kw, p_charger_kw)
    e = v.soc_arrival * v.battery_kwh
    target = e + need_kwh
    out: list[float] = []
    for h in hours:
        f = presence_fraction(v, h, dt_h)
        if f <= 0 or e >= target - 1e-9:
            out.append(0.0)
            continue
        taper = _taper_limit(v, e)
        p = min(p_max * f, taper, (target - e) / (eta * dt_h))
        e += eta * p * dt_h
        out.append(p)
    return out


def _taper_limit(v: VehicleSpec, e_kwh: float) -> float:
    if v.taper_soc >= 1.0:
        return v.p_max_kw
    full = v.battery_kwh
    return max(0.0, v.p_max_kw * (full - e_kwh) / (full * (1.0 - v.taper_soc)))


@dataclass
class _Fleet:
    """Index sets and data of one build of the fleet (shared by the build steps)."""

    g: Any
    V: list[str]
    veh: dict[str, VehicleSpec]
    hours: list[float]
    pres: dict[tuple[str, str, int], float]
    need: dict[tuple[str, str], float]
    K: list[str]
    opt: dict[str, ChargerOption]
    smart: list[str]
    dumb: list[str]
    v2g: list[str]
    p_cap: dict[tuple[str, str], float]
    last: int


class EvFleet(Technology):
    kind = "ev_fleet"
    summary_label = "charger"

    def __init__(
        self, name: str, hub: str, vehicles: list[VehicleSpec], chargers: list[ChargerOption]
    ) -> None:
        super().__init__(name, hub)
        self.vehicles = vehicles
        self.options = chargers
        self.handles: dict[str, SizeHandle] = {}

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        if ctx.asis:
            return
        for o in self.options:
            self.handles[o.key] = ctx.size(
                blk,
                f"n_{o.key}",
                unit_size=1.0,
                unit="units",
                max_units=o.max_units,
                existing_units=o.existing_units,
                capex_eur_per_unit=o.spec.capex_eur_per_unit,
                lifetime_y=o.spec.lifetime_y,
                om_fraction_per_y=o.spec.om_fraction_per_y,
                fixed_units=o.fixed_units,
            )

    def _need(self, ctx: BuildContext, v: VehicleSpec, p: str) -> float:
        present = v.days == "all" or ctx.grid.is_weekday(p)
        return v.need_kwh_per_day if present else 0.0

    def _declare_presence(self, ctx: BuildContext, blk: pyo.Block) -> _Fleet:
        g = ctx.grid
        V = [v.name for v in self.vehicles]
        veh = {v.name: v for v in self.vehicles}
        hours = [g.hour_of(t) for t in g.steps]
        pres = {
            (v.name, p, t): (
                presence_fraction(v, hours[t], g.dt_h) if self._need(ctx, v, p) > 0 else 0.0
            )
            for v in self.vehicles
            for p in g.periods
            for t in g.steps
        }
        need = {(v.name, p): self._need(ctx, v, p) for v in self.vehicles for p in g.periods}
        blk.V = pyo.Set(initialize=V, ordered=True)
        blk.VT = pyo.Set(
            initialize=[(v, p, t) for v in V for p, t in g.index()], dimen=3, ordered=True
        )
        blk.present = pyo.Param(blk.VT, initialize=pres, mutable=True)
        blk.need_kwh = pyo.Param(blk.V, ctx.model.P, initialize=need, mutable=True)
        blk.e_arrival_kwh = pyo.Param(
            blk.V,
            initialize={v.name: v.soc_arrival * v.battery_kwh for v in self.vehicles},
            mutable=True,
        )

        K = [o.key for o in self.options]
        opt = {o.key: o for o in self.options}
        smart = [k for k in K if opt[k].spec.mode != "dumb"]
        dumb = [k for k in K if opt[k].spec.mode == "dumb"]
        v2g = [k for k in K if opt[k].spec.mode == "v2g"]
        p_cap = {(k, v.name): min(opt[k].spec.p_kw, v.p_max_kw) for k in K for v in self.vehicles}
        last = g.n_steps - 1

        return _Fleet(g, V, veh, hours, pres, need, K, opt, smart, dumb, v2g, p_cap, last)

    def _asis_profile(self, ctx: BuildContext, blk: pyo.Block, f: _Fleet) -> None:
        """AS-IS: vehicles charge at their own full power on arrival (a plain socket)."""
        g, V, hours, need = f.g, f.V, f.hours, f.need
        prof = {}
        for v in self.vehicles:
            for p in g.periods:
                col = (
                    dumb_profile(v, v.p_max_kw, 1.0, hours, g.dt_h, need[(v.name, p)])
                    if need[(v.name, p)] > 0
                    else [0.0] * g.n_steps
                )
                for t in g.steps:
                    prof[(v.name, p, t)] = col[t]
        blk.p_kw = pyo.Param(blk.VT, initialize=prof, mutable=True)
        self.port(
            ctx, "electricity", "EV charging", lambda p, t: -sum(blk.p_kw[v, p, t] for v in V)
        )
        self._check_feasible(ctx, prof, need)

    def _plugging(self, ctx: BuildContext, blk: pyo.Block, f: _Fleet) -> None:
        """Which vehicle is plugged into which charger type, once a day, within the chargers."""
        g, V, pres, K, opt = f.g, f.V, f.pres, f.K, f.opt
        blk.K = pyo.Set(initialize=K, ordered=True)
        blk.v2g_K = pyo.Set(initialize=f.v2g, ordered=True)
        # plug[k,v,p,t]: vehicle v is plugged into a charger of type k (zero where it is absent)
        blk.plug = pyo.Var(
            blk.K,
            blk.VT,
            domain=pyo.Binary,
            bounds=lambda b, k, v, p, t: (0, 1 if pres[(v, p, t)] > 0 else 0),
        )
        first = {
            (v, p): min((t for t in g.steps if pres[(v, p, t)] > 0), default=-1)
            for v in V
            for p in g.periods
        }

        def start_ub(b: pyo.Block, k: str, v: str, p: str, t: int) -> tuple[int, int]:
            if pres[(v, p, t)] <= 0:
                return (0, 0)
            # a dumb charger starts when the driver plugs in on arrival; smart ones may wait
            return (0, 1 if opt[k].spec.mode != "dumb" or t == first[(v, p)] else 0)

        blk.plug_start = pyo.Var(blk.K, blk.VT, domain=pyo.Binary, bounds=start_ub)
        blk.start_def = pyo.Constraint(
            blk.K,
            blk.VT,
            rule=lambda b, k, v, p, t: (
                b.plug_start[k, v, p, t]
                >= b.plug[k, v, p, t] - (b.plug[k, v, p, t - 1] if t > 0 else 0)
                if pres[(v, p, t)] > 0
                else pyo.Constraint.Skip
            ),
        )
        # a vehicle plugs in at most once a day, on one charger (seed §5.2.1)
        blk.one_plug_in = pyo.Constraint(
            blk.V,
            ctx.model.P,
            rule=lambda b, v, p: sum(b.plug_start[k, v, p, t] for k in K for t in g.steps) <= 1,
        )
        blk.one_charger = pyo.Constraint(
            blk.VT,
            rule=lambda b, v, p, t: (
                sum(b.plug[k, v, p, t] for k in K) <= 1
                if pres[(v, p, t)] > 0
                else pyo.Constraint.Skip
            ),
        )
        # plugged vehicles ≤ installed chargers of each type
        blk.plugs = pyo.Constraint(
            blk.K,
            ctx.T,
            rule=lambda b, k, p, t: (
                sum(b.plug[k, v, p, t] for v in V if pres[(v, p, t)] > 0) <= self.handles[k].units
                if any(pres[(v, p, t)] > 0 for v in V)
                else pyo.Constraint.Skip
            ),
        )

    def _power(self, ctx: BuildContext, blk: pyo.Block, f: _Fleet) -> None:
        """Charging (and V2G discharging) power while plugged; dumb chargers at full power."""
        pres, dumb, p_cap, last = f.pres, f.dumb, f.p_cap, f.last
        blk.p_charge_kw = pyo.Var(
            blk.K,
            blk.VT,
            domain=pyo.NonNegativeReals,
            bounds=lambda b, k, v, p, t: (0, p_cap[(k, v)] * pres[(v, p, t)]),
        )
        blk.p_discharge_kw = pyo.Var(
            blk.v2g_K,
            blk.VT,
            domain=pyo.NonNegativeReals,
            bounds=lambda b, k, v, p, t: (0, p_cap[(k, v)] * pres[(v, p, t)]),
        )
        blk.charge_plugged = pyo.Constraint(
            blk.K,
            blk.VT,
            rule=lambda b, k, v, p, t: (
                b.p_charge_kw[k, v, p, t] <= p_cap[(k, v)] * b.present[v, p, t] * b.plug[k, v, p, t]
                if pres[(v, p, t)] > 0
                else pyo.Constraint.Skip
            ),
        )
        blk.discharge_plugged = pyo.Constraint(
            blk.v2g_K,
            blk.VT,
            rule=lambda b, k, v, p, t: (
                b.p_discharge_kw[k, v, p, t]
                <= p_cap[(k, v)] * b.present[v, p, t] * b.plug[k, v, p, t]
                if pres[(v, p, t)] > 0
                else pyo.Constraint.Skip
            ),
        )
        # dumb: full power in every plugged step but the last of the session (then it unplugs)
        blk.dumb_full_power = pyo.Constraint(
            [(k, v, p, t) for k in dumb for v, p, t in blk.VT if t < last and pres[(v, p, t)] > 0],
            rule=lambda b, k, v, p, t: (
                b.p_charge_kw[k, v, p, t]
                >= p_cap[(k, v)]
                * b.present[v, p, t]
                * (b.plug[k, v, p, t] + b.plug[k, v, p, t + 1] - 1)
            ),
        )

    def _energy(self, ctx: BuildContext, blk: pyo.Block, f: _Fleet) -> None:
        """The vehicles' energy: balance, leave with the need, V2G floor, CC-CV taper."""
        g, veh, pres, last = f.g, f.veh, f.pres, f.last
        K, opt, smart, v2g = f.K, f.opt, f.smart, f.v2g
        eta = {k: opt[k].spec.eta for k in K}
        cap = {v.name: v.battery_kwh for v in self.vehicles}
        floor = {v.name: v.v2g_floor_soc * v.battery_kwh for v in self.vehicles}
        blk.e_kwh = pyo.Var(
            blk.VT, domain=pyo.NonNegativeReals, bounds=lambda b, v, p, t: (0, cap[v])
        )

        def e_before(b: pyo.Block, v: str, p: str, t: int):
            return b.e_arrival_kwh[v] if t == 0 else b.e_kwh[v, p, t - 1]

        def stored(b: pyo.Block, v: str, p: str, t: int):
            e = sum(eta[k] * b.p_charge_kw[k, v, p, t] for k in K) - sum(
                b.p_discharge_kw[k, v, p, t] / eta[k] for k in v2g
            )
            return e * g.dt_h

        blk.soc_balance = pyo.Constraint(
            blk.VT,
            rule=lambda b, v, p, t: b.e_kwh[v, p, t] == e_before(b, v, p, t) + stored(b, v, p, t),
        )
        # design (cyclic typical days): the vehicle takes exactly its daily energy, since a surplus
        # could not be carried to the next day; operation: at least the requested energy
        if g.cyclic:
            blk.leave_charged = pyo.Constraint(
                blk.V,
                ctx.model.P,
                rule=lambda b, v, p: b.e_kwh[v, p, last] == b.e_arrival_kwh[v] + b.need_kwh[v, p],
            )
        else:
            blk.leave_charged = pyo.Constraint(
                blk.V,
                ctx.model.P,
                rule=lambda b, v, p: b.e_kwh[v, p, last] >= b.e_arrival_kwh[v] + b.need_kwh[v, p],
            )
        blk.v2g_floor = pyo.Constraint(
            blk.VT,
            rule=lambda b, v, p, t: (
                b.e_kwh[v, p, t] >= floor[v] if v2g and pres[(v, p, t)] > 0 else pyo.Constraint.Skip
            ),
        )
        # acceptance falls above taper_soc (linear in the energy at the start of the step);
        # dumb chargers are not modulated, so the taper applies to V1G/V2G power only
        blk.taper = pyo.Constraint(
            blk.VT,
            rule=lambda b, v, p, t: (
                sum(b.p_charge_kw[k, v, p, t] for k in smart)
                <= veh[v].p_max_kw
                * (cap[v] - e_before(b, v, p, t))
                / (cap[v] * (1 - veh[v].taper_soc))
                if smart and pres[(v, p, t)] > 0 and veh[v].taper_soc < 1
                else pyo.Constraint.Skip
            ),
        )

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        """Presence and needs as Params; in the AS-IS plant a fixed full-power profile, else
        plugging (100)–(106), charging power (107)–(112) and the vehicles' energy (113)–(121)."""
        f = self._declare_presence(ctx, blk)
        if ctx.asis:
            self._asis_profile(ctx, blk, f)
            return
        self._plugging(ctx, blk, f)
        self._power(ctx, blk, f)
        self._energy(ctx, blk, f)
        K, V, v2g = f.K, f.V, f.v2g

        def grid_side(p: str, t: int):
            total = sum(blk.p_charge_kw[k, v, p, t] for k in K for v in V)
            return -(total - sum(blk.p_discharge_kw[k, v, p, t] for k in v2g for v in V))

        self.port(ctx, "electricity", "EV charging", grid_side)

    def update(
        self,
        need_kwh: dict[str, float] | None = None,
        e_arrival_kwh: dict[str, float] | None = None,
    ) -> None:
        """Set per-vehicle needs (all periods) and arrival energies; values only. Presence windows
        are part of this model's structure (binaries exist only where a vehicle can be present):
        operation mode uses :class:`ems.techs.ev_charge_points.EvChargePoints` for live sessions."""
        blk = self.block
        assert blk is not None, "build the model first"
        for v, e in (need_kwh or {}).items():
            for name, p in list(blk.need_kwh.keys()):
                if name == v:
                    blk.need_kwh[name, p] = max(float(e), 0.0)
        for v, e in (e_arrival_kwh or {}).items():
            blk.e_arrival_kwh[v] = max(float(e), 0.0)

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        """Chargers per type of the hub, and which vehicle used which (informative)."""
        if not hub.vehicles:
            return {}
        return {"chargers": tuple(ch.type for ch in hub.chargers), "vehicle_charger": None}

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        if not hub.vehicles:
            return []
        fixed = a.fixed(hub.id, "chargers")
        options = []
        for ch in hub.chargers:
            spec: ChargerSpec = a.catalogue.get(ch.type, ChargerSpec, "chargers")
            units = None if fixed is None else int(fixed.get(ch.type, 0))
            options.append(ChargerOption(ch.type, spec, ch.max_units, ch.existing_units, units))
        return [cls(f"{hub.id}_ev", hub.id, list(hub.vehicles), options)]

    def size_rows(self) -> list[dict[str, Any]]:
        """One row per charger type (none in the AS-IS plant)."""
        out = []
        for o in self.options:
            if o.key in self.handles:
                item = f"charger {o.spec.mode} {o.spec.p_kw:g} kW"  # not the key: "v1g 7 4kw"
                row = self.size_row(item, "units", 0.0, o.max_units)
                out.append({**row, "key": o.key, "installed": self.handles[o.key].value_units()})
        return out

    def size_entry(self) -> dict[str, Any]:
        """Chargers per type and which vehicle uses which charger."""
        return {
            "chargers": {k: int(round(h.value_units())) for k, h in self.handles.items()},
            "vehicle_charger": self.assignment(),
        }

    def bound_kw(self, role: str) -> float:
        """Flexible use: every charger at full power (the installed ones in operation)."""
        if role != "el_flex":
            return 0.0
        return sum(
            (o.max_units if o.fixed_units is None else o.fixed_units) * o.spec.p_kw
            for o in self.options
        )

    def generation_terms(self) -> list | None:
        return None  # vehicles could give back what they took (V2G)

    def for_operation(
        self, site: Any, hub_sizes: dict[str, Any], cat: Any, hub_spec: Any
    ) -> Technology | None:
        """Operation swaps the daily vehicle schedule for live charge points, one per installed
        charger (:class:`ems.techs.ev_charge_points.EvChargePoints`: the same charger limits and
        efficiency, sessions as Params instead of scheduled vehicles)."""
        from ems.techs.ev_charge_points import EvChargePoints, charge_points

        pts = charge_points(hub_sizes, cat, hub_spec.chargers)
        if not pts:
            return None
        return EvChargePoints(
            f"{self.hub}_ev",
            self.hub,
            pts,
            short_penalty_eur_per_kwh=site.ev_short_penalty_eur_per_kwh,
            safe_kw=site.ev_safe_kw,
        )

    def _check_feasible(self, ctx: BuildContext, prof: dict, need: dict) -> None:
        for v in self.vehicles:
            for p in ctx.grid.periods:
                got = sum(prof[(v.name, p, t)] for t in ctx.grid.steps) * ctx.grid.dt_h
                if got < need[(v.name, p)] - 1e-6:
                    from ems.errors import ConfigError

                    raise ConfigError(
                        "<scenario>",
                        f"vehicles[{v.name}]",
                        f"cannot receive {need[(v.name, p)]:.1f} kWh between arrival and departure",
                    )

    def sizes(self) -> dict[str, float]:
        return {f"chargers_{k}": h.value_units() for k, h in self.handles.items()}

    def assignment(self) -> dict[str, list[str]]:
        """Charger types each vehicle plugs into over the typical days (design result)."""
        if self.block is None or not hasattr(self.block, "plug"):
            return {}
        out: dict[str, set[str]] = {}
        for k, v, p, t in self.block.plug:
            if (self.block.plug[k, v, p, t].value or 0) > 0.5:
                out.setdefault(v, set()).add(k)
        return {v: sorted(ks) for v, ks in out.items()}
