"""Connection of a hub to the public grid: purchase, sale, contract power, CO2 of imports.

Import and export are exclusive (a binary per step) only when the builder says simultaneous
import and export could pay (shared-energy incentive, or a sale price that can exceed the
purchase price); otherwise buying dear and selling cheap at once is never optimal and the LP
keeps them apart by itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Device, Key, Technology
from ems.techs.dashboard import Panel, Series
from ems.techs.kpi import Bar, KpiRow
from ems.techs.plant import HubStep, PlantDevice


class Grid(Technology):
    energy_bars = (  # the bars of the hub-energy report its flows feed
        Bar("grid_import", 4, "electricity", 4),
        Bar("grid_export", 5, "electricity", 5),
    )

    kind = "grid"
    grid_connection = True
    device_kind = "meter"
    device_role = "meter"
    panels = (
        Panel(
            "community",
            "Grid import per hub",
            "kW",
            (Series("import_p_kw", "$tag_hub", by=("hub",)),),
            order=10,
        ),
        Panel(
            "community",
            "Grid export per hub",
            "kW",
            (Series("export_p_kw", "$tag_hub", by=("hub",)),),
            order=11,
        ),
        Panel(
            "community",
            "Load per hub (measured and forecast)",
            "kW",
            (
                Series("load_p_kw", "$tag_hub measured", by=("hub",)),
                Series("p_kw", "$tag_hub forecast", "forecast", "load", by=("hub",)),
            ),
            order=13,
        ),
        Panel(
            "hub",
            "Grid exchange",
            "kW",
            (
                Series("import_p_kw", "import", by=()),
                Series("export_p_kw", "export", by=()),
            ),
            order=90,
            wide=True,
        ),
    )
    #: MQTT id of a hub's POD meter: ``<hub>/meter/main``.
    DEVICE_ID = "main"

    def plant_device(self) -> Any:
        """Its physics in the simulated plant (:mod:`ems.techs.plant`)."""
        return GridPlant(self)

    def __init__(
        self,
        name: str,
        hub: str,
        contract_kw: float,
        exclusive: bool,
        buy_column: str = "price_buy_eur_per_kwh",
        sell_column: str = "price_sell_eur_per_kwh",
        co2_t_per_mwh: float = 0.2583,
    ) -> None:
        super().__init__(name, hub)
        self.contract_kw = contract_kw
        self.exclusive = exclusive
        self.buy_column, self.sell_column = buy_column, sell_column
        self.co2_t_per_mwh = co2_t_per_mwh

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        blk.contract_kw = pyo.Param(initialize=self.contract_kw, mutable=True)
        blk.p_import_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.contract_kw))
        blk.p_export_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, self.contract_kw))
        ctx.param(blk, "price_buy", ctx.series(self.buy_column))
        ctx.param(blk, "price_sell", ctx.series(self.sell_column))
        blk.import_limit = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_import_kw[p, t] <= b.contract_kw
        )
        blk.export_limit = pyo.Constraint(
            ctx.T, rule=lambda b, p, t: b.p_export_kw[p, t] <= b.contract_kw
        )
        if self.exclusive:
            # big-M = contract power (data, not 1e6)
            blk.is_importing = pyo.Var(ctx.T, domain=pyo.Binary)
            blk.import_excl = pyo.Constraint(
                ctx.T,
                rule=lambda b, p, t: b.p_import_kw[p, t] <= self.contract_kw * b.is_importing[p, t],
            )
            blk.export_excl = pyo.Constraint(
                ctx.T,
                rule=lambda b, p, t: (
                    b.p_export_kw[p, t] <= self.contract_kw * (1 - b.is_importing[p, t])
                ),
            )
        imp = lambda p, t: blk.p_import_kw[p, t]  # noqa: E731
        self.port(ctx, "electricity", "grid import", imp, bar="grid_import")
        exp = lambda p, t: -blk.p_export_kw[p, t]  # noqa: E731
        self.port(ctx, "electricity", "grid export", exp, bar="grid_export", sign=-1)

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        ctx.add_cost(
            "energy",
            sum(ctx.weight(p) * blk.price_buy[p, t] * blk.p_import_kw[p, t] for p, t in ctx.T),
        )
        ctx.add_cost(
            "revenue_sale",
            sum(ctx.weight(p) * blk.price_sell[p, t] * blk.p_export_kw[p, t] for p, t in ctx.T),
        )
        ctx.add_co2(
            sum(
                ctx.weight(p) * self.co2_t_per_mwh / 1000.0 * blk.p_import_kw[p, t]
                for p, t in ctx.T
            )
        )

    def update(
        self, price_buy: Sequence[float] | None = None, price_sell: Sequence[float] | None = None
    ) -> None:
        """Operation: purchase and sale prices (€/kWh) over the horizon; values only."""
        from ems.techs.demand import _set_series

        assert self.block is not None, "build the model first"
        if price_buy is not None:
            _set_series(self.block.price_buy, price_buy, f"{self.name}.price_buy")
        if price_sell is not None:
            _set_series(self.block.price_sell, price_sell, f"{self.name}.price_sell")

    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        co2 = a.scenario.emissions.grid_t_per_mwh
        return [cls(f"{hub.id}_grid", hub.id, hub.contract_kw, a.exclusive_grid, co2_t_per_mwh=co2)]

    def cover_terms(self, carrier: str) -> list | None:
        b = self.block
        return [lambda p, t: b.p_import_kw[p, t]] if carrier == "electricity" else []

    # ---- operation interface
    def data_columns(self) -> list[str]:
        return [self.buy_column, self.sell_column]

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:
        self.update(frame[self.buy_column], frame[self.sell_column])

    def devices(self) -> list[Device]:
        return [(self.hub, "meter", self.DEVICE_ID, self.contract_kw)]

    def metered_import_kw(self, state: Any) -> float | None:
        """Import − export power of the POD meter's latest reading (None: no reading yet)."""
        key = (self.hub, "meter", self.DEVICE_ID)
        if "/".join(key) not in state.latest:
            return None
        return state.value(key, "import_p_kw") - state.value(key, "export_p_kw")

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        b = self.block
        assert b is not None
        return {
            f"{self.hub}.import_kw": self.values(b.p_import_kw, keys),
            f"{self.hub}.export_kw": self.values(b.p_export_kw, keys),
        }

    def can_supply_electricity(self) -> bool:
        return False

    def close_export(self, keys: list[Key]) -> bool:
        assert self.block is not None
        for k in keys:
            self.block.p_export_kw[k].setub(0.0)
        return True

    # for the community rules
    def import_kw(self, p: str, t: int):  # noqa: ANN201 - pyomo expression
        assert self.block is not None
        return self.block.p_import_kw[p, t]

    def export_kw(self, p: str, t: int):  # noqa: ANN201
        assert self.block is not None
        return self.block.p_export_kw[p, t]


