"""Gas boiler: heat (and DHW) = η × fuel, ≤ capacity. The AS-IS heat source (existing boilers at
their global seasonal efficiency) and an optional backup in the design."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import BoilerSpec
from ems.model.context import BuildContext
from ems.techs._plant import KeepsLast, RowKpis
from ems.techs._sized import StepSized
from ems.techs._units import GasFired, gas_costs
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import HEAT_BOILER, HubStep, PlantDevice, r3


class Boiler(GasFired, StepSized):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("boiler_heat", 15, "heating", 4),
    )

    kind = "boiler"
    device_kind = "boiler"
    size_item = "boiler"
    hub_field = "boilers"

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
        super().__init__(
            name,
            hub,
            model,
            spec,
            existing_kw=existing_kw,
            max_kw=max_kw,
            carriers=carriers,
            fixed=fixed,
        )
        self.gas_eur_per_kwh, self.gas_t_per_mwh = gas_eur_per_kwh, gas_t_per_mwh

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        self.add_heat_output(ctx, blk, "fuel_kw", "boiler", "boiler_heat")

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        gas_costs(ctx, blk, blk.fuel_kw, self.gas_eur_per_kwh, self.gas_t_per_mwh)

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        gas, co2 = a.scenario.prices.gas_eur_per_kwh, a.scenario.emissions.gas_t_per_mwh
        return cls.steps_from_hub(
            a, hub, BoilerSpec, "boilers", gas_eur_per_kwh=gas, gas_t_per_mwh=co2
        )

    # ---- operation interface (device id = the boiler model)
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


class BoilerPlant(KeepsLast, RowKpis, PlantDevice):
    """A gas boiler in the simulated plant: its setpoint (or the rule) within capacity; its
    thermostat backs up a heat deficit the stores cannot cover, and it turns down first on a
    surplus."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("boiler_kwh", "boiler heat", "kWh", 1, 24),
    )

    rows = ("boiler_kw",)
    thermal = True
    turndown_order = 0.0
    kpi_rows = {"boiler_kwh": "boiler_kw"}

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
