"""Hot-water stores: 'puffer' (heating loop) and DHW tank 'bollitore' (seed §3.2.4).

Size: one of the catalogue sizes (a binary per size, Σ ≤ 1) or continuous up to the largest.
Operation through the shared storage balance (cyclic per typical day in design): standing loss
per hour of content, charge/discharge efficiencies, power ≤ C-rate × capacity.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import ThermalStorageSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._storage import add_rate_limits, add_storage_balance, set_soc_initial
from ems.techs._units import fixed_value
from ems.techs.base import Device, DeviceKey, Key, Raw, RuleState, Technology, device_state, rnd
from ems.techs.plant import HubStep, PlantDevice, r3


def pick_key(size_kwh: float) -> str:
    """The sizes.yaml quantity of one catalogue size of a store: ``pick_800kwh`` (1 if picked)."""
    return f"pick_{size_kwh:g}kwh".replace(".", "_")


class ThermalStorage(Technology):
    kind = "thermal_storage"
    device_kind = "thermal_storage"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return ThermalStoragePlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: ThermalStorageSpec,
        *,
        choice: Literal["catalogue", "continuous"] = "catalogue",
        max_kwh: float | None = None,
        existing_kwh: float = 0.0,
        fixed: dict[str, Any] | None = None,
        soc_initial: float = 0.5,
        exclusive: bool | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.choice = choice
        self.max_kwh = max_kwh if max_kwh is not None else max(spec.sizes_kwh)
        self.existing_kwh = existing_kwh
        self.fixed = fixed
        self.soc_initial = soc_initial
        exclusive = spec.exclusive_charge if exclusive is None else exclusive
        self.exclusive = exclusive and (
            spec.eta_charge < 1 or spec.eta_discharge < 1 or spec.loss_per_h > 0
        )
        self.handles: dict[str, SizeHandle] = {}

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        common = dict(lifetime_y=s.lifetime_y, om_fraction_per_y=s.om_fraction_per_y)
        if self.choice == "continuous" or self.existing_kwh > 0:
            self.handles["kwh"] = ctx.size(
                blk,
                "kwh",
                unit_size=1.0,
                unit="kWh",
                max_units=self.max_kwh,
                existing_units=self.existing_kwh,
                integer=False,
                capex_eur_per_unit=s.capex_eur_per_kwh,
                fixed_units=fixed_value(self.fixed, "kwh"),
                **common,
            )
            return
        sizes = [x for x in s.sizes_kwh if x <= self.max_kwh + 1e-9]
        for x in sizes:
            key = pick_key(x)
            self.handles[key] = ctx.size(
                blk,
                key,
                unit_size=x,
                unit="kWh",
                max_units=1,
                integer=True,
                capex_eur_per_unit=s.capex_eur_per_kwh * x,
                fixed_units=fixed_value(self.fixed, key),
                **common,
            )
        if any(h.is_variable for h in self.handles.values()):
            blk.one_size = pyo.Constraint(expr=sum(h.units for h in self.handles.values()) <= 1)

    def capacity_expr(self) -> Any:
        return sum(h.expr for h in self.handles.values())

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        e_max = max([self.max_kwh, self.existing_kwh] + list(s.sizes_kwh))
        cap = self.capacity_expr()
        blk.q_charge_kw = pyo.Var(
            ctx.T, domain=pyo.NonNegativeReals, bounds=(0, s.c_rate_per_h * e_max)
        )
        blk.q_discharge_kw = pyo.Var(
            ctx.T, domain=pyo.NonNegativeReals, bounds=(0, s.c_rate_per_h * e_max)
        )
        blk.e_kwh = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, e_max))
        blk.soc_initial = pyo.Param(initialize=self.soc_initial, mutable=True)
        blk.e_max = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.e_kwh[p, t] <= cap)
        add_rate_limits(ctx, blk, blk.q_charge_kw, blk.q_discharge_kw, s.c_rate_per_h, cap)
        if self.exclusive:
            # Charging and discharging at once would dissipate heat through the store's losses — a
            # hidden heat sink that lets CHP units run for electricity although (2) forbids
            # dissipation. A binary per step (big-M = C-rate × largest size, from data), plus
            # the valid inequality charge + discharge ≤ C-rate × capacity for the relaxation.
            m_kw = s.c_rate_per_h * e_max
            blk.is_charging = pyo.Var(ctx.T, domain=pyo.Binary)
            blk.charge_excl = pyo.Constraint(
                ctx.T, rule=lambda b, p, t: b.q_charge_kw[p, t] <= m_kw * b.is_charging[p, t]
            )
            blk.discharge_excl = pyo.Constraint(
                ctx.T,
                rule=lambda b, p, t: b.q_discharge_kw[p, t] <= m_kw * (1 - b.is_charging[p, t]),
            )
            blk.charge_plus_discharge = pyo.Constraint(
                ctx.T,
                rule=lambda b, p, t: (
                    b.q_charge_kw[p, t] + b.q_discharge_kw[p, t] <= s.c_rate_per_h * cap
                ),
            )
        add_storage_balance(
            ctx,
            blk,
            e=blk.e_kwh,
            p_in=blk.q_charge_kw,
            p_out=blk.q_discharge_kw,
            eta_in=s.eta_charge,
            eta_out=s.eta_discharge,
            loss_per_h=s.loss_per_h,
            e_initial=blk.soc_initial * cap,
        )
        label = "puffer" if s.carrier == "heat" else "DHW tank"
        self.port(ctx, s.carrier, f"{label} discharge", lambda p, t: blk.q_discharge_kw[p, t])
        self.port(ctx, s.carrier, f"{label} charge", lambda p, t: -blk.q_charge_kw[p, t])

    def update(self, soc_initial: float) -> None:
        """Operation: measured state of charge (fraction of capacity) at the start of the horizon,
        clamped to [0, 1] (a sensor reading outside must not make the plan infeasible)."""
        assert self.block is not None, "build the model first"
        set_soc_initial(self.block, soc_initial, 0.0, 1.0, self.name)

    def sizes(self) -> dict[str, float]:
        out = {k: h.value_units() for k, h in self.handles.items()}
        out["kwh"] = float(sum(h.value() for h in self.handles.values()))
        return out

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        """``kwh`` and one ``pick_<size>kwh`` per catalogue size of each store of the hub."""
        out: dict[str, tuple[str, ...] | None] = {}
        for key in ("puffer", "bollitore"):
            lim = getattr(hub, key)
            if lim is not None:
                spec = catalogue.get(lim.type, ThermalStorageSpec, key)
                picks = (pick_key(x) for x in spec.sizes_kwh)
                out[key] = ("kwh", *picks)
        return out

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        """The buffer tank (``puffer``, heating) and the DHW tank (``bollitore``) of a hub."""
        out: list[Technology] = []
        for key in ("puffer", "bollitore"):
            lim = getattr(hub, key)
            if lim is None:
                continue
            spec = a.catalogue.get(lim.type, ThermalStorageSpec, key)
            if spec.carrier not in a.carriers(hub):
                continue
            out.append(
                cls(
                    f"{hub.id}_{key}",
                    hub.id,
                    lim.type,
                    spec,
                    choice=lim.choice,
                    max_kwh=lim.max_kwh,
                    existing_kwh=lim.existing_kwh,
                    fixed=a.fixed(hub.id, key),
                )
            )
        return out

    def exclusive_for_verification(self) -> bool:
        """A lossy store must not charge and discharge in the same step of the verified dispatch
        (its losses would act as a hidden heat sink): switch on its exclusivity binary."""
        if self.exclusive:
            return False
        s = self.spec
        if s.eta_charge < 1 or s.eta_discharge < 1 or s.loss_per_h > 0:
            self.exclusive = True
            return True
        return False

    def size_rows(self) -> list[dict[str, Any]]:
        kwh = self.sizes()["kwh"]
        return [self.size_row(self.device_id, "kWh", kwh, self.max_kwh)]

    def bound_kw(self, role: str) -> float:
        """Charging a heating buffer at its C-rate (largest size: the catalogue's, the maximum,
        the existing one)."""
        if role != "heat_charge" or self.spec.carrier != "heat":
            return 0.0
        return self.spec.c_rate_per_h * max(
            [self.max_kwh, self.existing_kwh] + list(self.spec.sizes_kwh)
        )

    def cover_terms(self, carrier: str) -> list | None:
        if carrier != "heat" or self.spec.carrier not in ("heat", "dhw"):
            return []
        b = self.block
        return [lambda p, t: b.q_discharge_kw[p, t]]

    # ---- operation interface (device id ``puffer`` or ``bollitore``)
    @property
    def device_id(self) -> str:
        return self.name[len(self.hub) + 1 :]

    def kwh_now(self) -> float:
        """Installed content (kWh) as the model holds it."""
        if self.block is not None and self.handles:
            return float(pyo.value(self.capacity_expr()))
        if self.fixed is None:
            return float(self.existing_kwh)
        if self.choice == "continuous" or self.existing_kwh > 0:
            return float(self.fixed.get("kwh") or 0.0)
        return sum(x * float(self.fixed.get(pick_key(x)) or 0.0) for x in self.spec.sizes_kwh)

    def installed(self) -> bool:
        return self.kwh_now() > 0

    @property
    def device_key(self) -> DeviceKey:
        return (self.hub, "thermal_storage", self.device_id)

    def observe(self, obs: Any, inp: Any) -> None:
        """Measured state of charge, a fraction of the capacity."""
        p = obs.state.latest.get("/".join(self.device_key))
        if p is not None:
            inp.device_state[self.device_key] = float(p["soc_pct"]) / 100.0

    def take_state(self, inp: Any) -> None:
        soc = device_state(inp, self.device_key)
        if soc is not None:
            self.update(soc)

    def devices(self) -> list[Device]:
        p_max = max(self.spec.c_rate_per_h * self.kwh_now(), 0.1)
        return [(self.hub, "thermal_storage", self.device_id, p_max)]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        p = pyo.value(b.q_charge_kw[k0]) - pyo.value(b.q_discharge_kw[k0])
        return [(self.hub, "thermal_storage", self.device_id, {"p_kw": rnd(p)})]

    def fallback_passes(self):  # noqa: ANN201
        return [((95.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """Passive: it takes the hydraulic loop's mismatch."""
        return [(self.hub, "thermal_storage", self.device_id, {"p_kw": 0.0})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        key = f"{self.hub}.{self.device_id}"
        return {
            f"{key}_kw": self.values(b.q_charge_kw, keys) - self.values(b.q_discharge_kw, keys),
            f"{key}_kwh": self.values(b.e_kwh, keys),
        }

    def can_supply_electricity(self) -> bool:
        return False


class ThermalStoragePlant(PlantDevice):
    """A store in the simulated plant: it takes the heat loop's mismatch (stores in order, the
    puffer first) within power and content limits, with its efficiencies and standing loss."""

    thermal = True

    def __init__(self, tech: ThermalStorage) -> None:
        super().__init__(tech)
        self.soc = 0.5
        self.p_kw: float | None = None

    def absorb(self, hs: HubStep, r: float) -> float:
        dt = hs.dt_h
        cap = float(pyo.value(self.tech.capacity_expr()))
        spec = self.tech.spec
        e = self.soc * cap
        keep = (1.0 - spec.loss_per_h) ** dt
        if r > 0:
            room = max(0.0, (cap - e * keep) / (spec.eta_charge * dt))
            x = min(r, spec.c_rate_per_h * cap, room)
            e = e * keep + x * spec.eta_charge * dt
            hs.store_kw += x
            r -= x
        else:
            avail = max(0.0, e * keep * spec.eta_discharge / dt)
            x = min(-r, spec.c_rate_per_h * cap, avail)
            e = e * keep - x / spec.eta_discharge * dt
            hs.store_kw -= x
            r += x
        self.soc = min(max(e / cap, 0.0), 1.0) if cap > 0 else 0.0
        self.p_kw = hs.store_kw  # the hub's stores so far
        return r

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        p = 0.0 if self.p_kw is None else self.p_kw
        payload = {"ts": ts, "soc_pct": r3(100 * self.soc), "p_kw": r3(p)}
        return [((self.hub, "thermal_storage", self.tech.device_id), payload)]

    def to_dict(self) -> dict[str, Any]:
        return {"soc": self.soc, "p_kw": self.p_kw}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.soc, self.p_kw = float(d["soc"]), d["p_kw"]
