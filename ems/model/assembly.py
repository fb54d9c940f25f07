"""From a validated scenario (and optionally fixed sizes) to technology instances.

This is the technology catalogue's wiring: adding a technology means its module plus a few lines
here. ``fixed_sizes`` (what design mode writes to ``sizes.yaml``) turns every size into a
parameter: the same model, sizes fixed (Calliope's operate mode, REopt's MPC).
"""

from __future__ import annotations

from typing import Any

from ems.accounting.config import PRE_EXISTING_BEFORE
from ems.config.schema import (
    AbsorptionChillerSpec,
    BatterySpec,
    BoilerSpec,
    Catalogue,
    ChargerSpec,
    ChpSpec,
    HeatPumpSpec,
    PlantSpec,
    PvTypeSpec,
    Scenario,
    SolarThermalSpec,
    ThermalStorageSpec,
)
from ems.techs.absorption_chiller import AbsorptionChiller
from ems.techs.base import Technology
from ems.techs.battery import Battery
from ems.techs.boiler import Boiler
from ems.techs.chp import Chp, ChpHeatSink, ChpHeatSplit, ChpOffCover
from ems.techs.community import CacerCommunity, CacerPlant, VirtualCommunity
from ems.techs.demand import Demand
from ems.techs.district_heating import DhNetwork, DhStation
from ems.techs.elec_link import LinkNetwork, LinkStation
from ems.techs.ev_fleet import ChargerOption, EvFleet
from ems.techs.grid import Grid
from ems.techs.heat_pump import HeatPump, cop_and_capacity
from ems.techs.pv import Photovoltaic
from ems.techs.solar_thermal import SolarThermal
from ems.techs.thermal_storage import ThermalStorage

SizesByHub = dict[str, dict[str, Any]]


def electricity_column(hub_id: str, scenario: Scenario) -> str:
    hub = next(h for h in scenario.hubs if h.id == hub_id)
    return hub.electricity.column or f"{hub_id}_electricity_kw"


def grid_exclusivity_needed(scenario: Scenario, sale_can_exceed_purchase: bool) -> bool:
    """Import/export exclusivity binaries only where simultaneous import and export could pay:
    a shared-energy incentive in a virtual community, or a sale price that can exceed purchase."""
    incentive = scenario.community == "virtual" and (
        scenario.prices.incentive_eur_per_mwh > 0 or scenario.incentive is not None
    )
    return incentive or sale_can_exceed_purchase


def cacer_community(
    s: Scenario, cat: Catalogue, grids: list[Grid], techs: list[Technology]
) -> CacerCommunity:
    """The DM 414 incentive of a virtual community: one plant per hub with PV (its POD), its
    power band from ``plant.power_kw`` or the hub's PV maximum, FC from the region, F from the
    grant, TIP unless it entered service before 16 Dec 2021."""
    from ems.accounting import rules

    assert s.incentive is not None
    pv = {h.id: [t for t in techs if t.kind == "pv" and t.hub == h.id] for h in s.hubs}
    plants = []
    for hub in s.hubs:
        if not pv[hub.id]:
            continue
        spec = hub.plant or PlantSpec()
        power = spec.power_kw or sum(
            max(t.max_kwp, t.existing_kwp)
            for t in pv[hub.id]  # type: ignore[attr-defined]
        )
        pre_existing = (
            spec.entry_into_service is not None and spec.entry_into_service < PRE_EXISTING_BEFORE
        )
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
    return CacerCommunity(
        grids,
        pv,
        plants,
        {h.id: h.cabina_primaria for h in s.hubs},
        s.incentive.pz_column,
        s.incentive.valorisation_eur_per_mwh,
    )


