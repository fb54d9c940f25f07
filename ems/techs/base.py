"""The common technology interface (oemof's one-class-per-component, REopt's one file per family).

A technology instance is one device (or one device family) at one hub. Its whole life is here, in
both modes (the recipe for a new one: :mod:`ems.techs.registry`, ``docs/architecture.md``):

**Assembly** (:func:`ems.model.assembly.techs_from_scenario`, in the registry's stages):
:meth:`from_hub` / :meth:`from_site` make its instances from the scenario; operation takes
:meth:`for_operation` of each and adds :meth:`from_site_config` (SITE.yaml).

**Build** (design and operation, :func:`ems.model.builder.build_model`): :meth:`declare_sizes`,
:meth:`add_operation` and :meth:`add_costs` on a fresh Pyomo block ``model.tech_<name>``. A
technology talks to the rest of the model only through the context's registries (balances, costs,
CO2, shared limits) and its size handles (variables in design, parameters in operation, upper
bound = the design maximum or the installed size, from which every bound and big-M derives;
:meth:`bound_kw` tells the stations that couple hubs).

**Operation** (every control step, values only):

- :meth:`take_message` (the service, between steps): a device's non-state message (an AI
  cluster's job announcement) kept in that device's durable book in the plant state;
  :meth:`tidy_state` drops what expired after each step;
- :meth:`observe` (the service): forecasts of the columns it reads and its measured state, put
  under its own device keys in the step input's ``device_state`` (whatever type it likes);
- :meth:`data_columns` / :meth:`update_data` (the controller hands over one frame of columns,
  each technology takes what it declared) and :meth:`take_state` (it reads back its
  ``device_state`` entries with :func:`device_state`);
- :meth:`setpoints` turns the first step of the plan into its devices' setpoints;
- :meth:`fallback_passes` give its rule-based setpoints (no plan, or stale telemetry) in the hub's
  merit order;
- :meth:`plan_columns`, :meth:`after_solve` (alerts), :meth:`devices` (telemetry expected),
  :meth:`measured_el_kw` (load estimate), :meth:`wants_step` (on-demand steps).

**Reports**: :meth:`size_rows` and :meth:`size_entry` (``sizes.yaml``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from ems.model.context import BuildContext
from ems.techs.dashboard import Panel
from ems.techs.kpi import Bar, KpiTable

Term = Callable[[str, int], Any]
#: A device setpoint before the controller stamps its validity: (hub, device kind, id, values).
Raw = tuple[str, str, str, dict[str, Any]]
#: A device the EMS expects telemetry from: (hub, device kind, id, rated kW for range checks).
Device = tuple[str, str, str, float | None]
#: A device as in its MQTT topic: (hub, device kind, id).
DeviceKey = tuple[str, str, str]
Key = tuple[str, int]


def device_state(inp: Any, key: DeviceKey, default: Any = None) -> Any:
    """What a technology's :meth:`Technology.observe` put under ``key`` in the step input's
    ``device_state`` (``default`` when nothing, or when there is no step input)."""
    states = getattr(inp, "device_state", None) or {}
    return states.get(key, default)


def rnd(x: float) -> float:
    """A setpoint value: 3 decimals, never −0."""
    return round(float(x), 3) + 0.0


def rnd_pos(x: float) -> float:
    """A non-negative setpoint value: 3 decimals."""
    return round(max(float(x), 0.0), 3) + 0.0


@dataclass
class RuleState:
    """What is left to cover at one hub while the rule-based fallback walks its merit order.

    ``heat_kw`` (heating + DHW net of solar thermal, plus the feed of chillers run on CHP heat),
    ``cooling_kw`` and ``net_el_kw`` (load − PV + what the earlier rules decided to draw) shrink or
    grow as each technology's pass takes its share; ``first`` holds the first horizon value of
    every data column; ``scratch`` is per-technology memory between passes of one evaluation."""

    hub: str
    heat_kw: float = 0.0
    cooling_kw: float = 0.0
    net_el_kw: float = 0.0
    first: Mapping[str, float] = field(default_factory=dict)
    hub_kinds: frozenset[str] = frozenset()
    inp: Any = None  # the controller's StepInput (its device_state, measured net loads), if any
    dt_h: float = 0.25
    scratch: dict[str, Any] = field(default_factory=dict)

    def col(self, column: str, default: float = 0.0) -> float:
        v = self.first.get(column)
        return default if v is None or not np.isfinite(v) else float(v)


Pass = tuple[tuple[float, ...], Callable[[RuleState], list[Raw]]]


@dataclass
class Observation:
    """What a technology may read when the service prepares a control step (no I/O): the plant
    state (latest telemetry, histories), the forecaster, the horizon, the inputs found stale, the
    hubs' estimated electric loads now and the weather station's outdoor temperature now."""

    state: Any  # ems.operation.state.PlantState
    fc: Any  # ems.operation.forecast.Forecaster
    times: Any  # pd.DatetimeIndex of the horizon (UTC)
    start: Any  # pd.Timestamp of step 0
    now: Any  # pd.Timestamp of the measurement
    dt_h: float
    n_steps: int
    stale_in: dict[str, float] = field(default_factory=dict)  # "<hub>/<kind>/<id>" -> age s
    loads_kw: dict[str, float | None] = field(default_factory=dict)  # hub -> load now
    t_amb_c: float | None = None  # weather station now (None: none fresh)
    fresh_s: float = 2 * 3600.0  # a heat meter or weather reading older than this is stale
    forecast: dict[str, np.ndarray] = field(default_factory=dict)  # what the service publishes

    def age_s(self, key: str) -> float | None:
        p = self.state.latest.get(key)
        return None if p is None else (self.now - pd.Timestamp(p["ts"])).total_seconds()


class Technology:
    """Base class of every technology; every hook has a neutral default."""

    kind: ClassVar[str] = "technology"
    #: MQTT device kind of the devices this technology drives (``None``: no device of its own).
    device_kind: ClassVar[str | None] = None
    #: True when its parameters read the outdoor weather (a ``weather`` station is expected).
    reads_weather: ClassVar[bool] = False
    # ---- capabilities the reports select on (never the kind string)
    #: The hub's point of delivery (POD): import/export at the grid's prices (``p_import_kw``,
    #: ``p_export_kw``, ``price_buy``, ``price_sell`` on its block).
    grid_connection: ClassVar[bool] = False
    #: A renewable plant in the CER sense (shared-energy incentive, PNRR grant, surplus of a set).
    renewable_plant: ClassVar[bool] = False
    #: The carrier it exchanges between hubs (a station of a network: ``to_kw``/``from_kw``).
    exchange_carrier: ClassVar[str | None] = None
    #: A flexible compute load with its own KPIs (``sizing``: what design mode sized).
    compute_load: ClassVar[bool] = False
    #: Its rule-based setpoint follows the hub's measured net load (held at 0 when that is
    #: unknown; the service names the stale readings in an alert).
    follows_net_load: ClassVar[bool] = False
    #: Its short name in one-line size summaries (the sweep's Pareto labels, "PV 385 kWp · bat
    #: 50 kWh · 6 chargers": its sizes summed over hubs); ``None``: each sized item by its key.
    summary_label: ClassVar[str | None] = None
    #: What its devices are to the device bridges (``adapters/modbus``, ``adapters/ocpp``):
    #: ``"meter"`` (a power meter read through a register map), ``"pv_inverter"`` (power, energy,
    #: export limit), ``"storage_inverter"`` (a battery's: power, state of charge,
    #: charge/discharge control), ``"charge_point"`` (an EV charger); None: MQTT only.
    device_role: ClassVar[str | None] = None
    #: The name of the energy a plan can leave undelivered at its devices (``ai_missed_kwh``,
    #: ``ev_short_kwh``): its :meth:`after_solve` puts it per device into
    #: ``StepResult.short_kwh[<name>]``; the status topic and the ``solver`` measurement carry
    #: each name's total (0 when none).
    short_quantity: ClassVar[str | None] = None
    #: What it shows on the dashboards (:mod:`ems.techs.dashboard`; the builder iterates them).
    panels: ClassVar[tuple[Panel, ...]] = ()
    #: Its section of the design report (:mod:`ems.techs.kpi`; values from :meth:`design_kpis`).
    kpi_table: ClassVar[KpiTable | None] = None
    #: The bars of the hub-energy report its flows feed (:class:`ems.techs.kpi.Bar`).
    energy_bars: ClassVar[tuple[Bar, ...]] = ()

    def __init__(self, name: str, hub: str) -> None:
        self.name = name
        self.hub = hub
        self.block: pyo.Block | None = None
        self.flows: list[tuple[str, str, Term]] = []  # (carrier, label, signed term) for reports
        #: (carrier, label) -> (bar of the hub-energy report, sign): which bar a flow feeds
        self.bars: dict[tuple[str, str], tuple[str, float]] = {}

    # ---- assembly from the scenario (see ems.model.assembly and the registry's stages)
    @classmethod
    def from_hub(cls, a: Any, hub: Any, stage: int) -> list[Technology]:
        """Its instances at one hub of the scenario (``a``: :class:`ems.model.assembly.Assembly`)."""
        return []

    @classmethod
    def from_site(cls, a: Any, stage: int) -> list[Technology]:
        """Its instances that couple hubs (stations, networks, community rules, cuts)."""
        return []

    @classmethod
    def hub_carriers(cls, hub: Any) -> list[str]:
        """The carriers other than electricity it balances at a hub of the scenario (its
        demands, a feed it creates); :func:`ems.model.assembly.hub_carriers` joins them over the
        registry so every technology can ask which carriers a hub has."""
        return []

    @classmethod
    def design_columns(cls, hub: Any, catalogue: Any) -> list[str]:
        """Columns of the scenario's profile its parameters read at this hub of the scenario
        (``hub``: the scenario's hub spec), beyond the hub's demand and the prices: design
        mode's data preparation checks them present and non-negative (the PV yields)."""
        return []

    @classmethod
    def size_keys(cls, hub: Any, catalogue: Any) -> dict[str, tuple[str, ...] | None]:
        """Its ``sizes.yaml`` entries at this hub of the scenario: key -> the quantities
        :meth:`size_entry` writes (``None``: informative, not checked). An entry or quantity
        that no technology of the hub declares is an error (``ems.config.sizes.check_known``):
        operation would ignore it."""
        return {}

    @classmethod
    def contract_hub(cls) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """An example hub of the scenario holding this technology, with the catalogue entries it
        needs, for the registry's contract tests (``tests/techs/test_contract.py``); ``None``
        when the built-in contract cases already hold it."""
        return None

    def for_operation(
        self, site: Any, hub_sizes: dict[str, Any], cat: Any, hub_spec: Any
    ) -> Technology | None:
        """Its form in the operation model (itself; ``None`` to leave it out)."""
        return self

    @classmethod
    def from_site_config(cls, site: Any, scenario: Any) -> list[Technology]:
        """Its instances configured in SITE.yaml (operation only; e.g. the AI clusters)."""
        return []

    # ---- bounds from the sizes (after declare_sizes: design maximum or installed size)
    def bound_kw(self, role: str) -> float:
        """Upper bound of one of its flows at its size's upper bound, for the big-M values of the
        stations that couple hubs: ``el_firm`` (dispatchable electricity it can give),
        ``el_flex`` (flexible electricity it can take), ``chp_heat``, ``chiller_feed``,
        ``heat_charge`` (kW)."""
        return 0.0

    def generation_terms(self) -> list[Term] | None:
        """Its own electricity generation terms (PV, CHP, battery discharge) for the links'
        valid inequality; ``None`` if it could discharge what it took (V2G)."""
        return []

    def cover_terms(self, carrier: str) -> list[Term] | None:
        """Supply terms of ``carrier`` (``heat``: heating + DHW; ``electricity``) other than a CHP
        for the CHP off-state cut; ``[]`` if it supplies none, ``None`` if unknown (no cut)."""
        group = ("heat", "dhw") if carrier == "heat" else (carrier,)
        return None if any(c in group for c, _l, _f in self.flows) else []

    # ---- build phases
    def build(self, ctx: BuildContext) -> None:
        blk = pyo.Block()
        ctx.model.add_component(self.block_name, blk)
        self.block = blk
        ctx.current_tech = (self.name, self.hub)
        self.declare_sizes(ctx, blk)
        self.add_operation(ctx, blk)
        self.add_costs(ctx, blk)
        ctx.current_tech = None

    @property
    def block_name(self) -> str:
        return f"tech_{self.name}"

    def declare_sizes(self, ctx: BuildContext, blk: pyo.Block) -> None:  # noqa: B027
        """Request size handles with ``ctx.size`` (variables in design, parameters in operation)."""

    def add_operation(self, ctx: BuildContext, blk: pyo.Block) -> None:  # noqa: B027
        """Variables and constraints over ``ctx.T``; register port terms with :meth:`port`."""

    def add_costs(self, ctx: BuildContext, blk: pyo.Block) -> None:  # noqa: B027
        """Register operating cost, revenue and CO2 terms (capex comes through the size handles)."""

    def add_late(self, ctx: BuildContext) -> None:  # noqa: B027
        """After every technology and the balances are built (operation mode: with their unmet
        and dump slack, ``ctx.model.unmet_kw`` / ``dump_kw``): constraints that must see them,
        e.g. the valid inequalities on relaxed units on (:mod:`ems.techs.chp`)."""

    def relaxation_cuts(self) -> list[Any]:
        """Its (…, period, step)-indexed constraints that are valid inequalities for the integer
        plans, only there to tighten a relaxation (operation: the controller keeps them on the
        relaxed steps only, see ``solver.relaxation_cuts``)."""
        return []

    # ---- helpers
    def port(
        self,
        ctx: BuildContext,
        carrier: str,
        label: str,
        term: Term,
        hub: str | None = None,
        *,
        bar: str | None = None,
        sign: float = 1.0,
    ) -> None:
        """Register a signed term on the (hub, carrier) balance: + supplies, − uses; ``bar``
        (with ``sign``) names the bar of the hub-energy report it feeds
        (:data:`design.report_thermal.BARS`)."""
        ctx.add_balance(hub or self.hub, carrier, term)
        self.flows.append((carrier, label, term))
        if bar is not None:
            self.bars[(carrier, label)] = (bar, sign)

    def sizes(self) -> dict[str, float]:
        """Installed sizes in this device's units, for results and ``sizes.yaml``."""
        return {}

    def size_row(self, item: str, unit: str, installed: float, maximum: float) -> dict[str, Any]:
        """One row of the design report's sizes table (installed vs maximum)."""
        key = self.name.removeprefix(f"{self.hub}_")
        row = {"hub": self.hub, "item": item, "key": key, "unit": unit}
        return {**row, "installed": installed, "max": maximum}

    def exclusive_for_verification(self) -> bool:
        """Before the per-day verification of a design (sizes fixed): switch on a per-step
        exclusivity its model leaves relaxed when that relaxation could hide a loss (a lossy
        store charging and discharging at once). True if it did."""
        return False

    def design_kpis(self, grid: Any, flows: pd.DataFrame) -> dict[str, Any] | None:
        """Its values of :attr:`kpi_table` after a design solve (``grid``: the time grid,
        ``flows``: :func:`ems.model.results.flows`); ``None``: nothing to report here."""
        return None

    def size_rows(self) -> list[dict[str, Any]]:
        """Its rows of the design report's sizes table (none: nothing to size)."""
        return []

    def size_entry(self) -> dict[str, Any]:
        """Its entries of ``sizes.yaml`` ({key: {quantity: value}}): what design mode writes and
        operation mode reads back as ``fixed`` sizes (key: the name without the hub prefix)."""
        sz = self.sizes()
        if not sz:
            return {}
        key = self.name.removeprefix(f"{self.hub}_")
        return {key: {k: round(float(v), 4) for k, v in sz.items()}}

    def values(self, comp: Any, keys: list[Key], prefix: tuple = ()) -> np.ndarray:
        """A time-indexed component of this technology's block over ``keys`` (after a solve)."""
        return np.array([pyo.value(comp[(*prefix, *k)]) for k in keys], dtype=float)

    # ---- operation: data and state in
    def data_columns(self) -> list[str]:
        """Data columns its parameters read (each gets a forecast per control step)."""
        return []

    def build_value(self, column: str) -> float:
        """Value of one of its data columns when the operation model is built (before forecasts)."""
        return 0.0

    def update_data(self, frame: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Take this step's values of the declared :meth:`data_columns` (exactly one horizon
        each, finite) into the mutable Params. Values only, never structure."""

    def observe(self, obs: Observation, inp: Any) -> None:  # noqa: B027
        """Fill the step input from the plant's telemetry (``obs.state.latest``, its devices'
        books) and the forecaster: the forecasts of its data columns (``inp.columns``) and its
        measured state under its own device keys in ``inp.device_state`` (the service calls it
        on every operated technology; the controller then hands both over with
        :meth:`update_data` and :meth:`take_state`)."""

    def take_state(self, inp: Any) -> None:  # noqa: B027
        """Take the measured state at the horizon start (SoC, sessions, jobs, gas price) from the
        controller's step input (its ``device_state`` entries: :func:`device_state`). Values
        only."""

    def take_message(self, state: Any, key: DeviceKey, channel: str, payload: Any) -> bool:
        """A validated message other than a state from one of its devices (an AI cluster's job
        announcement on ``…/job``): keep what it needs in that device's durable book of the
        plant state (``state.book(key)``: JSON, persisted with the state, restored on a
        restart). True when it asks for an on-demand step. Default: ignored."""
        return False

    def tidy_state(self, state: Any, now: pd.Timestamp) -> list[str]:
        """After each step: drop what its devices' books hold that has expired (jobs whose
        deadline passed long ago); one alert per item dropped."""
        return []

    @classmethod
    def upgrade_persisted(cls, d: dict[str, Any]) -> None:  # noqa: B027
        """Bring a plant state persisted by an older release (``PlantState.to_dict``) to the
        current layout in place: move what was kept for its devices at the top level into
        ``d["books"]``."""

    # ---- operation: devices, plan and setpoints out
    def installed(self) -> bool:
        """True when the technology has devices in operation (an empty slot of the design has none:
        no setpoints, no telemetry, and the operation model leaves it out)."""
        return self.device_kind is not None

    def operated(self) -> bool:
        """Takes data and state every control step: every technology without devices of its own,
        and the installed ones among those with devices. The operation model leaves the others
        (the design's empty slots) out (``techs_from_scenario(drop_empty_slots=True)``)."""
        return self.device_kind is None or self.installed()

    def devices(self) -> list[Device]:
        """Devices it expects telemetry from (installed ones only)."""
        return []

    def setpoints(self, k0: Key) -> list[Raw]:
        """Setpoints from the first step ``k0`` of the solved plan."""
        return []

    def fallback_passes(self) -> list[Pass]:
        """Its turns in the hub's rule-based merit order: (sort key, rule). Rules of all
        technologies of a hub run in key order on one :class:`RuleState`."""
        return []

    def plan_columns(self, keys: list[Key]) -> dict[str, np.ndarray]:
        """Its columns of the plan frame (``<hub>.<quantity>_kw``); equal names add up."""
        return {}

    @classmethod
    def wants_step(cls, before: dict[str, Any], payload: dict[str, Any]) -> bool:
        """Does this new state of one of its devices ask for an on-demand control step (an EV
        plugged in, more AI batch energy queued)? ``before``: the previous state ({} if none)."""
        return False

    def after_solve(self, result: Any, alerts: list[str]) -> None:  # noqa: B027
        """Report what the plan could not do (missed AI energy, EV shortfall) into the result."""

    def can_supply_electricity(self) -> bool:
        """Can it ever put electricity on its hub's bus? (Hubs with nothing that can get their
        export bound to 0 once.) Unknown technologies say yes."""
        return True

    def close_export(self, keys: list[Key]) -> bool:
        """Its hub can supply no electricity: bound any export it has to 0 over ``keys`` (once,
        from configuration); True if it had one (the grid connection)."""
        return False

    def measured_el_kw(self, state: Any) -> float:
        """Electric power it measured on its hub's bus (+ generation, − use), from the plant
        state's latest telemetry: the load estimate subtracts it from the meter."""
        return 0.0

    def metered_import_kw(self, state: Any) -> float | None:
        """Net import its meter measured now (import − export, kW; a grid connection's POD
        meter), ``None`` without a reading: the hub's load estimate starts from it."""
        return None

    @classmethod
    def load_input(cls) -> bool:
        """Do its devices' readings enter the hub's electric load estimate (it measures power on
        the bus: its own :meth:`measured_el_kw` or :meth:`measured_renewable_kw`)? A stale one
        then makes the estimate stale."""
        return (
            cls.measured_el_kw is not Technology.measured_el_kw
            or cls.measured_renewable_kw is not Technology.measured_renewable_kw
        )

    def measured_renewable_kw(
        self, state: Any, stale_in: dict[str, float], yields: dict[str, float | None]
    ) -> float:
        """Variable renewable generation it measured now (kW; a stale reading counts 0), with
        its specific yield put into ``yields`` (column -> kW per installed unit) for the
        forecasts' history."""
        return 0.0

    # ---- the simulated plant
    def plant_device(self) -> Any:
        """Its simple physics in the simulated plant: a :class:`ems.techs.plant.PlantDevice`
        declared in its module (``None``: nothing to simulate, or not installed)."""
        return None

    def forecast_net_kw(self, rule: RuleState) -> float:
        """Its share of the hub's net electric demand now (+ load, − generation) for the
        battery rule when no measurement is at hand."""
        return 0.0
