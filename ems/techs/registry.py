"""The technology registry: the one place that lists the kinds.

One :class:`Registration` per technology kind: its technology class (the model blocks and the
whole operation interface of :class:`ems.techs.base.Technology`), its catalogue spec (the
``kind`` of a ``catalogue.yaml`` entry), the MQTT device kind of its devices with their telemetry
payload schema and setpoint schema (``ems.telemetry.schemas``), and the payload fields checked
against a device's rated power. The telemetry validators, the controller, the service and the
reports iterate this table; they hold no per-kind code.

How to add a technology (the recipe; the power-to-heat commit follows it):

1. its catalogue spec: a ``_CatalogueEntry`` subclass in ``ems/config/schema.py`` (and the hub's
   scenario field, if scenarios place it) + an entry in ``ems/data/catalogue.yaml``;
2. its module ``ems/techs/<kind>.py``: a :class:`~ems.techs.base.Technology` subclass with the
   build phases (sizes through ``ctx.size``, so they are variables in design and parameters in
   operation), the operation hooks it needs (data columns; its measured state: ``observe`` puts
   it under its device keys in ``StepInput.device_state``, ``take_state`` and its fallback rule
   read it back; messages of its own channels into its devices' durable books:
   ``take_message``; setpoints, fallback pass, plan columns, devices), a ``from_hub``
   classmethod that makes its instances from a hub of the scenario, what it reads and writes
   in files (``design_columns``, ``size_entry`` and ``size_keys``), what it shows (``panels`` on
   the dashboards, ``kpi_table``/``design_kpis`` and ``energy_bars`` in the design report) and,
   for the simulated plant, a :class:`ems.techs.plant.PlantDevice` subclass returned by
   ``plant_device`` (its physics, telemetry, KPIs and their rows of the KPI table);
3. its payload schemas: a state and a setpoint model in ``ems/telemetry/schemas.py``;
4. one line in :data:`REGISTRY` below;
5. its tests (the contract tests of ``tests/techs`` run on every registered kind by themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from ems.config import schema as cfg
from ems.techs.absorption_chiller import AbsorptionChiller
from ems.techs.ai_cluster import AiCluster
from ems.techs.base import Technology
from ems.techs.battery import Battery
from ems.techs.boiler import Boiler
from ems.techs.chp import Chp, ChpHeatSink, ChpHeatSplit, ChpOffCover
from ems.techs.community import CacerCommunity, VirtualCommunity
from ems.techs.demand import Demand
from ems.techs.district_heating import DhNetwork, DhStation
from ems.techs.elec_link import LinkNetwork, LinkStation
from ems.techs.electric_boiler import ElectricBoiler
from ems.techs.ev_charge_points import EvChargePoints
from ems.techs.ev_fleet import EvFleet
from ems.techs.grid import Grid
from ems.techs.heat_pump import HeatPump
from ems.techs.pv import Photovoltaic
from ems.techs.solar_thermal import SolarThermal
from ems.techs.thermal_storage import ThermalStorage
from ems.telemetry import schemas as tm


@dataclass(frozen=True)
class Registration:
    """Everything the rest of the code needs to know about one technology kind."""

    kind: str
    tech: type[Technology]
    spec: type[BaseModel] | None = None  # catalogue entry (``kind`` of catalogue.yaml)
    device_kind: str | None = None  # MQTT ``<kind>`` level of its devices
    state: type[BaseModel] | None = None  # telemetry payload schema
    setpoint: type[BaseModel] | None = None  # setpoint schema (None: not controllable)
    rated_fields: tuple[str, ...] = ()  # payload fields checked against the rated power
    modes: tuple[str, ...] = ("design", "operation")
    hub_stages: tuple[int, ...] = ()  # assembly stages of Technology.from_hub (per hub)
    site_stages: tuple[int, ...] = ()  # assembly stages of Technology.from_site
    controlled: bool = True  # the controller sends setpoints (PV curtailment: accepted, not sent)
    job: type[BaseModel] | None = None  # payload schema of its devices' ``job`` channel, if any


#: Assembly stages: 0 each hub's electric side, 1 the community rule (reads every grid), 2 each
#: hub's multi-energy side, 3 what couples hubs (stations read their hub's technologies, networks
#: their stations, the CHP cuts everything).
STAGES = (0, 1, 2, 3)

# fmt: off
REGISTRY: tuple[Registration, ...] = (
    Registration("demand", Demand, None, "heat_meter", tm.HeatMeterState, hub_stages=(0, 2)),
    Registration("grid", Grid, None, "meter", tm.MeterState, hub_stages=(0,)),
    Registration("pv", Photovoltaic, cfg.PvTypeSpec, "pv", tm.PvState, tm.PvSetpoint,
                 hub_stages=(0,), controlled=False),
    Registration("battery", Battery, cfg.BatterySpec, "battery", tm.BatteryState,
                 tm.BatterySetpoint, hub_stages=(0,)),
    Registration("ev_fleet", EvFleet, cfg.ChargerSpec, modes=("design",), hub_stages=(0,)),
    Registration("ev_charge_points", EvChargePoints, cfg.ChargerSpec, "ev_charger",
                 tm.EvChargerState, tm.EvChargerSetpoint, modes=("operation",)),
    Registration("ai_cluster", AiCluster, cfg.AiClusterSpec, "ai_cluster", tm.AiClusterState,
                 tm.AiClusterSetpoint, hub_stages=(0,), job=tm.AiJobAnnouncement),
    Registration("virtual_community", VirtualCommunity, site_stages=(1,)),
    Registration("cacer_community", CacerCommunity, site_stages=(1,)),
    Registration("chp", Chp, cfg.ChpSpec, "chp", tm.ChpState, tm.ChpSetpoint, hub_stages=(2,)),
    Registration("chp_heat_split", ChpHeatSplit, hub_stages=(2,)),
    Registration("heat_pump", HeatPump, cfg.HeatPumpSpec, "heat_pump", tm.HeatPumpState,
                 tm.HeatPumpSetpoint, hub_stages=(2,)),
    Registration("absorption_chiller", AbsorptionChiller, cfg.AbsorptionChillerSpec,
                 "absorption_chiller", tm.AbsorptionChillerState, tm.AbsorptionChillerSetpoint,
                 ("cooling_kw",), hub_stages=(2,)),
    Registration("thermal_storage", ThermalStorage, cfg.ThermalStorageSpec, "thermal_storage",
                 tm.ThermalStorageState, tm.ThermalStorageSetpoint, hub_stages=(2,)),
    Registration("solar_thermal", SolarThermal, cfg.SolarThermalSpec, hub_stages=(2,)),
    Registration("boiler", Boiler, cfg.BoilerSpec, "boiler", tm.BoilerState, tm.BoilerSetpoint,
                 ("heat_kw",), hub_stages=(2,)),
    Registration("electric_boiler", ElectricBoiler, cfg.ElectricBoilerSpec, "electric_boiler",
                 tm.ElectricBoilerState, tm.ElectricBoilerSetpoint, hub_stages=(2,)),
    Registration("dh_station", DhStation, None, "dh_station", tm.DhStationState,
                 tm.DhStationSetpoint, ("to_kw", "from_kw"), site_stages=(3,)),
    Registration("dh_network", DhNetwork, site_stages=(3,)),
    Registration("chp_heat_sink", ChpHeatSink, modes=("design",), site_stages=(3,)),
    Registration("link_station", LinkStation, None, "elec_link", tm.ElecLinkState,
                 tm.ElecLinkSetpoint, ("give_kw", "take_kw"), site_stages=(3,)),
    Registration("link_network", LinkNetwork, site_stages=(3,)),
    Registration("chp_off_cover", ChpOffCover, modes=("design",), site_stages=(3,)),
)
# fmt: on

_BY_KIND = {r.kind: r for r in REGISTRY}


def registration(kind: str) -> Registration:
    """The registration of a technology kind (KeyError naming the known kinds)."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise KeyError(f"unknown technology kind {kind!r} (known: {', '.join(_BY_KIND)})") from None