def techs_from_scenario(
    s: Scenario,
    cat: Catalogue,
    *,
    exclusive_grid: bool,
    fixed_sizes: SizesByHub | None = None,
    asis: bool = False,
    peaks: dict[str, float] | None = None,
) -> tuple[list[Technology], dict[tuple[str, str], float]]:
    """Technology instances and shared limits (roof m² per hub) for a scenario.

    ``asis``: the AS-IS plant (boilers marked ``asis_only`` exist, hubs are not linked).
    ``peaks``: peak of each data column (big-M values of the exchange constraints from data).
    """
    techs: list[Technology] = []
    limits: dict[tuple[str, str], float] = {}
    grids: list[Grid] = []
    for hub in s.hubs:
        fixed = (fixed_sizes or {}).get(hub.id, {}) if fixed_sizes is not None else None
        techs.append(Demand(f"{hub.id}_load", hub.id, "electricity", electricity_column(hub.id, s)))
        grid = Grid(
            f"{hub.id}_grid",
            hub.id,
            hub.contract_kw,
            exclusive_grid,
            co2_t_per_mwh=s.emissions.grid_t_per_mwh,
        )
        grids.append(grid)
        techs.append(grid)
        if hub.roof_area_m2 is not None:
            limits[("roof_m2", hub.id)] = hub.roof_area_m2
        for pv in hub.pv:
            spec: PvTypeSpec = cat.get(pv.type, PvTypeSpec, "pv")
            max_kwp = (
                pv.max_kwp
                if pv.max_kwp is not None
                else (hub.roof_area_m2 or 0.0) * spec.kwp_per_m2
            )
            name = f"{hub.id}_{pv.type}"
            techs.append(
                Photovoltaic(
                    name,
                    hub.id,
                    spec,
                    max_kwp,
                    pv.existing_kwp,
                    fixed_kwp=None
                    if fixed is None
                    else float(fixed.get(pv.type, {}).get("kwp", 0.0)),
                )
            )
        if hub.battery is not None and hub.battery.max_modules + hub.battery.existing_modules > 0:
            bspec: BatterySpec = cat.get(hub.battery.type, BatterySpec, "battery")
            techs.append(
                Battery(
                    f"{hub.id}_battery",
                    hub.id,
                    bspec,
                    hub.battery.max_modules,
                    hub.battery.existing_modules,
                    fixed_modules=None
                    if fixed is None
                    else float(fixed.get("battery", {}).get("modules", 0)),
                )
            )
        if hub.vehicles:
            options = []
            for ch in hub.chargers:
                cspec: ChargerSpec = cat.get(ch.type, ChargerSpec, "chargers")
                fixed_units = (
                    None if fixed is None else int(fixed.get("chargers", {}).get(ch.type, 0))
                )
                options.append(
                    ChargerOption(ch.type, cspec, ch.max_units, ch.existing_units, fixed_units)
                )
            techs.append(EvFleet(f"{hub.id}_ev", hub.id, list(hub.vehicles), options))
    if s.community == "virtual" and s.prices.incentive_eur_per_mwh > 0:
        techs.append(VirtualCommunity(grids, s.prices.incentive_eur_per_mwh))
    elif s.community == "virtual" and s.incentive is not None:
        techs.append(cacer_community(s, cat, grids, techs))
    thermal = multi_energy_techs(
        s, cat, grids, fixed_sizes=fixed_sizes, asis=asis, peaks=peaks or {}, outer=techs
    )
    # stations must be built after the hubs' grids; networks after the stations
    techs += thermal
    return techs, limits


def hub_carriers(hub: Any) -> list[str]:
    """Thermal carriers balanced at a hub: heating (15), DHW (16), cooling (19), chiller feed (18),
    and the CHP-only injection into district heating (12)."""
    out = [
        c
        for c, spec in (("heat", hub.heating), ("dhw", hub.dhw), ("cooling", hub.cooling))
        if spec is not None
    ]
    if hub.absorption_chillers:
        out.append("chiller_feed")
    if hub.district_heating and hub.chp:
        out.append("dh_injection")
    return out


