"""Gas boiler: heat (and DHW) = η × fuel, ≤ capacity. The AS-IS heat source (existing boilers at
their global seasonal efficiency) and an optional backup in the design."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import BoilerSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._units import fixed_value, gas_costs, set_gas_price
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.plant import HEAT_BOILER, HubStep, PlantDevice, r3, row_total


class Boiler(Technology):
    kind = "boiler"
    device_kind = "boiler"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return BoilerPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: BoilerSpec,
        *,
        existing_kw: float,
        max_kw: float,
        carriers: list[str],
        gas_eur_per_kwh: float,
        gas_t_per_mwh: float = 0.205,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.model, self.spec = model, spec
        self.existing_kw, self.max_kw = existing_kw, max_kw
        self.carriers = carriers
        self.gas_eur_per_kwh, self.gas_t_per_mwh = gas_eur_per_kwh, gas_t_per_mwh
        self.fixed = fixed
        self.size_kw: SizeHandle | None = None

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        fixed = fixed_value(self.fixed, "kw")
        self.size_kw = ctx.size(
            blk,
            "n_steps",
            unit_size=s.step_kw,
            unit="kW",
            max_units=math.floor((self.existing_kw + self.max_kw) / s.step_kw + 1e-6),
            existing_units=self.existing_kw / s.step_kw,
            integer=self.max_kw > 0,
            capex_eur_per_unit=s.capex_eur_per_kw * s.step_kw,
            lifetime_y=s.lifetime_y,
            om_fraction_per_y=s.om_fraction_per_y,
            fixed_units=None if fixed is None else fixed / s.step_kw,
        )

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        size = self.size_kw
        assert size is not None
        blk.C = pyo.Set(initialize=self.carriers, ordered=True)
        blk.q_kw = pyo.Var(blk.C, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, size.ub))
        blk.capacity = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: sum(b.q_kw[c, p, t] for c in b.C) <= size.expr
        )
        blk.fuel_kw = pyo.Expression(
            ctx.T, rule=lambda b, p, t: sum(b.q_kw[c, p, t] for c in b.C) / self.spec.eta
        )
        for c in self.carriers:
            bar = "boiler_heat" if c in ("heat", "dhw") else None
            self.port(ctx, c, "boiler", lambda p, t, c=c: blk.q_kw[c, p, t], bar=bar)

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        gas_costs(ctx, blk, blk.fuel_kw, self.gas_eur_per_kwh, self.gas_t_per_mwh)

    def update(self, gas_eur_per_kwh: float | None = None) -> None:
        """Operation: gas price (€/kWh of fuel) for the horizon; value only."""
        assert self.block is not None, "build the model first"
        if gas_eur_per_kwh is not None:
            set_gas_price(self.block, gas_eur_per_kwh, self.name)

    def sizes(self) -> dict[str, float]:
        assert self.size_kw is not None
        return {"kw": self.size_kw.value()}

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        out: list[Technology] = []
        gas, co2 = a.scenario.prices.gas_eur_per_kwh, a.scenario.emissions.gas_t_per_mwh
        for lim in hub.boilers:
            cs = [c for c in lim.carriers if c in a.carriers(hub)]
            if a.skip(lim) or not cs:
                continue
            out.append(
                cls(
                    f"{hub.id}_{lim.type}",
                    hub.id,
                    lim.type,
                    a.catalogue.get(lim.type, BoilerSpec, "boilers"),
                    existing_kw=lim.existing_kw,
                    max_kw=lim.max_kw,
                    carriers=cs,
                    gas_eur_per_kwh=gas,
                    gas_t_per_mwh=co2,
                    fixed=a.fixed(hub.id, lim.type),
                )
            )
        return out

    def size_rows(self) -> list[dict[str, Any]]:
        maximum = self.existing_kw + self.max_kw
        return [self.size_row(f"boiler {self.model}", "kW", self.sizes()["kw"], maximum)]

    def cover_terms(self, carrier: str) -> list | None:
        if carrier != "heat":
            return []
        b = self.block
        return [lambda p, t: sum(b.q_kw[c, p, t] for c in b.C if c in ("heat", "dhw"))]

    # ---- operation interface (device id = the boiler model)
    def size_kw_now(self) -> float:
        if self.size_kw is not None:
            return self.size_kw.value()
        f = fixed_value(self.fixed, "kw")
        return float(self.existing_kw if f is None else f)

    def installed(self) -> bool:
        return self.size_kw_now() > 0

    def take_state(self, inp: Any) -> None:
        self.update(gas_eur_per_kwh=getattr(inp, "gas_eur_per_kwh", None))

    def devices(self) -> list[Device]:
        return [(self.hub, "boiler", self.model, self.size_kw_now())]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        q = sum(pyo.value(b.q_kw[c, k0]) for c in b.C)
        return [(self.hub, "boiler", self.model, {"heat_kw": rnd_pos(q)})]

    def fallback_passes(self):  # noqa: ANN201
        return [((50.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """Back up the heat the CHP and the heat pumps leave, within capacity."""
        q = min(st.heat_kw, self.size_kw_now())
        st.heat_kw -= q
        return [(self.hub, "boiler", self.model, {"heat_kw": rnd_pos(q)})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        return {f"{self.hub}.boiler_kw": sum(self.values(b.q_kw, keys, (c,)) for c in b.C)}

    def can_supply_electricity(self) -> bool:
        return False


class BoilerPlant(PlantDevice):
    """A gas boiler in the simulated plant: its setpoint (or the rule) within capacity; its
    thermostat backs up a heat deficit the stores cannot cover, and it turns down first on a
    surplus."""

    rows = ("boiler_kw",)
    thermal = True
    turndown_order = 0.0

    def __init__(self, tech: Boiler) -> None:
        super().__init__(tech)
        self.q = 0.0
        self.last = (0.0, 0.0)  # heat, fuel

    def run(self, hs: HubStep) -> None:
        b = self.tech
        q = hs.setpoint((self.hub, "boiler", b.model), "heat_kw")
        if q is None:
            q = hs.rules[(self.hub, "boiler", b.model)]["heat_kw"]
        self.q = min(max(float(q), 0.0), b.size_kw.value())
        hs.sums.add("heat_supply", HEAT_BOILER, self.q)

    def backup(self, hs: HubStep, r: float) -> float:
        extra = min(-r, self.tech.size_kw.value() - self.q)
        self.q += extra
        return r + extra

    def turndown(self, hs: HubStep, r: float) -> float:
        cut = min(r, self.q)
        self.q -= cut
        return r - cut

    def record(self, hs: HubStep) -> None:
        hs.rows.add("boiler_kw", 0, self.q)
        hs.rows.add("gas_kw", 1, self.q / self.tech.spec.eta)
        self.last = (self.q, self.q / self.tech.spec.eta)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        q, f = self.last
        payload = {"ts": ts, "heat_kw": r3(q), "fuel_kw": r3(f)}
        return [((self.hub, "boiler", self.tech.model), payload)]

    def to_dict(self) -> dict[str, Any]:
        return {"last": list(self.last)}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.last = tuple(d["last"])  # type: ignore[assignment]

    @classmethod
    def kpis(cls, devices: list[Any], df: Any, dt_h: float, hubs: list[str], out: dict) -> None:
        out["boiler_kwh"] = row_total(df, hubs, "boiler_kw", dt_h)
