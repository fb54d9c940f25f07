"""Photovoltaic plant of one module type at one hub.

Output ≤ installed kWp × specific yield of the step (kW/kWp, from pvlib); curtailment is free.
Installed power comes in integer steps (panels or strings); the area it takes counts against
the hub's roof, shared with the other PV types and solar thermal (constraint (127) of [1]).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import PvTypeSpec
from ems.model.context import BuildContext, SizeHandle
from ems.techs.base import Device, Key, RuleState, Technology
from ems.techs.dashboard import Panel, Series
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import BUS_PV, HubStep, PlantDevice


class Photovoltaic(Technology):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("pv", 2, "electricity", 2, generation=True),
    )

    kind = "pv"
    renewable_plant = True
    device_kind = "pv"
    summary_label = "PV"
    device_role = "pv_inverter"
    panels = (
        Panel(
            "community",
            "PV production per hub",
            "kW",
            (Series("p_kw", "$tag_hub", by=("hub",), sum_devices=True),),
            order=12,
        ),
        Panel("hub", "Grid exchange", "kW", (Series("p_kw", "PV", by=()),), order=90, wide=True),
    )

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return PvPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        spec: PvTypeSpec,
        max_kwp: float,
        existing_kwp: float = 0.0,
        fixed_kwp: float | None = None,
        peak_yield: float = 1.0,
    ) -> None:
        super().__init__(name, hub)
        self.peak_yield = peak_yield  # kW/kWp, peak of the yield column in the design data
        self.spec = spec
        self.max_kwp = max_kwp
        self.existing_kwp = existing_kwp
        self.fixed_kwp = fixed_kwp
        self.size_kwp: SizeHandle | None = None

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:
        step = self.spec.step_kwp
        self.size_kwp = ctx.size(
            blk,
            "n_steps",
            unit_size=step,
            unit="kWp",
            max_units=math.floor(self.max_kwp / step + 1e-6),
            existing_units=self.existing_kwp / step,
            capex_eur_per_unit=self.spec.capex_eur_per_kwp * step,
            lifetime_y=self.spec.lifetime_y,
            om_fraction_per_y=self.spec.om_fraction_per_y,
            fixed_units=None if self.fixed_kwp is None else self.fixed_kwp / step,
        )
        ctx.add_shared_use(("roof_m2", self.hub), self.size_kwp.expr / self.spec.kwp_per_m2)

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        size = self.size_kwp
        assert size is not None
        ctx.param(blk, "yield_kw_per_kwp", ctx.series(self.spec.yield_column))
        ymax = max(ctx.data[self.spec.yield_column].max(), 0.0)
        blk.p_kw = pyo.Var(
            ctx.T,
            domain=pyo.NonNegativeReals,
            bounds=(0, size.ub * max(ymax, 1.2)),
        )
        blk.output = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_kw[p, t] <= size.expr * b.yield_kw_per_kwp[p, t]
        )
        self.port(
            ctx,
            "electricity",
            f"PV {self.spec.description or self.name}",
            lambda p, t: blk.p_kw[p, t],
            bar="pv",
        )

    def update(self, yield_kw_per_kwp: Sequence[float]) -> None:
        """Operation: specific yield forecast (kW/kWp) over the horizon; values only."""
        from ems.techs.demand import _set_series

        assert self.block is not None, "build the model first"
        _set_series(
            self.block.yield_kw_per_kwp,
            yield_kw_per_kwp,
            f"{self.name}.yield_kw_per_kwp",
            lo=0.0,
            hi=1.3,
        )

    def sizes(self) -> dict[str, float]:
        assert self.size_kwp is not None
        return {"kwp": self.size_kwp.value()}

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        return {pv.type: ("kwp",) for pv in hub.pv}

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        out: list[Technology] = []
        for pv in hub.pv:
            spec: PvTypeSpec = a.catalogue.get(pv.type, PvTypeSpec, "pv")
            max_kwp = (
                pv.max_kwp
                if pv.max_kwp is not None
                else (hub.roof_area_m2 or 0.0) * spec.kwp_per_m2
            )
            fixed = a.fixed(hub.id, pv.type)
            out.append(
                cls(
                    f"{hub.id}_{pv.type}",
                    hub.id,
                    spec,
                    max_kwp,
                    pv.existing_kwp,
                    fixed_kwp=None if fixed is None else float(fixed.get("kwp", 0.0)),
                    peak_yield=a.peaks.get(spec.yield_column, 1.0),
                )
            )
        return out

    @classmethod
    def design_columns(cls, hub: Any, catalogue: Any) -> list[str]:
        """The yield column (kW per kWp) of each PV type at the hub."""
        return [catalogue.get(pv.type, PvTypeSpec, "pv").yield_column for pv in hub.pv]

    def size_rows(self) -> list[dict[str, Any]]:
        assert self.size_kwp is not None
        item = self.spec.description or self.name
        return [self.size_row(item, "kWp", self.size_kwp.value(), self.max_kwp)]

    def bound_kw(self, role: str) -> float:
        assert self.size_kwp is not None
        if role == "pv_kwp":
            return self.size_kwp.ub
        if role == "el_pv":
            return self.size_kwp.ub * max(self.peak_yield, 0.0)
        return 0.0

    def generation_terms(self) -> list | None:
        b = self.block
        return [lambda p, t: b.p_kw[p, t]]

    def cover_terms(self, carrier: str) -> list | None:
        return self.generation_terms() if carrier == "electricity" else []

    # ---- operation interface
    @property
    def device_id(self) -> str:
        """MQTT id: the PV type (``pv/pv_mono``)."""
        return self.name[len(self.hub) + 1 :]

    def data_columns(self) -> list[str]:
        return [self.spec.yield_column]

    def observe(self, obs: Any, inp: Any) -> None:
        """Specific yield: clear sky × the recent measured-to-clear-sky ratio (per yield column)."""
        col, st = self.spec.yield_column, obs.state
        if col not in inp.pv_yield:
            hist = st.series(st.pv_history.get(col))
            inp.pv_yield[col] = obs.fc.pv_yield(col, obs.times, hist, obs.start)
            obs.forecast[f"{col}.yield"] = inp.pv_yield[col]

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:
        self.update(frame[self.spec.yield_column])

    def installed(self) -> bool:
        return (self.fixed_kwp or 0) > 0

    def devices(self) -> list[Device]:
        if not self.installed():
            return []
        return [(self.hub, "pv", self.device_id, max(self.fixed_kwp or 0.0, 0.1) * 1.3)]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        if not self.installed():
            return {}
        assert self.block is not None
        return {f"{self.hub}.pv_kw": self.values(self.block.p_kw, keys)}

    def can_supply_electricity(self) -> bool:
        return self.installed()

    def forecast_net_kw(self, rule: RuleState) -> float:
        return -(self.fixed_kwp or 0.0) * rule.col(self.spec.yield_column)

    def measured_renewable_kw(
        self, state: Any, stale_in: dict[str, float], yields: dict[str, float | None]
    ) -> float:
        key = f"{self.hub}/pv/{self.device_id}"
        p = state.latest.get(key)
        if p is None or key in stale_in:
            return 0.0
        if (self.fixed_kwp or 0) > 0:
            yields[self.spec.yield_column] = float(p["p_kw"]) / float(self.fixed_kwp)
        return state.value((self.hub, "pv", self.device_id), "p_kw")

    def measured_el_kw(self, state: Any) -> float:
        return state.value((self.hub, "pv", self.device_id), "p_kw") if self.installed() else 0.0


class PvPlant(PlantDevice):
    """PV in the simulated plant: installed kWp × the drawn specific yield (profile × an AR(1)
    cloud factor shared by every PV column)."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("pv_kwh", "PV energy", "kWh", 1, 5.5, generation=True),
        KpiRow("self_consumption_pct", "PV self-consumption", "%", 1, 6),
    )

    rows = ("pv_kw",)

    def exo_columns(self) -> list[tuple[str, str, str]]:
        c = self.tech.spec.yield_column
        return [("yield", c, c)]

    def _p_kw(self, col: Any, i: int) -> float:
        return (self.tech.fixed_kwp or 0) * float(col(self.tech.spec.yield_column, i))

    def el_step(self, hs: HubStep) -> None:
        p = self._p_kw(hs.col, hs.i)
        hs.sums.add("bus", BUS_PV, -p)
        hs.sums.add("generation", 0, p)
        hs.sums.add("surplus", 0, p)
        hs.rows.add("pv_kw", 0, p)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        p = self._p_kw(col, max(i - 1, 0))
        return [((self.hub, "pv", self.name[len(self.hub) + 1 :]), {"ts": ts, "p_kw": round(p, 3)})]

    @classmethod
    def kpis(cls, devices: list[Any], df: Any, dt_h: float, hubs: list[str], out: dict) -> None:
        """PV energy, self-consumption and the prices in the hours PV runs (what a kWh of PV
        surplus is worth kept, or exported)."""
        pv = sum(df[f"{h}.pv_kw"] for h in hubs)
        exp = sum(df[f"{h}.export_kw"] for h in hubs)
        run = (pv > 0).any()
        out.update(
            pv_kwh=float(pv.sum() * dt_h),
            self_consumption_pct=100.0 * (1 - float(exp.sum()) / float(pv.sum()))
            if pv.sum() > 0
            else 0.0,
            buy_price_pv_hours_eur_per_kwh=float(df.price_buy[pv > 0].mean()) if run else 0.0,
            sell_price_pv_hours_eur_per_kwh=float(df.price_sell[pv > 0].mean()) if run else 0.0,
        )
