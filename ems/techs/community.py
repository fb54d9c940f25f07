"""Community-level rules: the seed's flat incentive (:class:`VirtualCommunity`) and the DM 414/2023
incentive by the ledger's rules (:class:`CacerCommunity`).

Virtual community (CER), seed eq. (22): the hourly shared energy is min(Σ_h export, Σ_h import)
over the hubs of the configuration; it earns the incentive. Modelled as ``shared ≤ Σ export``
and ``shared ≤ Σ import`` with the incentive as a revenue, so the optimum sits on the minimum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.base import Key, Technology
from ems.techs.grid import Grid


class VirtualCommunity(Technology):
    kind = "virtual_community"

    def __init__(self, grids: list[Grid], incentive_eur_per_mwh: float) -> None:
        super().__init__("community", "community")
        self.grids = grids
        self.incentive_eur_per_mwh = incentive_eur_per_mwh

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        s = a.scenario
        if s.community != "virtual" or s.prices.incentive_eur_per_mwh <= 0:
            return []
        return [cls(a.of(Grid), s.prices.incentive_eur_per_mwh)]

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        bound = sum(g.contract_kw for g in self.grids)
        blk.shared_kw = pyo.Var(ctx.T, domain=pyo.NonNegativeReals, bounds=(0, bound))
        blk.incentive_eur_per_kwh = pyo.Param(
            initialize=self.incentive_eur_per_mwh / 1000.0, mutable=True
        )
        blk.le_export = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: b.shared_kw[p, t] <= sum(g.export_kw(p, t) for g in self.grids),
        )
        blk.le_import = pyo.Constraint(
            ctx.T,
            rule=lambda b, p, t: b.shared_kw[p, t] <= sum(g.import_kw(p, t) for g in self.grids),
        )

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        ctx.add_cost(
            "revenue_incentive",
            sum(ctx.weight(p) * blk.incentive_eur_per_kwh * blk.shared_kw[p, t] for p, t in ctx.T),
        )

    # ---- operation interface
    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {"community.shared_kw": self.values(self.block.shared_kw, keys)}

    def can_supply_electricity(self) -> bool:
        return False


@dataclass(frozen=True)
class CacerPlant:
    """A hub's renewable plant for the TIP (one POD): band, FC, F, whether it earns the TIP."""

    hub: str
    cabina: str
    power_kw: float
    fc_eur_per_mwh: float
    f_factor: float
    earns_tip: bool  # False: pre-existing (before 16 Dec 2021), valorisation only