def multi_energy_techs(
    s: Scenario,
    cat: Catalogue,
    grids: list[Any],
    *,
    fixed_sizes: SizesByHub | None,
    asis: bool,
    peaks: dict[str, float],
    outer: list[Technology] | None = None,
) -> list[Technology]:
    """CHP, heat pumps, chillers, stores, solar thermal, boilers, district heating, electric links."""
    techs: list[Technology] = []
    stations: list[DhStation] = []
    links: list[LinkStation] = []
    gas, gas_co2 = s.prices.gas_eur_per_kwh, s.emissions.gas_t_per_mwh
    give_max: dict[str, float] = {}
    take_max: dict[str, float] = {}
    step_bounds: dict[str, dict[str, Any]] = {}
    heat_group: dict[
        str, dict[str, list[Any]]
    ] = {}  # per hub: CHPs, heat stores, heat sinks (ChpHeatSink)
    for hub, grid in zip(s.hubs, grids, strict=False):
        grp: dict[str, list[Any]] = heat_group.setdefault(
            hub.id, {"chps": [], "stores": [], "heat": [], "feed": []}
        )
        fixed = (fixed_sizes or {}).get(hub.id, {}) if fixed_sizes is not None else None
        sub = lambda key: (fixed or {}).get(key, {}) if fixed is not None else None  # noqa: E731
        carriers = hub_carriers(hub)
        for c, spec in (("heat", hub.heating), ("dhw", hub.dhw), ("cooling", hub.cooling)):
            if spec is not None:
                techs.append(Demand(f"{hub.id}_{c}_load", hub.id, c, spec.column))
                if c in ("heat", "dhw"):
                    grp["heat"].append(spec.column)
        chp_heat_max = chp_el_max = hp_el_max = feed_max = charge_max = 0.0
        for lim in hub.chp:
            if lim.asis_only and not asis:
                continue
            spec = cat.get(lim.type, ChpSpec, "chp")
            techs.append(
                Chp(
                    f"{hub.id}_{lim.type}",
                    hub.id,
                    lim.type,
                    spec,
                    lim.max_units,
                    gas_eur_per_kwh=gas,
                    gas_t_per_mwh=gas_co2,
                    existing_units=lim.existing_units,
                    fixed=sub(lim.type),
                )
            )
            grp["chps"].append(techs[-1])
            n = max(lim.max_units, lim.existing_units)
            chp_el_max += n * spec.p_el_kw
            chp_heat_max += n * techs[-1].unit_heat_kw  # type: ignore[attr-defined]
        if chp_heat_max > 0:
            outlets = [c for c in ("heat", "dhw", "chiller_feed", "dh_injection") if c in carriers]
            techs.append(ChpHeatSplit(hub.id, outlets, chp_heat_max))
        modes = [
            m
            for m, c in (("heating", "heat"), ("dhw", "dhw"), ("cooling", "cooling"))
            if c in carriers
        ]
        for lim in hub.heat_pumps:
            if lim.asis_only and not asis:
                continue
            spec = cat.get(lim.type, HeatPumpSpec, "heat_pumps")
            techs.append(
                HeatPump(
                    f"{hub.id}_{lim.type}",
                    hub.id,
                    lim.type,
                    spec,
                    lim.max_units,
                    modes=modes,
                    existing_units=lim.existing_units,
                    fixed=sub(lim.type),
                )
            )
            worst = max(
                cap / cop
                for m in spec.modes
                for cop, cap in [cop_and_capacity(spec, m, -10.0), cop_and_capacity(spec, m, 45.0)]
            )
            hp_el_max += max(lim.max_units, lim.existing_units) * worst
        cops = [
            cat.get(lim.type, AbsorptionChillerSpec, "absorption_chillers").cop_th
            for lim in hub.absorption_chillers
            if not (lim.asis_only and not asis)
        ]
        if cops and hub.cooling is not None:
            grp["feed"].append(
                (hub.cooling.column, 1.0 / min(cops))
            )  # chiller feed ≤ cooling load / COP_th
        for lim in hub.absorption_chillers:
            if lim.asis_only and not asis:
                continue
            spec = cat.get(lim.type, AbsorptionChillerSpec, "absorption_chillers")
            techs.append(
                AbsorptionChiller(
                    f"{hub.id}_{lim.type}",
                    hub.id,
                    lim.type,
                    spec,
                    lim.max_units,
                    existing_units=lim.existing_units,
                    fixed=sub(lim.type),
                )
            )
            n = max(lim.max_units, lim.existing_units)
            feed_max += n * spec.cool_kw / spec.cop_th
            hp_el_max += n * spec.cool_kw * spec.aux_el_fraction
        for key in ("puffer", "bollitore"):
            lim = getattr(hub, key)
            if lim is None:
                continue
            spec = cat.get(lim.type, ThermalStorageSpec, key)
            if spec.carrier not in carriers:
                continue
            techs.append(
                ThermalStorage(
                    f"{hub.id}_{key}",
                    hub.id,
                    lim.type,
                    spec,
                    choice=lim.choice,
                    max_kwh=lim.max_kwh,
                    existing_kwh=lim.existing_kwh,
                    fixed=sub(key),
                )
            )
            grp["stores"].append(techs[-1])
            if spec.carrier == "heat":
                charge_max += spec.c_rate_per_h * max(
                    [lim.max_kwh or 0.0, lim.existing_kwh] + list(spec.sizes_kwh)
                )
        if hub.solar_thermal is not None:
            spec = cat.get(hub.solar_thermal.type, SolarThermalSpec, "solar_thermal")
            if spec.carrier in carriers:
                max_m2 = (
                    hub.solar_thermal.max_m2
                    if hub.solar_thermal.max_m2 is not None
                    else (hub.roof_area_m2 or 0.0)
                )
                techs.append(
                    SolarThermal(
                        f"{hub.id}_solar_thermal", hub.id, spec, max_m2, fixed=sub("solar_thermal")
                    )
                )
        for lim in hub.boilers:
            if lim.asis_only and not asis:
                continue
            spec = cat.get(lim.type, BoilerSpec, "boilers")
            cs = [c for c in lim.carriers if c in carriers]
            if cs:
                techs.append(
                    Boiler(
                        f"{hub.id}_{lim.type}",
                        hub.id,
                        lim.type,
                        spec,
                        existing_kw=lim.existing_kw,
                        max_kw=lim.max_kw,
                        carriers=cs,
                        gas_eur_per_kwh=gas,
                        gas_t_per_mwh=gas_co2,
                        fixed=sub(lim.type),
                    )
                )
        if hub.district_heating and not asis:
            uses = [c for c in ("heat", "dhw", "chiller_feed") if c in carriers]
            heat_peak = sum(
                peaks.get(getattr(hub, c).column, 0.0)
                for c in ("heating", "dhw")
                if getattr(hub, c) is not None
            )
            bound = s.district_heating.max_kw_per_hub or max(
                chp_heat_max, heat_peak + feed_max + charge_max, 1.0
            )
            stations.append(
                DhStation(
                    hub.id,
                    uses=uses,
                    can_inject=bool(hub.chp),
                    max_kw=bound,
                    connection_capex_eur=s.district_heating.connection_capex_eur,
                    lifetime_y=s.district_heating.lifetime_y,
                    exclusive=s.district_heating.exclusive,
                    fixed=sub("dh"),
                )
            )
        # electric big-M from data: what the hub could generate (give) or consume (take)
        pv_max = 0.0
        pv_by_yield: dict[str, float] = {}
        for pv in hub.pv:
            pspec = cat.get(pv.type, PvTypeSpec, "pv")
            kwp = (
                pv.max_kwp
                if pv.max_kwp is not None
                else (hub.roof_area_m2 or 0.0) * pspec.kwp_per_m2
            )
            pv_max += max(kwp, pv.existing_kwp) * max(peaks.get(pspec.yield_column, 1.0), 0.0)
            pv_by_yield[pspec.yield_column] = pv_by_yield.get(pspec.yield_column, 0.0) + max(
                kwp, pv.existing_kwp
            )
        bat = 0.0
        if hub.battery is not None:
            bspec = cat.get(hub.battery.type, BatterySpec, "battery")
            bat = (
                max(hub.battery.max_modules, hub.battery.existing_modules)
                * bspec.module_kwh
                * bspec.c_rate_per_h
            )
        give_max[hub.id] = chp_el_max + pv_max + bat
        flex = (
            hp_el_max
            + bat
            + sum(
                ch.max_units * cat.get(ch.type, ChargerSpec, "chargers").p_kw for ch in hub.chargers
            )
        )
        take_max[hub.id] = peaks.get(electricity_column(hub.id, s), grid.contract_kw) + flex
        step_bounds[hub.id] = {
            "load_column": electricity_column(hub.id, s) if peaks else None,
            "take_flex_kw": flex,
            "give_firm_kw": chp_el_max + bat,
            "pv_kwp_by_yield": pv_by_yield if peaks else {},
        }
    techs += stations
    if stations:
        techs.append(DhNetwork(stations, s.district_heating.eta))
    # valid inequality on CHP units on (sizing pass): per group of hubs that can share heat
    linked = [st.hub for st in stations]
    groups = ([(linked, s.district_heating.eta)] if linked else []) + [
        ([h], 1.0) for h in heat_group if h not in linked
    ]
    for hubs_g, eta in groups:
        chps = [c for h in hubs_g for c in heat_group[h]["chps"]]
        if chps:
            techs.append(
                ChpHeatSink(
                    f"chp_heat_sink_{'_'.join(hubs_g)}",
                    chps,
                    [st for h in hubs_g for st in heat_group[h]["stores"]],
                    [x for h in hubs_g for x in heat_group[h]["heat"]],
                    [x for h in hubs_g for x in heat_group[h]["feed"]],
                    eta=min(eta, 1.0),
                )
            )
    if s.community == "physical" and not asis and len(s.hubs) > 1:
        for hub, grid in zip(s.hubs, grids, strict=False):
            others = sum(v for k, v in give_max.items() if k != hub.id)
            g = s.links.max_kw_per_hub or give_max[hub.id]
            tk = s.links.max_kw_per_hub or min(take_max[hub.id], others)
            sb = step_bounds[hub.id] if s.links.max_kw_per_hub is None else {}
            local = [t for t in (outer or []) + techs if t.hub == hub.id]
            links.append(
                LinkStation(
                    hub.id,
                    grid,
                    give_max_kw=max(g, 0.0),
                    take_max_kw=max(tk, 0.0),
                    local_techs=local,
                    **sb,
                )
            )
        techs += links
        techs.append(LinkNetwork(links))
    techs += chp_off_cover(
        s,
        techs + list(outer or []),
        linked_heat=[st.hub for st in stations],
        linked_elec=[lk.hub for lk in links],
    )
    return techs


