"""Stationary battery in identical modules (5 kWh in the case study).

Sizes: integer number of modules. Operation: charge/discharge power ≤ C-rate × capacity, state of
charge between soc_min and soc_max of capacity, standing losses; cyclic within each typical day
in design mode, from the measured state in operation mode. No charge/discharge binary: with
round-trip efficiency < 1 simultaneous charge and discharge only wastes energy, so it is never
optimal unless energy has a negative value (documented limitation).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import BatterySpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._storage import add_rate_limits, add_storage_balance, set_soc_initial
from ems.techs.base import Device, DeviceKey, Key, Raw, RuleState, Technology, device_state, rnd
from ems.techs.dashboard import Panel, Series
from ems.techs.plant import HubStep, PlantDevice


def battery_rule_p_kw(
    net_kw: float,
    soc: float,
    capacity_kwh: float,
    p_max_kw: float,
    soc_min: float,
    soc_max: float,
    dt_h: float,
    eta_charge: float = 0.95,
    eta_discharge: float = 0.95,
) -> float:
    """Battery power (+ charge, − discharge) for a hub whose net load (load − PV) is ``net_kw``:
    PV self-consumption (SPEC §4), within power and state-of-charge limits."""
    if capacity_kwh <= 0 or p_max_kw <= 0:
        return 0.0
    e = soc * capacity_kwh
    if net_kw < 0:  # surplus → charge up to soc_max
        room_kw = max(0.0, (soc_max * capacity_kwh - e) / (eta_charge * dt_h))
        return min(-net_kw, p_max_kw, room_kw)
    avail_kw = max(0.0, (e - soc_min * capacity_kwh) * eta_discharge / dt_h)
    return -min(net_kw, p_max_kw, avail_kw)


class Battery(Technology):
    kind = "battery"
    follows_net_load = True
    device_kind = "battery"
    summary_label = "bat"
    device_role = "storage_inverter"
    panels = (
        Panel(
            "hub",
            "Battery power: setpoint vs measured",
            "kW",
            (
                Series("p_kw", "$tag_device measured"),
                Series("p_kw", "$tag_device setpoint", "setpoint"),
            ),
            order=1,
        ),
        Panel(
            "hub",
            "Battery state of charge",
            "%",
            (
                Series("soc_pct", "$tag_device"),
                Series("soc_pct", "$tag_device plan", "plan"),
            ),
            order=2,
        ),
    )
    DEVICE_ID = "bess"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return BatteryPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        spec: BatterySpec,
        max_modules: int,
        existing_modules: int = 0,
        fixed_modules: int | None = None,
        soc_initial: float = 0.5,
    ) -> None:
        super().__init__(name, hub)
        self.spec = spec
        self.max_modules = max_modules
        self.existing_modules = existing_modules
        self.fixed_modules = fixed_modules
        self.soc_initial = soc_initial
        self.capacity: SizeHandle | None = None

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        self.capacity = ctx.size(
            blk,
            "n_modules",
            unit_size=s.module_kwh,
            unit="kWh",
            max_units=self.max_modules,
            existing_units=self.existing_modules,
            capex_eur_per_unit=s.capex_eur_per_module,
            lifetime_y=s.lifetime_y,
            om_fraction_per_y=s.om_fraction_per_y,
            fixed_units=self.fixed_modules,
        )

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s, cap = self.spec, self.capacity
        assert cap is not None
        e_max = cap.ub
        p_max = e_max * s.c_rate_per_h
        blk.p_charge_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, p_max))
        blk.p_discharge_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, p_max))
        blk.e_kwh = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, e_max))
        blk.soc_initial = pyo.Param(initialize=self.soc_initial, mutable=True)
        add_rate_limits(ctx, blk, blk.p_charge_kw, blk.p_discharge_kw, s.c_rate_per_h, cap.expr)
        blk.soc_max = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.e_kwh[p, t] <= s.soc_max * cap.expr
        )
        blk.soc_min = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.e_kwh[p, t] >= s.soc_min * cap.expr
        )
        add_storage_balance(
            ctx,
            blk,
            e=blk.e_kwh,
            p_in=blk.p_charge_kw,
            p_out=blk.p_discharge_kw,
            eta_in=s.eta_charge,
            eta_out=s.eta_discharge,
            loss_per_h=s.loss_per_h,
            e_initial=blk.soc_initial * cap.expr,
        )
        self.port(ctx, "electricity", "battery discharge", lambda p, t: blk.p_discharge_kw[p, t])
        self.port(ctx, "electricity", "battery charge", lambda p, t: -blk.p_charge_kw[p, t])

    def update(self, soc_initial: float) -> None:
        """Operation: measured state of charge (fraction of capacity) at the start of the horizon.

        Clamped to [soc_min, soc_max]: a battery measured outside its band (BMS calibration)
        must not make the plan infeasible; the first step then moves it back inside."""
        assert self.block is not None, "build the model first"
        set_soc_initial(self.block, soc_initial, self.spec.soc_min, self.spec.soc_max, self.name)

    def sizes(self) -> dict[str, float]:
        assert self.capacity is not None
        return {"modules": self.capacity.value_units(), "kwh": self.capacity.value()}

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        return {} if hub.battery is None else {"battery": ("modules", "kwh")}

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        lim = hub.battery
        if lim is None or lim.max_modules + lim.existing_modules <= 0:
            return []
        spec: BatterySpec = a.catalogue.get(lim.type, BatterySpec, "battery")
        fixed = a.fixed(hub.id, "battery")
        n = None if fixed is None else float(fixed.get("modules", 0))
        name = f"{hub.id}_battery"
        return [cls(name, hub.id, spec, lim.max_modules, lim.existing_modules, fixed_modules=n)]

    def size_entry(self) -> dict[str, Any]:
        assert self.capacity is not None
        n = self.capacity.value_units()
        count = int(round(n)) if abs(n - round(n)) < 1e-6 else round(n, 6)  # continuous sizes
        return {"battery": {"modules": count, "kwh": round(self.capacity.value(), 3)}}

    def size_rows(self) -> list[dict[str, Any]]:
        assert self.capacity is not None
        maximum = self.max_modules * self.spec.module_kwh
        return [self.size_row("battery", "kWh", self.capacity.value(), maximum)]

    def bound_kw(self, role: str) -> float:
        assert self.capacity is not None
        return self.capacity.ub * self.spec.c_rate_per_h if role in ("el_firm", "el_flex") else 0.0

    def generation_terms(self) -> list | None:
        b = self.block
        return [lambda p, t: b.p_discharge_kw[p, t]]

    def cover_terms(self, carrier: str) -> list | None:
        return self.generation_terms() if carrier == "electricity" else []

    # ---- operation interface
    @property
    def device_key(self) -> DeviceKey:
        return (self.hub, "battery", self.DEVICE_ID)

    def observe(self, obs: Any, inp: Any) -> None:
        """Measured state of charge, a fraction of the capacity (a stale reading is not used:
        the model keeps the last)."""
        key = "/".join(self.device_key)
        p = obs.state.latest.get(key)
        if p is not None and key not in obs.stale_in:
            inp.device_state[self.device_key] = float(p["soc_pct"]) / 100.0

    def take_state(self, inp: Any) -> None:
        soc = device_state(inp, self.device_key)
        if soc is not None:
            self.update(soc)

    def installed(self) -> bool:
        return (self.fixed_modules or 0) > 0

    def capacity_kwh(self) -> float:
        return self.capacity.value() if self.capacity is not None else 0.0

    def devices(self) -> list[Device]:
        if not self.installed():
            return []
        p_max = max(self.capacity_kwh() * self.spec.c_rate_per_h, 0.1)
        return [(self.hub, "battery", self.DEVICE_ID, p_max)]

    def setpoints(self, k0: Key) -> list[Raw]:
        if not self.installed():
            return []
        b = self.block
        assert b is not None
        p = pyo.value(b.p_charge_kw[k0]) - pyo.value(b.p_discharge_kw[k0])
        return [(self.hub, "battery", self.DEVICE_ID, {"p_kw": rnd(p)})]

    def fallback_passes(self):  # noqa: ANN201
        return [((90.0,), self._rule)] if self.installed() else []

    def _rule(self, st: RuleState) -> list[Raw]:
        """Last in the merit order: it sees the hub's net including every rule before it."""
        s, cap = self.spec, self.capacity_kwh()
        soc = device_state(st.inp, self.device_key, self.soc_initial)
        p = battery_rule_p_kw(
            st.net_el_kw,
            soc,
            cap,
            s.c_rate_per_h * cap,
            s.soc_min,
            s.soc_max,
            st.dt_h,
            s.eta_charge,
            s.eta_discharge,
        )
        inp = st.inp
        if inp is not None and self.hub in inp.net_unknown and self.hub not in inp.net_now_kw:
            p = 0.0  # the hub's net load is unknown: held (last in the merit order)
        st.net_el_kw += p
        return [(self.hub, "battery", self.DEVICE_ID, {"p_kw": rnd(p)})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        if not self.installed():
            return {}
        b = self.block
        assert b is not None
        return {
            f"{self.hub}.battery_kw": self.values(b.p_charge_kw, keys)
            - self.values(b.p_discharge_kw, keys),
            f"{self.hub}.battery_kwh": self.values(b.e_kwh, keys),
        }

    def can_supply_electricity(self) -> bool:
        return self.installed()

    def measured_el_kw(self, state: Any) -> float:
        return -state.value((self.hub, "battery", self.DEVICE_ID), "p_kw")


class BatteryPlant(PlantDevice):
    """The battery in the simulated plant: its setpoint (or the PV self-consumption rule of the
    baseline and the safe mode) within power and state-of-charge limits, with its efficiencies."""

    rows = ("battery_kw",)

    def __init__(self, tech: Battery) -> None:
        super().__init__(tech)
        self.soc = 0.5
        self.p_kw = 0.0

    def balance(self, hs: HubStep, net_kw: float) -> float:
        b, dt = self.tech, hs.dt_h
        cap_kwh = b.capacity.value() if b.capacity else 0.0
        spec = b.spec
        want = hs.setpoint((self.hub, "battery", b.DEVICE_ID), "p_kw")
        if want is None:  # baseline and safe mode: PV self-consumption
            want = battery_rule_p_kw(
                net_kw,
                self.soc,
                cap_kwh,
                spec.c_rate_per_h * cap_kwh,
                spec.soc_min,
                spec.soc_max,
                dt,
                spec.eta_charge,
                spec.eta_discharge,
            )
        want = float(want)
        p_max = spec.c_rate_per_h * cap_kwh
        e = self.soc * cap_kwh
        if want >= 0:
            room = max(0.0, (spec.soc_max * cap_kwh - e) / (spec.eta_charge * dt))
            bat_kw = min(want, p_max, room)
            e += bat_kw * spec.eta_charge * dt
        else:
            avail = max(0.0, (e - spec.soc_min * cap_kwh) * spec.eta_discharge / dt)
            bat_kw = -min(-want, p_max, avail)
            e += bat_kw / spec.eta_discharge * dt
        self.soc = e / cap_kwh if cap_kwh > 0 else 0.0
        self.p_kw = bat_kw
        hs.rows.add("battery_kw", 0, bat_kw)
        hs.sums.add("surplus", 4, -max(bat_kw, 0.0))
        return bat_kw

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        payload = {"ts": ts, "p_kw": round(self.p_kw, 3), "soc_pct": round(100 * self.soc, 3)}
        return [((self.hub, "battery", self.tech.DEVICE_ID), payload)]

    def to_dict(self) -> dict[str, Any]:
        return {"soc": self.soc, "p_kw": self.p_kw}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.soc, self.p_kw = float(d["soc"]), float(d["p_kw"])
