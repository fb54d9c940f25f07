"""Reversible air/water heat pump in identical units (seed §3.2.3.1).

Per step and mode k (heating, DHW, cooling): integer units in that mode u_k, Σ_k u_k ≤ n (one mode
per unit per step); output q_k ≤ capacity_k(T_amb)·u_k; electric input = q_k / COP_k(T_amb).
COP and capacity are mutable Params computed from the outdoor temperature column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.config.schema import HeatPumpSpec
from ems.model.context import BuildContext
from ems.techs._plant import RowKpis
from ems.techs._sized import UnitSized
from ems.techs._units import indexed_param
from ems.techs.base import Device, Key, Raw, RuleState, Technology, rnd_pos
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import HEAT_HP, HubStep, PlantDevice, r3

MODE_CARRIER = {"heating": "heat", "dhw": "dhw", "cooling": "cooling"}
#: Outdoor temperature written into the operation model when it is built: every capacity is at
#: its rated value at or above 7 °C, so the output variables' bounds (computed from the data at
#: build time) stay valid for every temperature the step updates bring.
BUILD_T_AMB_C = 20.0


def cop_and_capacity(spec: HeatPumpSpec, mode: str, t_amb_c: float) -> tuple[float, float]:
    """(COP or EER, output capacity per unit in kW) at outdoor temperature ``t_amb_c``."""
    if mode == "cooling":
        eer = spec.eer * (1.0 - spec.eer_slope_per_k * (t_amb_c - 35.0))
        return max(eer, 1.0), spec.cool_kw
    cop = spec.cop_heat * (1.0 + spec.cop_slope_per_k * (t_amb_c - 7.0))
    if mode == "dhw":
        cop *= spec.dhw_cop_factor
    cap = spec.heat_kw * (1.0 - spec.heat_cap_slope_per_k * max(0.0, 7.0 - t_amb_c))
    return max(cop, 1.0), max(cap, 0.0)


# --------------------------------------------------------------------------- the rule-based fallback
@dataclass(frozen=True)
class HpUnits:
    """One heat-pump model at a hub at the current outdoor temperature: n units, one mode each."""

    model: str
    n_units: int
    modes: tuple[str, ...]
    cop_heat: float = 3.0
    heat_kw: float = 0.0  # capacity per unit (heating)
    eer: float = 3.0
    cool_kw: float = 0.0  # capacity per unit (cooling)


def hp_units(
    given: list[tuple[str, int, str, float, float]],
    hps: list[HpUnits],
    free: dict[str, int],
    mode: str,
    left_kw: float,
) -> float:
    """The rule-based fallback (SPEC §4): give ``mode`` (cooling or heating) whole heat-pump
    units from those still ``free`` until ``left_kw`` is covered; appends (model, unit 1.., mode,
    p_el_kw, q_kw) to ``given``; returns what is left."""
    for hp in hps:
        q_unit, eff = (hp.cool_kw, hp.eer) if mode == "cooling" else (hp.heat_kw, hp.cop_heat)
        if mode not in hp.modes or q_unit <= 0 or left_kw <= 1e-9:
            continue
        for _ in range(min(free[hp.model], math.ceil(left_kw / q_unit - 1e-9))):
            q = min(left_kw, q_unit)
            given.append((hp.model, hp.n_units - free[hp.model] + 1, mode, q / eff, q))
            free[hp.model] -= 1
            left_kw -= q
    return left_kw


class HeatPump(UnitSized):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("hp_el", 8),
        Bar("hp_heat", 14, "heating", 3),
        Bar("hp_cooling", 19),
    )

    kind = "heat_pump"
    device_kind = "heat_pump"
    size_item, size_key, size_unit = "heat pump", "kwe", "kWe"
    hub_field = "heat_pumps"
    reads_weather = True

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return HeatPumpPlant(self) if self.installed() else None

    def __init__(
        self,
        name: str,
        hub: str,
        model: str,
        spec: HeatPumpSpec,
        max_units: int,
        *,
        modes: list[str],
        existing_units: int = 0,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name, hub, model, spec, max_units, existing_units=existing_units, fixed=fixed
        )
        self.modes = [m for m in spec.modes if m in modes]

    def unit_kw(self) -> float:
        return self.spec.p_el_kw

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        n = self.n
        assert n is not None
        temp = ctx.series(self.spec.temperature_column)
        el_per_kwh: dict[tuple[str, str, int], float] = {}
        cap: dict[tuple[str, str, int], float] = {}
        for k in self.modes:
            for (p, t), tc in temp.items():
                c, q = cop_and_capacity(self.spec, k, tc)
                el_per_kwh[(k, p, t)] = 1.0 / c
                cap[(k, p, t)] = q
        inv = indexed_param(ctx, blk, "el_per_kwh_out", self.modes, el_per_kwh)
        capacity = indexed_param(ctx, blk, "capacity_kw_per_unit", self.modes, cap)
        M = blk.component("el_per_kwh_out_set")
        n_max = n.ub_units
        q_bound = n_max * max(max(cap.values(), default=0.0), 1e-9)
        blk.u_mode = pyo.Var(M, ctx.T, domain=pyo.NonNegativeIntegers, bounds=(0, n_max))
        blk.q_kw = pyo.Var(M, ctx.T, domain=pyo.NonNegativeReals, bounds=(0, q_bound))
        blk.one_mode = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: sum(b.u_mode[k, p, t] for k in M) <= n.units
        )
        blk.capacity = pyo.Constraint(
            M,
            ctx.T,
            rule=lambda b, k, p, t: b.q_kw[k, p, t] <= capacity[k, p, t] * b.u_mode[k, p, t],
        )
        blk.p_el_kw = pyo.Expression(
            ctx.T, rule=lambda b, p, t: sum(inv[k, p, t] * b.q_kw[k, p, t] for k in M)
        )
        label = f"HP {self.model}"
        bars = {"heat": "hp_heat", "cooling": "hp_cooling"}
        for k in self.modes:
            c = MODE_CARRIER[k]
            self.port(ctx, c, label, lambda p, t, k=k: blk.q_kw[k, p, t], bar=bars.get(c))
        self.port(ctx, "electricity", label, lambda p, t: -blk.p_el_kw[p, t], bar="hp_el", sign=-1)

    def update(self, t_amb_c: Sequence[float]) -> None:
        """Operation: outdoor-temperature forecast (°C) over the horizon → COP and capacity per mode
        and step (values of the mutable Params only, never structure). Temperatures are clamped to
        [-30, 50] °C; the capacity never exceeds the rated one the variable bounds were built with."""
        assert self.block is not None, "build the model first"
        blk = self.block
        if not self.modes:
            return
        keys = [k for k in blk.el_per_kwh_out.keys() if k[0] == self.modes[0]]
        temps = [float(x) for x in t_amb_c]
        if len(temps) != len(keys):
            raise ValueError(
                f"{self.name}.t_amb_c: {len(temps)} values for a horizon of {len(keys)} steps"
            )
        for (_m, p, t), tc in zip(keys, temps, strict=False):
            if tc != tc:
                raise ValueError(f"{self.name}.t_amb_c: NaN at step {t}")
            tc = min(max(tc, -30.0), 50.0)
            for k in self.modes:
                c, q = cop_and_capacity(self.spec, k, tc)
                blk.el_per_kwh_out[k, p, t] = 1.0 / c
                blk.capacity_kw_per_unit[k, p, t] = q

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        carriers = a.carriers(hub)
        modes = [m for m, c in MODE_CARRIER.items() if c in carriers]
        return cls.units_from_hub(a, hub, HeatPumpSpec, "heat_pumps", modes=modes)

    def bound_kw(self, role: str) -> float:
        """Flexible use: every unit at its largest electric input (−10 °C heating, 45 °C cooling)."""
        if role != "el_flex":
            return 0.0
        assert self.n is not None
        worst = max(
            cap / cop
            for m in self.spec.modes
            for cop, cap in [
                cop_and_capacity(self.spec, m, -10.0),
                cop_and_capacity(self.spec, m, 45.0),
            ]
        )
        return self.n.ub_units * worst

    def cover_terms(self, carrier: str) -> list | None:
        if carrier != "heat":
            return []
        b, heat = self.block, [k for k in self.modes if k in ("heating", "dhw")]
        return [lambda p, t: sum(b.q_kw[k, p, t] for k in heat)]

    # ---- operation interface (one device per installed unit, id ``<model>_<i>``)
    def units(self) -> int:
        return int(round(self.installed_units()))

    def unit_ids(self) -> list[str]:
        return [f"{self.model}_{i + 1}" for i in range(self.units())] if self.modes else []

    def installed(self) -> bool:
        return self.units() > 0 and bool(self.modes)

    def data_columns(self) -> list[str]:
        return [self.spec.temperature_column]

    def build_value(self, column: str) -> float:
        return BUILD_T_AMB_C

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:
        self.update(frame[self.spec.temperature_column])

    def observe(self, obs: Any, inp: Any) -> None:
        """Outdoor temperature: the profile plus the weather station's deviation now."""
        col = self.spec.temperature_column
        if col not in inp.columns:
            inp.columns[col] = obs.fc.temperature(col, obs.times, obs.t_amb_c)
            obs.forecast[f"{col}.temperature_c"] = inp.columns[col]

    def devices(self) -> list[Device]:
        worst = max(
            cap / cop
            for m in self.modes
            for t in (-15.0, 7.0, 45.0)
            for cop, cap in [cop_and_capacity(self.spec, m, t)]
        )
        rated = max(worst, self.spec.p_el_kw)
        return [(self.hub, "heat_pump", dev, rated) for dev in self.unit_ids()]

    def setpoints(self, k0: Key) -> list[Raw]:
        """One setpoint per unit (a unit runs in one mode): the plan's units in each mode share
        that mode's output equally."""
        b, v = self.block, pyo.value
        assert b is not None
        modes: list[tuple[str, float]] = []  # per unit: (mode, P_el)
        for k in self.modes:
            u = int(round(v(b.u_mode[k, k0])))
            q = v(b.q_kw[k, k0])
            if u > 0:
                modes += [(k, q / u * v(b.el_per_kwh_out[k, k0]))] * u
        out: list[Raw] = []
        for i, dev in enumerate(self.unit_ids()):
            mode, p = modes[i] if i < len(modes) else ("off", 0.0)
            if rnd_pos(p) <= 0.0:
                mode, p = "off", 0.0  # a unit counted in a mode with no output is off
            out.append((self.hub, "heat_pump", dev, {"mode": mode, "p_kw": rnd_pos(p)}))
        return out

    def rule_units(self, t_amb_c: float) -> HpUnits:
        heat = "heating" in self.modes
        cool = "cooling" in self.modes
        cop, cap = cop_and_capacity(self.spec, "heating", t_amb_c) if heat else (3.0, 0.0)
        eer, q_cool = cop_and_capacity(self.spec, "cooling", t_amb_c) if cool else (3.0, 0.0)
        return HpUnits(self.model, self.units(), tuple(self.modes), cop, cap, eer, q_cool)

    def fallback_passes(self):  # noqa: ANN201
        """Cooling first (comfort and the chillers' backup), then heating, over all heat pumps."""
        return [((30.0,), self._rule_cooling), ((40.0,), self._rule_heating)]

    def _rule_cooling(self, st: RuleState) -> list[Raw]:
        units = self.rule_units(st.col(self.spec.temperature_column, 15.0))
        given: list[tuple[str, int, str, float, float]] = []
        free = {self.model: units.n_units}
        st.cooling_kw = hp_units(given, [units], free, "cooling", st.cooling_kw)
        st.scratch[self.name] = (units, given, free)
        return []

    def _rule_heating(self, st: RuleState) -> list[Raw]:
        units, given_list, free = st.scratch[self.name]
        st.heat_kw = hp_units(given_list, [units], free, "heating", st.heat_kw)
        given = {i: (mode, p) for _m, i, mode, p, _q in given_list}
        out: list[Raw] = []
        for i, dev in enumerate(self.unit_ids(), start=1):
            mode, p = given.get(i, ("off", 0.0))
            st.net_el_kw += rnd_pos(p)
            out.append((self.hub, "heat_pump", dev, {"mode": mode, "p_kw": rnd_pos(p)}))
        return out

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        cols = {f"{self.hub}.hp_kw": self.values(b.p_el_kw, keys)}
        for k in self.modes:
            cols[f"{self.hub}.hp_{k}_kw"] = self.values(b.q_kw, keys, (k,))
        return cols

    def can_supply_electricity(self) -> bool:
        return False

    def measured_el_kw(self, state: Any) -> float:
        return -sum(state.value((self.hub, "heat_pump", d), "p_kw") for d in self.unit_ids())