def _heat_sources(t: Technology) -> list[Any] | None:
    """Heat (heating/DHW) supply terms of a technology other than CHP, [] if it supplies none,
    None if unknown (then no cut is written)."""
    b, hc = t.block, ("heat", "dhw")
    if t.kind == "boiler":
        return [lambda p, t_, b=b: sum(b.q_kw[c, p, t_] for c in b.C if c in hc)]
    if t.kind == "heat_pump":
        return [
            lambda p, t_, b=b, t=t: sum(
                b.q_kw[k, p, t_] for k in t.modes if k in ("heating", "dhw")
            )
        ]
    if t.kind == "solar_thermal":
        return [lambda p, t_, b=b: b.q_kw[p, t_]] if t.spec.carrier in hc else []
    if t.kind == "thermal_storage":
        return [lambda p, t_, b=b: b.q_discharge_kw[p, t_]] if t.spec.carrier in hc else []
    if t.kind in ("demand", "chp", "chp_heat_split", "dh_station", "absorption_chiller") or not any(
        c in hc for c, _l, _f in t.flows
    ):
        return []
    return None


def _elec_sources(t: Technology) -> list[Any] | None:
    """Electricity supply terms other than CHP and the private links; None if unknown (V2G)."""
    b = t.block
    if t.kind == "grid":
        return [lambda p, t_, b=b: b.p_import_kw[p, t_]]
    if t.kind == "pv":
        return [lambda p, t_, b=b: b.p_kw[p, t_]]
    if t.kind == "battery":
        return [lambda p, t_, b=b: b.p_discharge_kw[p, t_]]
    if t.kind in (
        "demand",
        "chp",
        "link_station",
        "heat_pump",
        "absorption_chiller",
        "ai_cluster",
    ) or not any(c == "electricity" for c, _l, _f in t.flows):
        return []
    return None