class GridPlant(PlantDevice):
    """The POD in the simulated plant: the inverters' export limiter (PV cut to the contract
    power), then the import/export energy counters of the meter."""

    kpi_table_rows = (  # its rows of the simulated day's KPI table
        KpiRow("cost_eur", "energy cost (purchase − sale)", "€", 2, 1),
        KpiRow("incentive_eur", "shared-energy incentive", "€", 2, 2),
        KpiRow("net_cost_eur", "net cost", "€", 2, 3),
        KpiRow("grid_import_kwh", "grid import", "kWh", 1, 5),
        KpiRow("shared_kwh", "shared energy (hourly)", "kWh", 1, 7),
    )

    rows = ("import_kw", "export_kw")
    kpis_order = 0.0

    def __init__(self, tech: Grid) -> None:
        super().__init__(tech)
        self.counters = [1000.0, 1000.0]  # import kWh, export kWh
        self.net_kw = 0.0

    def meter(self, hs: HubStep, net_kw: float) -> float:
        net, pv = net_kw, hs.sums.total("generation")
        contract = self.tech.contract_kw
        if net < -contract and pv > 0:
            cut = min(pv, -contract - net)
            net = net + cut
            hs.sums.add("surplus", 1, -cut)  # the PV actually produced
            hs.rows.add("pv_kw", 1, -cut)
        self.counters[0] += max(net, 0.0) * hs.dt_h
        self.counters[1] += max(-net, 0.0) * hs.dt_h
        self.net_kw = net
        hs.rows.add("import_kw", 0, max(net, 0.0))
        hs.rows.add("export_kw", 0, max(-net, 0.0))
        return net

    def telemetry(self, ts: str, i: int, col: Any) -> list:
        imp, exp = self.counters
        net = self.net_kw
        payload = {
            "ts": ts,
            "import_p_kw": round(max(net, 0), 3),
            "export_p_kw": round(max(-net, 0), 3),
            "import_e_kwh": round(imp, 4),
            "export_e_kwh": round(exp, 4),
        }
        return [((self.hub, "meter", self.tech.DEVICE_ID), payload)]

    def to_dict(self) -> dict[str, Any]:
        return {"counters": self.counters, "net_kw": self.net_kw}

    def load_dict(self, d: dict[str, Any]) -> None:
        self.counters, self.net_kw = list(d["counters"]), float(d["net_kw"])

    @classmethod
    def kpis(cls, devices: list[Any], df: Any, dt_h: float, hubs: list[str], out: dict) -> None:
        """Cost at the simulated prices, grid energy and the hourly shared energy
        (min(Σ export, Σ import) of each hour) with its incentive (``incentive_eur_per_mwh``)."""
        imp = sum(df[f"{h}.import_kw"] for h in hubs)
        exp = sum(df[f"{h}.export_kw"] for h in hubs)
        cost = float((imp * df.price_buy - exp * df.price_sell).sum() * dt_h)
        hour = df["i"] // int(round(1 / dt_h))
        shared = float(
            pd.concat([imp * dt_h, exp * dt_h], axis=1)
            .groupby(hour.to_numpy())
            .sum()
            .min(axis=1)
            .sum()
        )
        incentive = shared * out.pop("incentive_eur_per_mwh") / 1000.0
        out.update(
            cost_eur=cost,
            net_cost_eur=cost - incentive,
            grid_import_kwh=float(imp.sum() * dt_h),
            grid_export_kwh=float(exp.sum() * dt_h),
            shared_kwh=shared,
            incentive_eur=incentive,
        )
