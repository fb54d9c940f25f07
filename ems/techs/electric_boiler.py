"""Power-to-heat: an electric boiler or resistive heater (electrode boiler, immersion heaters).

CERs use it to absorb surplus PV into the heating loop instead of selling it cheaply (or
curtailing): heat q = η × electric input, Σ_carriers q ≤ installed thermal capacity, sized in
design mode in integer steps of ``step_kw`` (kW of heat) like the gas boiler, dispatched in
operation mode with an electric-power setpoint. No fuel, no CO2 of its own: its electricity goes
through the hub's balance (grid import or local generation), so its cost and emissions are the
grid's or nothing when it runs on surplus.

Rule-based fallback: it takes the hub's electric surplus left after the CHP and the heat pumps,
up to the heat still to cover and its capacity, before the gas boilers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import ElectricBoilerSpec
from ems.model.context import BuildContext
from ems.techs._plant import KeepsLast, RowKpis
from ems.techs._sized import StepSized
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import EX_EBOILER, HEAT_EBOILER, HubStep, PlantDevice, r3


class ElectricBoiler(StepSized):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("eboiler_el", 21),
        Bar("eboiler_heat", 22, "heating", 5),
    )

    kind = "electric_boiler"
    device_kind = "electric_boiler"
    size_item = "electric boiler"
    hub_field = "electric_boilers"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return ElectricBoilerPlant(self) if self.installed() else None

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        return cls.steps_from_hub(a, hub, ElectricBoilerSpec, "electric_boilers")

    # ---- build
    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        label = f"electric boiler {self.model}"
        self.add_heat_output(ctx, blk, "p_el_kw", label, "eboiler_heat")
        el = lambda p, t: -blk.p_el_kw[p, t]  # noqa: E731
        self.port(ctx, "electricity", label, el, bar="eboiler_el", sign=-1)

    # ---- bounds and cuts
    def bound_kw(self, role: str) -> float:
        assert self.size_kw is not None
        return self.size_kw.ub / self.spec.eta if role == "el_flex" else 0.0

    # ---- operation (device id = the catalogue model; setpoint = electric power)
    def devices(self) -> list[Device]:
        return [(self.hub, "electric_boiler", self.model, self.size_kw_now() / self.spec.eta)]

    def setpoints(self, k0: Key) -> list[Raw]:
        b = self.block
        assert b is not None
        return [
            (self.hub, "electric_boiler", self.model, {"p_kw": rnd_pos(pyo.value(b.p_el_kw[k0]))})
        ]

    def fallback_passes(self):  # noqa: ANN201
        return [((45.0,), self._rule)]

    def _rule(self, st: RuleState) -> list[Raw]:
        """Absorb the hub's electric surplus into the heat still to cover (before gas boilers)."""
        surplus_kw = max(-st.net_el_kw, 0.0)
        q = min(st.heat_kw, self.size_kw_now(), surplus_kw * self.spec.eta)
        p = q / self.spec.eta
        st.heat_kw -= q
        st.net_el_kw += p
        return [(self.hub, "electric_boiler", self.model, {"p_kw": rnd_pos(p)})]

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        return {
            f"{self.hub}.eboiler_kw": self.values(b.p_el_kw, keys),
            f"{self.hub}.eboiler_heat_kw": sum(self.values(b.q_kw, keys, (c,)) for c in b.C),
        }

    def measured_el_kw(self, state: Any) -> float:
        return -state.value((self.hub, "electric_boiler", self.model), "p_kw")

    # ---- contract tests (tests/techs/test_contract.py: its data columns load1, heat1, yield)
    @classmethod
    def contract_hub(cls) -> tuple[dict[str, Any], dict[str, Any]] | None:
        hub = {
            "id": "h1",
            "contract_kw": 300.0,
            "electricity": {"column": "load1"},
            "pv": [{"type": "pv", "max_kwp": 0.0, "existing_kwp": 200.0}],
            "heating": {"column": "heat1"},
            "boilers": [{"type": "boil", "existing_kw": 300.0}],
            "electric_boilers": [{"type": "eb", "max_kw": 100.0}],
        }
        entry = {"kind": "electric_boiler", "eta": 0.99, "capex_eur_per_kw": 1.0, "lifetime_y": 10}
        return hub, {"eb": entry}


class ElectricBoilerPlant(KeepsLast, RowKpis, PlantDevice):
    """The electric boiler in the simulated plant: heat = η × the setpoint's electric power (or
    the rule's), within its thermal capacity; on a heat surplus it turns down after the gas
    boilers and before the CHP. Its electricity is drawn from the hub's bus."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("eboiler_kwh", "electric-boiler electricity", "kWh", 1, 24.5),
    )

    rows = ("eboiler_kw", "eboiler_heat_kw")
    thermal = True
    turndown_order = 1.0
    kpi_rows = {"eboiler_kwh": "eboiler_kw"}

    def __init__(self, tech: ElectricBoiler) -> None:
        super().__init__(tech)
        self.q = 0.0
        self.last = (0.0, 0.0)  # P_el, heat

    def run(self, hs: HubStep) -> None:
        eb = self.tech
        key = (self.hub, "electric_boiler", eb.model)
        p = hs.setpoint(key, "p_kw")
        if p is None:
            p = hs.rules.get(key, {}).get("p_kw", 0.0)
        self.q = min(max(float(p), 0.0) * eb.spec.eta, eb.size_kw_now())
        hs.sums.add("heat_supply", HEAT_EBOILER, self.q)

    def turndown(self, hs: HubStep, r: float) -> float:
        cut = min(r, self.q)
        self.q -= cut
        return r - cut

    def record(self, hs: HubStep) -> None:
        p = self.q / self.tech.spec.eta
        hs.rows.add("eboiler_kw", 0, p)
        hs.rows.add("eboiler_heat_kw", 0, self.q)
        hs.sums.add("el_exchange", EX_EBOILER, p)
        self.last = (p, self.q)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        p, q = self.last
        return [
            (
                (self.hub, "electric_boiler", self.tech.model),
                {"ts": ts, "p_kw": r3(p), "heat_kw": r3(q)},
            )
        ]
