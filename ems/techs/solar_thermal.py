"""Solar thermal collectors: output ≤ area × specific output of the step (kW/m² from the weather
data); the collector area shares the hub's roof with PV (constraint (127) of [1])."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import SolarThermalSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs._sized import stepped_size
from ems.techs._units import fixed_value
from ems.techs.base import Key, Raw, RuleState, Technology
from ems.techs.plant import HEAT_SOLAR, HubStep, PlantDevice


class SolarThermal(Technology):
    kind = "solar_thermal"
    reads_weather = True

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return SolarThermalPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        spec: SolarThermalSpec,
        max_m2: float,
        *,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name, hub)
        self.spec, self.max_m2, self.fixed = spec, max_m2, fixed
        self.area: SizeHandle | None = None

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s = self.spec
        self.area = stepped_size(
            ctx,
            blk,
            s,
            step=s.step_m2,
            unit="m2",
            maximum=self.max_m2,
            capex_per_unit=s.capex_eur_per_m2,
            fixed=fixed_value(self.fixed, "m2"),
        )
        ctx.add_shared_use(("roof_m2", self.hub), self.area.expr)

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        area = self.area
        assert area is not None
        out = ctx.param(blk, "kw_per_m2", ctx.series(self.spec.output_column))
        peak = max(float(ctx.data[self.spec.output_column].max()), 0.0)
        blk.q_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, area.ub * max(peak, 1.0)))
        blk.output = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.q_kw[p, t] <= area.expr * out[p, t]
        )
        self.port(ctx, self.spec.carrier, "solar thermal", lambda p, t: blk.q_kw[p, t])

    def update(self, kw_per_m2: Sequence[float]) -> None:
        """Operation: specific output forecast (kW/m²) over the horizon; values only."""
        from ems.techs.demand import _set_series

        assert self.block is not None, "build the model first"
        _set_series(self.block.kw_per_m2, kw_per_m2, f"{self.name}.kw_per_m2", lo=0.0, hi=1.2)

    def sizes(self) -> dict[str, float]:
        assert self.area is not None
        return {"m2": self.area.value()}

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        return {} if hub.solar_thermal is None else {"solar_thermal": ("m2",)}

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        lim = hub.solar_thermal
        if lim is None:
            return []
        spec = a.catalogue.get(lim.type, SolarThermalSpec, "solar_thermal")
        if spec.carrier not in a.carriers(hub):
            return []
        max_m2 = lim.max_m2 if lim.max_m2 is not None else (hub.roof_area_m2 or 0.0)
        name = f"{hub.id}_solar_thermal"
        return [cls(name, hub.id, spec, max_m2, fixed=a.fixed(hub.id, "solar_thermal"))]

    def size_rows(self) -> list[dict[str, Any]]:
        return [self.size_row("solar thermal", "m2", self.sizes()["m2"], self.max_m2)]

    def cover_terms(self, carrier: str) -> list | None:
        if carrier != "heat" or self.spec.carrier not in ("heat", "dhw"):
            return []
        b = self.block
        return [lambda p, t: b.q_kw[p, t]]

    # ---- operation interface (no device of its own: the weather station gives its input)
    def m2_now(self) -> float:
        if self.area is not None:
            return self.area.value()
        return float(fixed_value(self.fixed, "m2") or 0.0)

    def installed(self) -> bool:
        return self.m2_now() > 0

    def data_columns(self) -> list[str]:
        return [self.spec.output_column]

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:
        self.update(frame[self.spec.output_column])

    def observe(self, obs: Any, inp: Any) -> None:
        """Specific output (kW/m²) from clear sky."""
        col = self.spec.output_column
        if col not in inp.columns:
            inp.columns[col] = obs.fc.solar_thermal(col, obs.times)
            obs.forecast[f"{col}.kw_per_m2"] = inp.columns[col]

    def fallback_passes(self):  # noqa: ANN201
        return [((1.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """The heat it makes now reduces what the rule has to cover."""
        st.heat_kw -= self.m2_now() * max(st.col(self.spec.output_column), 0.0)
        return []

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {f"{self.hub}.solar_thermal_kw": self.values(self.block.q_kw, keys)}

    def can_supply_electricity(self) -> bool:
        return False


class SolarThermalPlant(PlantDevice):
    """Solar thermal in the simulated plant: installed m² × the drawn specific output (profile ×
    an AR(1) cloud factor)."""

    rows = ("solar_thermal_kw",)
    thermal = True

    def exo_columns(self) -> list[tuple[str, str, str]]:
        c = self.tech.spec.output_column
        return [("solar", c, c)]

    def demand(self, hs: HubStep) -> None:
        area = self.tech.area
        q = area.value() * max(hs.col(self.tech.spec.output_column), 0.0) if area else 0.0
        hs.sums.add("solar", 0, q)
        hs.sums.add("heat_supply", HEAT_SOLAR, q)
        hs.rows.add("solar_thermal_kw", 0, q)
