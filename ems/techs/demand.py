"""Fixed demand of a hub for one carrier (electricity here; heat, DHW, cooling later)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Device, Key, RuleState, Technology
from ems.techs.kpi import Bar
from ems.techs.plant import BUS_LOAD, HubStep, PlantDevice, r3

HEAT_CARRIERS = ("heat", "dhw")


class Demand(Technology):
    """A hub's demand of one carrier; a thermal demand is metered by a ``heat_meter`` device."""

    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("electric_load", 1, "electricity", 1),
        Bar("heating_load", 9, "heating", 1),
        Bar("dhw_load", 10),
        Bar("cooling_load", 18),
    )

    kind = "demand"
    device_kind = "heat_meter"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return DemandPlant(self)

    def __init__(
        self,
        name: str,
        hub: str,
        carrier: str,
        column: str,
        peak_kw: float | None = None,
        *,
        distribution_eta: float = 1.0,
    ) -> None:
        super().__init__(name, hub)
        self.carrier = carrier
        self.column = column
        self.peak_kw = peak_kw  # peak of the column in the design data (None: unknown)
        self.distribution_eta = distribution_eta

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        """Stage 0: the electric load; stage 2: heating (15), DHW (16) and cooling (19) loads."""
        if stage == 0:
            col = a.load_column(hub.id)
            return [cls(f"{hub.id}_load", hub.id, "electricity", col, a.peaks.get(col))]
        out: list[Technology] = []
        for c, spec in (("heat", hub.heating), ("dhw", hub.dhw), ("cooling", hub.cooling)):
            if spec is not None:
                peak = a.peaks.get(spec.column)
                out.append(
                    cls(
                        f"{hub.id}_{c}_load",
                        hub.id,
                        c,
                        spec.column,
                        peak,
                        distribution_eta=spec.distribution_eta,
                    )
                )
        return out

    @classmethod
    def hub_carriers(cls, hub: Any) -> list[str]:
        """Heating (15), DHW (16) and cooling (19): the hub's thermal demands."""
        specs = (("heat", hub.heating), ("dhw", hub.dhw), ("cooling", hub.cooling))
        return [c for c, spec in specs if spec is not None]

    def observe(self, obs: Any, inp: Any) -> None:
        """Electric load: the profile blended with the hub's load history and its estimate now;
        heat/DHW/cooling: the same with the heat meter's fresh reading."""
        st, hub, col = obs.state, self.hub, self.column
        if self.carrier == "electricity":
            hist = st.series(st.load_history.get(hub))
            inp.load_kw[hub] = obs.fc.load_kw(col, obs.times, hist, obs.loads_kw.get(hub))
            obs.forecast[f"{hub}.load_kw"] = inp.load_kw[hub]
            return
        key = f"{hub}/heat_meter/{self.carrier}"
        p, age = st.latest.get(key), obs.age_s(key)
        fresh = age is not None and age <= obs.fresh_s
        if age is not None and not fresh:
            obs.stale_in[key] = age
        measured = float(p["p_kw"]) if p is not None and fresh else None
        name = f"{hub}.{self.carrier}"
        st.record_history(obs.start, {name: measured}, {})
        hist = st.series(st.load_history.get(name))
        inp.columns[col] = obs.fc.load_kw(col, obs.times, hist, measured)
        obs.forecast[f"{name}_load_kw"] = inp.columns[col]

    def bound_kw(self, role: str) -> float:
        if role == "heat_load" and self.carrier in HEAT_CARRIERS:
            return float(self.peak_kw or 0.0) / self.distribution_eta
        return 0.0

    def cover_terms(self, carrier: str) -> list | None:
        return []

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        load = ctx.param(blk, "load_kw", ctx.series(self.column))
        # seeds (15), (16), (19): Σ generation × η_distribution = demand at the buildings
        eta = self.distribution_eta
        bar = f"{'electric' if self.carrier == 'electricity' else self.carrier}_load"
        bar = "heating_load" if self.carrier == "heat" else bar
        self.port(ctx, self.carrier, "load", lambda p, t: -load[p, t] / eta, bar=bar, sign=-1)

    def update(self, load_kw: Sequence[float]) -> None:
        """Operation: set the load forecast over the horizon (values only, no rebuild)."""
        assert self.block is not None, "build the model first"
        _set_series(self.block.load_kw, load_kw, f"{self.name}.load_kw", lo=0.0)

    # ---- operation interface
    def data_columns(self) -> list[str]:
        return [self.column]

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:
        self.update(frame[self.column])

    def installed(self) -> bool:
        return self.carrier != "electricity"  # the electric load is metered by the grid meter

    def operated(self) -> bool:
        return True

    def devices(self) -> list[Device]:
        return [(self.hub, "heat_meter", self.carrier, None)] if self.installed() else []

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        name = "load_kw" if self.carrier == "electricity" else f"{self.carrier}_load_kw"
        return {f"{self.hub}.{name}": self.values(self.block.load_kw, keys)}

    def fallback_passes(self):  # noqa: ANN201
        return [((0.0,), self._rule)]

    def _rule(self, st: RuleState) -> list:
        if self.carrier in HEAT_CARRIERS:
            st.heat_kw += st.col(self.column) / self.distribution_eta
        elif self.carrier == "cooling":
            st.cooling_kw += st.col(self.column) / self.distribution_eta
        return []

    def forecast_net_kw(self, rule: RuleState) -> float:
        return rule.col(self.column) if self.carrier == "electricity" else 0.0

    def can_supply_electricity(self) -> bool:
        return False