class HeatPumpPlant(RowKpis, PlantDevice):
    """A heat-pump model in the simulated plant, per unit: the setpoint's electric power × COP
    (outdoor temperature, mode), capped at the capacity of the step's temperature (and cooling
    at the cooling demand left)."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("hp_heat_kwh", "heat-pump heat", "kWh", 1, 23),
        KpiRow("hp_cooling_kwh", "heat-pump cooling", "kWh", 1, 23.5),
    )

    rows = ("hp_kw", "hp_heat_kw", "hp_cooling_kw")
    thermal = True
    kpi_rows = {"hp_heat_kwh": "hp_heat_kw", "hp_cooling_kwh": "hp_cooling_kw"}

    def __init__(self, tech: HeatPump) -> None:
        super().__init__(tech)
        self.units: list[tuple[str, str, float, float]] = []  # (device, mode, P_el, output)
        self.last: dict[str, tuple] = {}

    def exo_columns(self) -> list[tuple[str, str, str]]:
        c = self.tech.spec.temperature_column
        return [("temperature", c, c)]

    def run(self, hs: HubStep) -> None:
        hp, self.units = self.tech, []
        for dev in hp.unit_ids():
            key = (self.hub, "heat_pump", dev)
            mode, p = hs.setpoint(key, "mode"), hs.setpoint(key, "p_kw")
            if mode is None or p is None:
                mode, p = hs.rules[key]["mode"], hs.rules[key]["p_kw"]
            q = 0.0
            if mode != "off" and mode in hp.modes and float(p) > 0:
                t = hs.temps.get(hp.spec.temperature_column, 15.0)
                cop, cap = cop_and_capacity(hp.spec, mode, t)
                q = min(float(p) * cop, cap)
                if mode == "cooling":
                    q = min(q, hs.cool_left)
                    hs.cool_left -= q
                else:
                    hs.sums.add("heat_supply", HEAT_HP, q)
                p = q / cop
            else:
                mode, p = "off", 0.0
            self.units.append((dev, mode, float(p), q))
            hs.th_el += float(p)

    def record(self, hs: HubStep) -> None:
        for dev, mode, p, q in self.units:
            hs.rows.add("hp_kw", 0, p)
            if mode == "cooling":
                hs.rows.add("hp_cooling_kw", 0, q)
            elif mode != "off":
                hs.rows.add("hp_heat_kw", 0, q)
            self.last[dev] = (mode, p, q)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        out: list = []
        for dev in self.tech.unit_ids():
            mode, p, q = self.last.get(dev, ("off", 0.0, 0.0))
            pay = {"ts": ts, "mode": mode, "p_kw": r3(p)}
            if mode != "off":
                pay["cooling_kw" if MODE_CARRIER.get(mode) == "cooling" else "heat_kw"] = r3(q)
            out.append(((self.hub, "heat_pump", dev), pay))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"last": {k: list(v) for k, v in self.last.items()}}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.last = {k: tuple(v) for k, v in d["last"].items()}
