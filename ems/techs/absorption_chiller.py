"""Absorption chiller in identical units, fed by CHP heat or district heat (seed §3.2.3.2, (18)).

cooling = COP_th × heat input ≤ units × rated cooling; electric auxiliaries ∝ cooling. The heat
input is drawn from the hub's ``chiller_feed`` balance (18), which CHP and DH supply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import AbsorptionChillerSpec
from ems.model.context import BuildContext
from ems.techs._plant import KeepsLast, RowKpis
from ems.techs._sized import UnitSized
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import HubStep, PlantDevice, r3


class AbsorptionChiller(UnitSized):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("chiller_heat", 11),
        Bar("chiller_cooling", 20),
    )

    kind = "absorption_chiller"
    device_kind = "absorption_chiller"
    size_item, size_key, size_unit = "absorption chiller", "kwc", "kWc"
    hub_field = "absorption_chillers"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return ChillerPlant(self) if self.installed() else None

    def unit_kw(self) -> float:
        return self.spec.cool_kw

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        s, n = self.spec, self.n
        assert n is not None
        n_max = n.ub_units
        blk.q_cool_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, n_max * s.cool_kw))
        blk.capacity = pyo.Constraint(ctx.T, rule=lambda b, p, t: b.q_cool_kw[p, t] <= n.expr)
        label = f"absorption chiller {self.model}"
        self.port(ctx, "cooling", label, lambda p, t: blk.q_cool_kw[p, t], bar="chiller_cooling")
        feed = lambda p, t: -blk.q_cool_kw[p, t] / s.cop_th  # noqa: E731
        self.port(ctx, "chiller_feed", label, feed, bar="chiller_heat", sign=-1)
        if s.aux_el_fraction > 0:
            self.port(
                ctx, "electricity", label, lambda p, t: -s.aux_el_fraction * blk.q_cool_kw[p, t]
            )

    @classmethod
    def hub_carriers(cls, hub: Any) -> list[str]:
        """The chillers' heat feed (18)."""
        return ["chiller_feed"] if hub.absorption_chillers else []

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        return cls.units_from_hub(a, hub, AbsorptionChillerSpec, "absorption_chillers")

    def bound_kw(self, role: str) -> float:
        assert self.n is not None
        s = self.spec
        if role == "el_flex":
            return self.n.ub_units * s.cool_kw * s.aux_el_fraction
        if role == "chiller_feed":
            return self.n.ub_units * s.cool_kw / s.cop_th
        return 0.0

    def cover_terms(self, carrier: str) -> list | None:
        return []

    # ---- operation interface (device id = the chiller model)
    def cool_kw_now(self) -> float:
        if self.n is not None:
            return self.n.value()
        return self.installed_units() * self.spec.cool_kw

    def installed(self) -> bool:
        return self.cool_kw_now() > 0

    def devices(self) -> list[Device]:
        return [(self.hub, "absorption_chiller", self.model, self.cool_kw_now())]

    def setpoints(self, k0: Key) -> list[Raw]:
        assert self.block is not None
        q = pyo.value(self.block.q_cool_kw[k0])
        return [(self.hub, "absorption_chiller", self.model, {"cooling_kw": rnd_pos(q)})]

    def fallback_passes(self):  # noqa: ANN201
        """With a CHP at the hub the chillers run first (their feed joins the heat the CHP
        follows); without, they cool what the heat pumps leave, on boiler or network heat."""
        return [((10.0,), self._rule_first), ((60.0,), self._rule_last)]

    def _rule(self, st: RuleState, feed_joins_heat: bool) -> list[Raw]:
        c = min(st.cooling_kw, self.cool_kw_now())
        st.cooling_kw -= c
        if feed_joins_heat:
            st.heat_kw += c / self.spec.cop_th
        return [(self.hub, "absorption_chiller", self.model, {"cooling_kw": rnd_pos(c)})]

    def _rule_first(self, st: RuleState) -> list[Raw]:
        return self._rule(st, True) if "chp" in st.hub_kinds else []

    def _rule_last(self, st: RuleState) -> list[Raw]:
        return [] if "chp" in st.hub_kinds else self._rule(st, False)

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {f"{self.hub}.chiller_kw": self.values(self.block.q_cool_kw, keys)}

    def can_supply_electricity(self) -> bool:
        return False

    def measured_el_kw(self, state: Any) -> float:
        return -state.value((self.hub, "absorption_chiller", self.model), "p_kw")


class ChillerPlant(KeepsLast, RowKpis, PlantDevice):
    """An absorption chiller in the simulated plant: it covers the cooling the heat pumps leave,
    within capacity (local control); its feed heat comes from the hub's heat loop, its electric
    auxiliaries from the hub's bus."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("chiller_kwh", "absorption-chiller cooling", "kWh", 1, 24.6),
    )

    rows = ("chiller_kw", "chiller_feed_kw", "chiller_el_kw")
    thermal = True
    kpi_rows = {"chiller_kwh": "chiller_kw"}

    def __init__(self, tech: AbsorptionChiller) -> None:
        super().__init__(tech)
        self.cool_kw = 0.0
        self.last = (0.0, 0.0, 0.0)  # cooling, heat in, P_el

    def run(self, hs: HubStep) -> None:
        s = self.tech.spec
        c_kw = min(hs.cool_left, self.tech.n.value())
        hs.cool_left -= c_kw
        self.cool_kw = c_kw
        hs.sums.add("heat_use", 1, -(c_kw / s.cop_th))
        hs.th_el += s.aux_el_fraction * c_kw

    def record(self, hs: HubStep) -> None:
        s, c_kw = self.tech.spec, self.cool_kw
        hs.rows.add("chiller_kw", 0, c_kw)
        hs.rows.add("chiller_feed_kw", 0, c_kw / s.cop_th)
        hs.rows.add("chiller_el_kw", 0, s.aux_el_fraction * c_kw)
        self.last = (c_kw, c_kw / s.cop_th, s.aux_el_fraction * c_kw)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        c_kw, h_kw, p = self.last
        payload = {"ts": ts, "cooling_kw": r3(c_kw), "heat_in_kw": r3(h_kw), "p_kw": r3(p)}
        return [((self.hub, "absorption_chiller", self.tech.model), payload)]