def by_device_kind(device_kind: str) -> Registration | None:
    """The registration whose devices have this MQTT kind (None: a site sensor or unknown)."""
    return next((r for r in REGISTRY if r.device_kind == device_kind), None)


def kinds() -> tuple[str, ...]:
    return tuple(_BY_KIND)


def device_registrations() -> list[Registration]:
    """Registrations with devices on MQTT (one per device kind)."""
    return [r for r in REGISTRY if r.device_kind is not None]


def state_models() -> dict[str, type[BaseModel]]:
    """Telemetry payload schema per MQTT device kind of the technologies."""
    return {r.device_kind: r.state for r in device_registrations() if r.state is not None}  # type: ignore[misc]


def setpoint_models() -> dict[str, type[BaseModel]]:
    """Setpoint schema per controllable MQTT device kind."""
    return {r.device_kind: r.setpoint for r in device_registrations() if r.setpoint is not None}  # type: ignore[misc]


def job_models() -> dict[str, type[BaseModel]]:
    """Payload schema of the ``job`` channel per MQTT device kind (AI clusters' batch jobs)."""
    return {r.device_kind: r.job for r in device_registrations() if r.job is not None}  # type: ignore[misc]


def rated_fields() -> dict[str, tuple[str, ...]]:
    return {r.device_kind: r.rated_fields for r in device_registrations() if r.rated_fields}  # type: ignore[misc]


def device_role(device_kind: str) -> str | None:
    """What devices of this MQTT kind are to the device bridges
    (:attr:`~ems.techs.base.Technology.device_role`; None: unknown kind or MQTT only)."""
    reg = by_device_kind(device_kind)
    return None if reg is None else reg.tech.device_role


def device_kinds_with_role(role: str) -> tuple[str, ...]:
    """The MQTT device kinds whose devices have this role for the device bridges."""
    return tuple(r.device_kind for r in device_registrations() if r.tech.device_role == role)  # type: ignore[misc]


def short_quantities() -> tuple[str, ...]:
    """Names of the energy plans can leave undelivered (``Technology.short_quantity``), sorted."""
    return tuple(sorted({r.tech.short_quantity for r in REGISTRY if r.tech.short_quantity}))


def controllable_device_kinds() -> tuple[str, ...]:
    """Device kinds that receive setpoints (and a safe setpoint when their telemetry is stale)."""
    return tuple(r.device_kind for r in device_registrations() if r.setpoint and r.controlled)  # type: ignore[misc]