class CacerCommunity(Technology):
    """The DM 414/2023 incentive by the ledger's rules (:mod:`ems.accounting.rules`), per hour:

    * shared energy per plant ``s_h ≤ export_h`` and ``s_h ≤ PV_h`` — only renewable injection
      counts (a CHP's or a battery's export from the grid is not a renewable plant's), a bound
      of the ledger's POD injection that is exact for a hub with PV and no battery export;
    * per cabina ``Σ_{plants in c} s_h ≤ Σ_{hubs in c} import_h`` (withdrawals);
    * revenue ``Σ s_h × (TIP_h(Pz) × (1 − F_h) + valorisation)``, TIP from
      :func:`~ems.accounting.rules.tip_rate` (band by ``power_kw``, Pz of the hour, FC) and F from
      :func:`~ems.accounting.rules.grant_factor`.

    With several plants in a cabina the optimum attributes the shared energy to the dearest plant
    first; the ledger attributes by entry into service (TIAD): the model's incentive is then an
    upper bound of the ledger's, equal when the rates agree or one plant per cabina.
    F applies to a granted plant's whole shared energy: where F-exempt members withdraw, the
    ledger (DM 127/2025) pays more than the model (a lower bound there).
    """

    kind = "cacer_community"

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        """The DM 414 incentive of a virtual community: one plant per hub with PV (its POD), its
        power band from ``plant.power_kw`` or the hub's PV maximum, FC from the region, F from
        the grant, TIP unless it entered service before 16 Dec 2021 (the seed's flat incentive,
        :class:`VirtualCommunity`, takes precedence when given)."""
        from ems.accounting import rules
        from ems.accounting.config import PRE_EXISTING_BEFORE
        from ems.config.schema import PlantSpec
        from ems.techs.pv import Photovoltaic

        s = a.scenario
        if s.community != "virtual" or s.prices.incentive_eur_per_mwh > 0 or s.incentive is None:
            return []
        pv = {h.id: a.at(h.id, Photovoltaic) for h in s.hubs}
        plants = []
        for hub in s.hubs:
            if not pv[hub.id]:
                continue
            spec = hub.plant or PlantSpec()
            power = spec.power_kw or sum(max(t.max_kwp, t.existing_kwp) for t in pv[hub.id])
            entry = spec.entry_into_service
            pre_existing = entry is not None and entry < PRE_EXISTING_BEFORE
            plants.append(
                CacerPlant(
                    hub.id,
                    hub.cabina_primaria,
                    power,
                    float(rules.fc_eur_per_mwh("pv", s.incentive.region)),
                    float(rules.grant_factor(spec.capital_grant_pct)),
                    not pre_existing,
                )
            )
        return [
            cls(
                a.of(Grid),
                pv,
                plants,
                {h.id: h.cabina_primaria for h in s.hubs},
                s.incentive.pz_column,
                s.incentive.valorisation_eur_per_mwh,
                # operation: Pz per step from the sale price when the sale is the zonal price
                sale_factor=s.prices.sale_factor
                if s.prices.sale_column == s.incentive.pz_column and s.prices.sale_factor > 0
                else None,
            )
        ]

    def __init__(
        self,
        grids: list[Grid],
        pv: dict[str, list[Technology]],
        plants: list[CacerPlant],
        cabina_of: dict[str, str],
        pz_column: str,
        valorisation_eur_per_mwh: float,
        sale_factor: float | None = None,
    ) -> None:
        super().__init__("community", "community")
        self.grids = {g.hub: g for g in grids}
        self.pv = pv
        self.plants = [p for p in plants if pv.get(p.hub)]
        self.cabina_of = cabina_of
        self.pz_column = pz_column
        self.valorisation_eur_per_mwh = valorisation_eur_per_mwh
        self.sale_factor = sale_factor

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:
        from ems.accounting import rules

        hubs = [p.hub for p in self.plants]
        blk.H = pyo.Set(initialize=hubs, ordered=True)
        pz = ctx.series(self.pz_column)
        blk.tip_eur_per_kwh = pyo.Param(
            blk.H,
            ctx.T,
            mutable=True,
            initialize={
                (p.hub, *k): float(rules.tip_rate(p.power_kw, pz[k], p.fc_eur_per_mwh)) / 1000.0
                if p.earns_tip
                else 0.0
                for p in self.plants
                for k in ctx.grid.index()
            },
        )
        blk.one_minus_f = pyo.Param(
            blk.H, initialize={p.hub: 1.0 - p.f_factor for p in self.plants}
        )
        blk.valorisation_eur_per_kwh = pyo.Param(
            initialize=self.valorisation_eur_per_mwh / 1000.0, mutable=True
        )
        bound = {h: self.grids[h].contract_kw for h in hubs}
        blk.shared_plant_kw = pyo.Var(
            blk.H, ctx.T, domain=pyo.NonNegativeReals, bounds=lambda b, h, p, t: (0, bound[h])
        )

        def pv_kw(h: str, p: str, t: int):  # noqa: ANN202 - pyomo expression
            return sum(
                term(p, t)
                for tech in self.pv[h]
                for carrier, _label, term in tech.flows
                if carrier == "electricity"
            )

        blk.le_export = pyo.Constraint(
            blk.H,
            ctx.T,
            rule=lambda b, h, p, t: b.shared_plant_kw[h, p, t] <= self.grids[h].export_kw(p, t),
        )
        blk.le_renewable = pyo.Constraint(
            blk.H, ctx.T, rule=lambda b, h, p, t: b.shared_plant_kw[h, p, t] <= pv_kw(h, p, t)
        )
        cabine = sorted({p.cabina for p in self.plants})
        blk.C = pyo.Set(initialize=cabine, ordered=True)
        members = {c: [h for h, cc in self.cabina_of.items() if cc == c] for c in cabine}
        producers = {c: [p.hub for p in self.plants if p.cabina == c] for c in cabine}
        blk.le_withdrawn = pyo.Constraint(
            blk.C,
            ctx.T,
            rule=lambda b, c, p, t: (
                sum(b.shared_plant_kw[h, p, t] for h in producers[c])
                <= sum(self.grids[h].import_kw(p, t) for h in members[c] if h in self.grids)
            ),
        )
        blk.shared_kw = pyo.Expression(
            ctx.T, rule=lambda b, p, t: sum(b.shared_plant_kw[h, p, t] for h in b.H)
        )
        blk.tip_gross_eur = pyo.Expression(
            expr=sum(
                ctx.weight(p) * blk.tip_eur_per_kwh[h, p, t] * blk.shared_plant_kw[h, p, t]
                for h in hubs
                for p, t in ctx.T
            )
        )
        blk.tip_eur = pyo.Expression(
            expr=sum(
                ctx.weight(p)
                * blk.tip_eur_per_kwh[h, p, t]
                * blk.one_minus_f[h]
                * blk.shared_plant_kw[h, p, t]
                for h in hubs
                for p, t in ctx.T
            )
        )
        blk.valorisation_eur = pyo.Expression(
            expr=sum(
                ctx.weight(p) * blk.valorisation_eur_per_kwh * blk.shared_kw[p, t] for p, t in ctx.T
            )
        )

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:
        ctx.add_cost("revenue_incentive", blk.tip_eur + blk.valorisation_eur)

    # ---- operation interface
    def data_columns(self) -> list[str]:
        """Operation: the TIP's Pz follows the step's sale price (= sale_factor × Pz) when the
        scenario sells at the zonal price; otherwise the forecast of the Pz column (the profile
        year, the live feed where it covers a step: ``OperationService._other_columns``)."""
        return ["price_sell_eur_per_kwh"] if self.sale_factor else [self.pz_column]

    def build_value(self, column: str) -> float:
        return 100.0  # €/MWh until the first step's forecast

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:
        from ems.accounting import rules

        if self.block is None:
            return
        blk = self.block
        if self.sale_factor:
            pz = [float(v) * 1000.0 / self.sale_factor for v in frame["price_sell_eur_per_kwh"]]
        else:
            pz = [float(v) for v in frame[self.pz_column]]
        keys = [k for k in blk.shared_kw]
        if len(pz) != len(keys):
            raise ValueError(f"community.pz: {len(pz)} values for a horizon of {len(keys)} steps")
        for p in self.plants:
            for k, z in zip(keys, pz, strict=True):
                rate = rules.tip_rate(p.power_kw, z, p.fc_eur_per_mwh) if p.earns_tip else 0
                blk.tip_eur_per_kwh[(p.hub, *k)] = float(rate) / 1000.0

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        assert self.block is not None
        return {"community.shared_kw": self.values(self.block.shared_kw, keys)}

    def can_supply_electricity(self) -> bool:
        return False