def _set_series(
    par: pyo.Param,
    values: Sequence[float],
    what: str,
    lo: float | None = None,
    hi: float | None = None,
) -> None:
    """Write one value per horizon step into a (period, step)-indexed mutable Param."""
    keys = list(par.keys())
    vals = [float(v) for v in values]
    if len(vals) != len(keys):
        raise ValueError(f"{what}: {len(vals)} values for a horizon of {len(keys)} steps")
    for k, v in zip(keys, vals, strict=False):
        if v != v:  # NaN never reaches the solver
            raise ValueError(f"{what}: NaN at step {k[-1]}")
        if lo is not None:
            v = max(v, lo)
        if hi is not None:
            v = min(v, hi)
        par[k] = v


class DemandPlant(PlantDevice):
    """A demand in the simulated plant: the drawn column (electric load: per hub, × AR(1) noise
    of σ 6 %; thermal: × AR(1) noise of σ 8 %), metered by the heat meter (thermal)."""

    rows = ("load_kw",)

    def __init__(self, tech: Demand) -> None:
        super().__init__(tech)
        self.thermal_side = tech.carrier != "electricity"
        self.metered: float | None = None

    def exo_columns(self) -> list[tuple[str, str, str]]:
        t = self.tech
        if self.thermal_side:
            return [("thermal", t.column, t.column)]
        return [("load", t.column, f"load:{t.hub}")]

    def demand(self, hs: HubStep) -> None:
        if not self.thermal_side:
            return
        v = hs.col(self.tech.column)
        if self.tech.carrier in HEAT_CARRIERS:
            hs.sums.add("heat_demand", 0, v)
            hs.sums.add("heat_use", 0, -v)
            hs.rows.add("heat_load_kw", 0, v)
        elif self.tech.carrier == "cooling":
            hs.sums.add("cool_demand", 0, v)
            hs.rows.add("cooling_load_kw", 0, v)

    def record(self, hs: HubStep) -> None:
        if self.thermal_side:
            self.metered = hs.col(self.tech.column)

    def el_step(self, hs: HubStep) -> None:
        if self.thermal_side:
            return
        load = hs.col(f"load:{self.hub}")
        hs.sums.add("bus", BUS_LOAD, load)
        hs.sums.add("surplus", 2, -load)
        hs.rows.add("load_kw", 0, load)

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        if not self.thermal_side:
            return []
        p = self.metered if self.metered is not None else col(self.tech.column, max(i - 1, 0))
        return [((self.hub, "heat_meter", self.tech.carrier), {"ts": ts, "p_kw": r3(max(p, 0.0))})]

    def to_dict(self) -> dict[str, Any]:
        return {"metered": self.metered}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.metered = d.get("metered")