def chp_off_cover(
    s: Scenario, techs: list[Technology], *, linked_heat: list[str], linked_elec: list[str]
) -> list[Technology]:
    """The CHP off-state cuts (design mode, see :class:`ChpOffCover`) per group of hubs. Built
    lazily: the terms read the technologies' blocks, which exist when the cut is built (last)."""
    out: list[Technology] = []
    hubs = {h.id: h for h in s.hubs}
    for carrier, linked, sources_of in (
        ("heat", linked_heat, _heat_sources),
        ("electricity", linked_elec, _elec_sources),
    ):
        groups = ([linked] if linked else []) + [[h] for h in hubs if h not in linked]
        for grp in groups:
            chps = [t for t in techs if t.hub in grp and t.kind == "chp"]
            if not chps:
                continue
            if carrier == "heat":
                cols = [
                    getattr(hubs[h], c).column
                    for h in grp
                    for c in ("heating", "dhw")
                    if getattr(hubs[h], c) is not None
                ]
            else:
                cols = [electricity_column(h, s) for h in grp]
            members = [t for t in techs if t.hub in grp]
            unit = [
                c.spec.p_el_kw if carrier == "electricity" else c.unit_heat_kw  # type: ignore[attr-defined]
                for c in chps
            ]
            out.append(
                _LazyOffCover(
                    f"chp_off_{carrier}_{'_'.join(grp)}", chps, members, sources_of, cols, unit
                )
            )
    return out


class _LazyOffCover(ChpOffCover):
    def __init__(
        self,
        name: str,
        chps: list[Technology],
        members: list[Technology],
        sources_of: Any,
        cols: list[str],
        unit_kw: list[float],
    ) -> None:
        super().__init__(name, chps, [], cols, unit_kw)  # type: ignore[arg-type]
        self.members, self.sources_of = members, sources_of

    def add_operation(self, ctx: Any, blk: Any) -> None:
        terms: list[Any] = []
        for t in self.members:
            got = self.sources_of(t)
            if got is None:
                return  # a supply we do not know: no cut
            terms += got
        self.sources = terms
        super().add_operation(ctx, blk)
