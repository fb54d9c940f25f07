"""``ems run --simulate``: the whole loop on one laptop with an accelerated clock.

Embedded MQTT broker (or the one given), the simulated case-study plant publishing telemetry and
obeying setpoints over MQTT, the daemon runtime (:mod:`adapters.runtime.daemon`) with the SQLite
stores, and at the end the day's KPIs beside the no-optimisation baseline on the same draws.
Resumable: with the same ``--state`` directory a restarted run continues from the last step.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from adapters.runtime.daemon import Runtime, StateDB
from adapters.sim.plant import Exogenous, PlantSim, kpis
from adapters.sim.thermal_plant import thermal_kpis
from ems.operation.assembly import OperationSetup
from ems.operation.forecast import Forecaster
from ems.operation.service import OperationService
from ems.operation.site import SiteConfig
from ems.operation.state import PlantState
from ems.techs.kpi import KpiRow
from ems.techs.plant import device_classes

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEFAULT_SITE = HERE / "opera_pia_site.yaml"
DEFAULT_START = "2025-06-16 00:00"  # a Monday in June, local time


def run_simulation(
    site: SiteConfig,
    setup: OperationSetup,
    fc: Forecaster,
    *,
    state_dir: Path,
    hours: float = 24.0,
    speed: float = 0.0,
    seed: int = 1,
    start_local: str = DEFAULT_START,
    mqtt: dict[str, Any] | None = None,
    time_limit_s: float | None = None,
    echo: Callable[[str], None] = print,
    stop_after_steps: int | None = None,
    store: Any = None,
    devices: bool = False,
) -> dict[str, Any]:
    """Run (or resume) a simulated period; returns KPIs of the EMS and of the baseline.
    ``store``: a time-series store (default: SQLite in ``state_dir``). ``devices``: the chargers as
    OCPP charge points, batteries and PV as Modbus SunSpec devices (:mod:`adapters.sim.devices`)."""
    from adapters.mqtt.config import MqttSettings
    from adapters.sqlite_store import SQLiteStore

    state_dir.mkdir(parents=True, exist_ok=True)
    statedb = StateDB(state_dir / "ems-state.sqlite")
    exo, steps = _draw_period(statedb, site, setup, fc, start_local, seed, hours)
    plant = PlantSim(setup, exo, site.dt_h)
    saved = statedb.get("plant")
    if saved:
        plant.load_dict(saved)
        echo(
            f"resuming the simulation at {plant.now:%Y-%m-%d %H:%M} UTC (step {plant.i} of {steps})"
        )
    service = OperationService(
        site, setup, fc, state=PlantState.from_dict(statedb.get("plant_state") or {})
    )
    echo(
        f"model built once in {service.controller.build_s:.1f} s: "
        f"{service.controller.component_count()} components, "
        f"horizon {site.horizon_h:g} h × {site.step_min} min"
    )

    broker = None
    if mqtt is None:
        from adapters.broker.embedded import EmbeddedBroker

        broker = EmbeddedBroker().start()
        mqtt = {"host": broker.host, "port": broker.port}
        echo(f"embedded MQTT broker on {broker.host}:{broker.port}")
    settings = MqttSettings(
        community=site.community, **{"client_id": f"cer-ems-{site.community}", **mqtt}
    )
    store = store if store is not None else SQLiteStore(state_dir / "timeseries.sqlite")
    clock = _SimClock(plant.now)
    runtime = Runtime(service, settings, store, statedb, clock=clock).start()
    link = _PlantLink(
        settings, site.community, _devices(runtime, service, clock, echo) if devices else None
    )
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    loop = _Loop(plant, runtime, link, clock, statedb, set(service.controllable()))
    try:
        while plant.i < steps and not stop.is_set():
            out = loop.step(time_limit_s)
            if out is None:
                continue
            if plant.i % int(round(1 / site.dt_h)) == 0:
                echo(_hour_line(plant, out, setup, site.timezone))
            loop.pace(speed, site.dt_h)
            if stop_after_steps is not None and len(loop.step_times) >= stop_after_steps:
                break
        loop.close_last_hour(service)
    finally:
        link.stop()
        runtime.stop()
        if broker is not None:
            broker.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    result = loop.summary(steps, state_dir)
    if link.devs is not None:
        result["devices"] = link.devices_status
    if result["finished"]:
        incentive = setup.scenario.prices.incentive_eur_per_mwh
        base = _baseline(setup, exo, site, steps)
        result["ems"] = with_thermal(kpis(plant, incentive), plant, setup, site.dt_h)
        result["baseline"] = with_thermal(kpis(base, incentive), base, setup, site.dt_h)
        result["plant"] = plant
        result["baseline_plant"] = base
        result["incentive_eur_per_mwh"] = incentive
    statedb.close()
    return result


def _draw_period(
    statedb: StateDB,
    site: SiteConfig,
    setup: OperationSetup,
    fc: Forecaster,
    start_local: str,
    seed: int,
    hours: float,
) -> tuple[Exogenous, int]:
    """The period's exogenous draws and step count; a resumed run keeps its first start and seed."""
    meta = statedb.get("sim")
    if meta is None:
        meta = {
            "start": pd.Timestamp(start_local, tz=site.timezone).tz_convert("UTC").isoformat(),
            "seed": seed,
            "hours": hours,
        }
        statedb.commit_step({"sim": meta}, [], None, [])
    start = pd.Timestamp(meta["start"])
    steps = int(round(float(meta["hours"]) / site.dt_h))
    exo = Exogenous.draw(setup, fc, start, steps + 1, site.dt_h, int(meta["seed"]), site.timezone)
    return exo, steps


def _baseline(setup: OperationSetup, exo: Exogenous, site: SiteConfig, steps: int) -> PlantSim:
    """The same draws without optimisation: every device on its own rule."""
    base = PlantSim(setup, exo, site.dt_h)
    for _ in range(steps):
        base.begin_step()
        base.advance(None)
    return base


class _SimClock:
    """The runtime's clock: the simulated plant's time, set by the loop before each step."""

    def __init__(self, now: pd.Timestamp) -> None:
        self.now = now

    def __call__(self) -> pd.Timestamp:
        return self.now


class _PlantLink:
    """The simulated plant's own MQTT client: publishes telemetry, receives retained setpoints."""

    def __init__(self, settings: Any, community: str, devs: Any = None) -> None:
        from adapters.mqtt.client import MqttClient

        self.community = community
        self.devs = (
            devs  # adapters.sim.devices.SimDevices: chargers on OCPP, batteries/PV on Modbus
        )
        self.devices_status: dict[str, Any] = {}
        plant_settings = settings.model_copy(update={"client_id": f"cer-sim-plant-{community}"})
        self.client = MqttClient(plant_settings, last_will=False).start()
        self.client.wait_connected(10)
        self.received: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.client.subscribe(f"cer/{community}/+/+/+/setpoint", self._on_setpoint)

    def _on_setpoint(self, msg: Any) -> None:
        try:
            _root, _c, hub, kind, dev, _ch = msg.topic.split("/")
            if msg.payload:
                with self.lock:
                    self.received[(hub, kind, dev)] = json.loads(msg.payload)
        except Exception:
            log.warning("bad setpoint on %s", msg.topic)

    def setpoints(self, plan_id: str, controllable: set) -> dict[tuple[str, str, str], Any]:
        """The setpoints of plan ``plan_id``, after waiting (≤ 5 s) for every controllable device's."""
        from adapters.mqtt.client import wait_until

        def all_arrived() -> bool:
            with self.lock:
                return all(self.received.get(k, {}).get("plan_id") == plan_id for k in controllable)

        wait_until(all_arrived, 5.0, 0.005)
        with self.lock:
            sps = {k: v for k, v in self.received.items() if v.get("plan_id") == plan_id}
        if self.devs is not None:  # these devices obey what reached them over OCPP / Modbus
            sps = {k: v for k, v in sps.items() if k not in self.devs.handled}
            sps.update(self.devs.setpoints(self.devs.clock()))
        return sps

    def publish(self, plant: PlantSim, runtime: Runtime) -> None:
        _publish_telemetry(self.client, self.community, plant, runtime, self.devs)

    def stop(self) -> None:
        if self.devs is not None:
            self.devices_status = self.devs.status()
            self.devs.stop()
        self.client.stop(announce_offline=False)


class _Loop:
    """One simulated step after the other: telemetry out, the runtime's step, setpoints back in."""

    def __init__(
        self,
        plant: PlantSim,
        runtime: Runtime,
        link: _PlantLink,
        clock: _SimClock,
        statedb: StateDB,
        controllable: set,
    ) -> None:
        self.plant, self.runtime, self.link, self.clock = plant, runtime, link, clock
        self.statedb, self.controllable = statedb, controllable
        self.t_wall0 = time.perf_counter()
        self.sim0 = plant.i
        self.step_times: list[float] = []
        self.modes: dict[str, int] = {}
        # steps stopped by the solver's wall-clock safety net: their plans depend on the load
        self.time_limit_stops: list[str] = []

    def step(self, time_limit_s: float | None) -> Any:
        """One step; ``None`` when it failed (logged, alert stored: devices ran their safe modes)."""
        plant = self.plant
        self.clock.now = plant.now
        plant.begin_step()
        self.link.publish(plant, self.runtime)
        plan_id = f"{plant.now:%Y%m%dT%H%M}"
        out = self.runtime.run_step(plant.now, time_limit_s=time_limit_s)
        if out is None:
            plant.advance({})
            self.statedb.commit_step({"plant": plant.to_dict()}, [], None, [])
            return None
        self.step_times.append(out.step_s)
        mode = out.outcome.result.mode
        self.modes[mode] = self.modes.get(mode, 0) + 1
        rec = out.outcome.result.record
        if rec is not None and rec.hit_time_limit:
            self.time_limit_stops.append(f"{plant.now:%Y-%m-%d %H:%M}")
        plant.advance(self.link.setpoints(plan_id, self.controllable))
        self.statedb.commit_step({"plant": plant.to_dict()}, [], None, [])
        return out

    def pace(self, speed: float, dt_h: float) -> None:
        """Sleep so that simulated time runs ``speed`` times faster than the wall clock (0: flat out)."""
        if speed > 0:
            target = (self.plant.i - self.sim0) * dt_h * 3600 / speed
            time.sleep(max(0.0, target - (time.perf_counter() - self.t_wall0)))

    def close_last_hour(self, service: OperationService) -> None:
        """A last telemetry round closes the final hour of the shared-energy log."""
        self.clock.now = self.plant.now
        self.link.publish(self.plant, self.runtime)
        hours_closed = service.pending_hours
        service.pending_hours = []
        self.runtime._record_hours_only(hours_closed)  # also persists what the last round brought

    def summary(self, steps: int, state_dir: Path) -> dict[str, Any]:
        return {
            "finished": self.plant.i >= steps,
            "steps": len(self.step_times),
            "modes": self.modes,
            "time_limit_stops": self.time_limit_stops,
            "step_s": self.step_times,
            "wall_s": time.perf_counter() - self.t_wall0,
            "ledger_hours": self.statedb.hours(),
            "state_dir": str(state_dir),
        }


def _hour_line(plant: PlantSim, out: Any, setup: OperationSetup, timezone: str) -> str:
    """The console line printed once per simulated hour."""
    r = out.outcome.result
    last = plant.rows[-1]
    imp = sum(last.get(f"{h}.import_kw", 0) for h in setup.hubs)
    exp = sum(last.get(f"{h}.export_kw", 0) for h in setup.hubs)
    return (
        f"{plant.now.tz_convert(timezone):%a %H:%M}  {r.mode:8s} step {out.step_s:5.2f} s  "
        f"import {imp:6.1f} kW  export {exp:6.1f} kW"
        + (f"  alerts: {len(r.alerts)}" if r.alerts else "")
    )


def _devices(runtime: Runtime, service: OperationService, clock: Any, echo: Callable) -> Any:
    from adapters.sim.devices import SimDevices

    devs = SimDevices(runtime, service, clock)
    csms = devs.bridges.csms
    echo(
        f"devices: {len(devs.chargers)} chargers as OCPP charge points (CSMS "
        f"ws://127.0.0.1:{csms.port if csms else '-'}/ocpp/<id>, basic auth), "
        f"{len(devs.units)} batteries/PV as SunSpec devices on Modbus TCP 127.0.0.1:{devs.server.port}"
    )
    return devs


def _publish_telemetry(
    pclient: Any, community: str, plant: PlantSim, runtime: Runtime, devs: Any = None
) -> None:
    from adapters.mqtt.client import wait_until
    from ems.telemetry.topics import job_topic, state_topic

    telemetry = plant.telemetry()
    if devs is not None:
        telemetry = devs.publish(telemetry)  # chargers over OCPP, batteries/PV over Modbus
    msgs = [(state_topic(community, *key), p) for key, p in telemetry]
    msgs += [(job_topic(community, *key), p) for key, p in plant.job_announcements()]
    before = runtime.received
    for topic, payload in msgs:
        pclient.publish(topic, json.dumps(payload), qos=1)
    wait_until(lambda: runtime.received - before >= len(msgs), 5.0, 0.002)


#: the site's rows of the KPI table (each technology's own come from its plant device's
#: ``kpi_table_rows``, :class:`ems.techs.kpi.KpiRow`; ``order`` interleaves them)
SITE_ROWS = (
    # multi-energy sites only
    KpiRow("local_self_consumption_pct", "self-consumption of local generation", "%", 1, 15),
    KpiRow("gas_eur", "gas", "€", 2, 16),
    KpiRow("total_cost_eur", "net cost incl. gas", "€", 2, 18),
    KpiRow("co2_t", "CO2 (gas + grid import)", "t", 3, 19),
    KpiRow("gas_kwh", "gas", "kWh", 0, 20),
    KpiRow("heat_unmet_kwh", "heat not served", "kWh", 1, 27),
    KpiRow("heat_dump_kwh", "heat dissipated", "kWh", 1, 28),
    KpiRow("cooling_unmet_kwh", "cooling not served", "kWh", 1, 29),
)


def tech_rows() -> list[KpiRow]:
    """The KPI rows the registered technologies declare (once each), in their order."""
    rows = {r.key: r for c in device_classes() for r in c.kpi_table_rows}.values()
    return sorted(rows, key=lambda r: r.order)


def with_thermal(
    k: dict[str, float], sim: PlantSim, setup: OperationSetup, dt_h: float
) -> dict[str, float]:
    """KPIs plus the thermal side's (gas, each technology's, CO2) on a multi-energy site: the net
    cost with gas and the technologies' other operating costs, self-consumption of all local
    generation."""
    t = thermal_kpis(sim.rows, setup, dt_h)
    if t:
        k = {**k, **t}
        rows = tech_rows()
        other = sum(k.get(r.key, 0.0) for r in rows if r.cost)
        k["total_cost_eur"] = k.get("net_cost_eur", 0.0) + t["gas_eur"] + other
        # with local generation other than PV the exports are not PV's: self-consumption of all
        gen = sum(k.get(r.key, 0.0) for r in rows if r.generation)
        k.pop("self_consumption_pct", None)
        k["local_self_consumption_pct"] = (
            100.0 * (1 - k.get("grid_export_kwh", 0.0) / gen) if gen > 0 else 0.0
        )
    return k


def incentive_note(
    ems: dict[str, float], base: dict[str, float], incentive_eur_per_mwh: float
) -> str:
    """Why the EMS may earn less shared-energy incentive than the baseline (issue 13): it keeps PV
    surplus for the site's own loads when a kept kWh (purchase avoided) is worth more than an
    exported one (sale + incentive). Empty when it does not earn less."""
    lost = base.get("incentive_eur", 0.0) - ems.get("incentive_eur", 0.0)
    if lost <= 0.005:
        return ""
    less_export = base.get("grid_export_kwh", 0.0) - ems.get("grid_export_kwh", 0.0)
    buy = ems.get("buy_price_pv_hours_eur_per_kwh", 0.0)
    sell = ems.get("sell_price_pv_hours_eur_per_kwh", 0.0)
    inc = incentive_eur_per_mwh / 1000.0
    gain = base.get("net_cost_eur", 0.0) - ems.get("net_cost_eur", 0.0)
    return (
        f"note: the EMS earns {lost:.2f} € less shared-energy incentive because it exports "
        f"{less_export:.0f} kWh less: it keeps PV surplus for the site's own loads (AI batch, "
        f"battery, EVs). In PV hours a kept kWh avoids {buy:.3f} €/kWh of purchase, an exported "
        f"one earns {sell:.3f} sale + {inc:.3f} incentive = {sell + inc:.3f} €/kWh, so keeping "
        f"pays: net cost {gain:+.2f} € in the EMS's favour. The plan values shared energy per "
        "15-minute step (a lower bound of the GSE's hourly rule)."
    )


BASELINE_TEXT = (
    "baseline = the same plant, weather, loads, EV arrivals and AI jobs without the EMS: the\n"
    "battery on PV self-consumption, EVs at full power from arrival, AI batch jobs as soon as\n"
    "they arrive, thermal units (CHP, heat pumps, boilers) on their own local rules"
)


def _labels(rows: list[KpiRow]) -> dict[str, str]:
    """Labels of a multi-energy site that name what else the whole net cost holds (gas and the
    technologies' other operating costs) and what the local generation is."""
    costs = ["gas", *(r.label for r in rows if r.cost)]
    gen = [
        r.label.removesuffix(" energy").removesuffix(" electricity") for r in rows if r.generation
    ]
    return {
        "total_cost_eur": "net cost incl. " + " and ".join(costs),
        "net_cost_eur": "net cost, electricity only (" + ", ".join(f"no {c}" for c in costs) + ")",
        "local_self_consumption_pct": f"self-consumption of {' + '.join(gen)} electricity",
    }


def kpi_rows(ems: dict[str, float], base: dict[str, float]) -> list[tuple[str, str, int]]:
    """(key, label, decimals) of the rows to print, in their order: on a multi-energy site the
    net cost with gas and the other operating costs first and the electricity-only one labelled
    so; rows zero on both sides left out."""
    rows = tech_rows()
    order = sorted([*SITE_ROWS, *rows], key=lambda r: r.order)
    multi = "total_cost_eur" in ems or "total_cost_eur" in base
    labels = _labels(rows) if multi else {}
    if multi:  # the cost a reader compares first is the whole one
        order.sort(key=lambda r: r.key != "total_cost_eur")
    out = []
    for r in order:
        if (
            round(ems.get(r.key, 0.0), r.decimals) == 0
            and round(base.get(r.key, 0.0), r.decimals) == 0
        ):
            continue
        label = labels.get(r.key, r.label)
        out.append((r.key, label + (f" ({r.unit})" if r.unit else ""), r.decimals))
    return out


def kpi_table(ems: dict[str, float], base: dict[str, float]) -> str:
    """The demo's KPIs beside the baseline with the change: EMS − baseline and in % of the
    baseline; a percentage KPI's change in percentage points (pp) only."""
    lines = [BASELINE_TEXT, "", f"{'KPI':52s} {'EMS':>10s} {'baseline':>10s} {'change':>18s}"]
    for key, label, nd in kpi_rows(ems, base):
        e, b = ems.get(key, 0.0), base.get(key, 0.0)
        change = _change(e - b, b, nd, label.endswith("(%)"))
        lines.append(f"{label:52s} {_fixed(e, nd):>10s} {_fixed(b, nd):>10s} {change:>18s}")
    return "\n".join(lines)


def _fixed(x: float, nd: int) -> str:
    """``x`` with ``nd`` decimals, never a negative zero."""
    return f"{round(x, nd) + 0.0:.{nd}f}"


def _change(d: float, b: float, nd: int, points: bool) -> str:
    """The change column: ``±0`` when it rounds to nothing; ``+5.0 pp`` for a percentage KPI;
    else ``-2.00 (-17 %)``, the relative part ``(±0 %)`` when it rounds to nothing."""
    if round(d, nd) == 0:
        return "±0"
    if points:
        return f"{d:+.{nd}f} pp"
    if abs(b) <= 1e-9:
        return f"{d:+.{nd}f}"
    pct = 100 * d / abs(b)
    return f"{d:+.{nd}f} ({'±0' if round(pct) == 0 else f'{pct:+.0f}'} %)"


def devices_line(status: dict[str, Any]) -> str:
    """The bridges' counters after a ``--devices`` run
    (:meth:`adapters.devices.runtime.DeviceBridges.status`) as one readable line."""
    parts = []
    if "ocpp" in status:
        o = status["ocpp"]
        text = (
            f"{o['connected']}/{o['configured']} OCPP charge points connected; charging profiles "
            f"sent {o['profiles_sent']}, accepted {o['profiles_accepted']}, "
            f"rejected {o['profiles_rejected']}, failed {o['profiles_failed']}"
        )
        if o.get("profile_latency_p95_s") is not None:
            text += f" (p95 {o['profile_latency_p95_s']:.3f} s)"
        refused = o.get("refused_unknown", 0) + o.get("refused_auth", 0)
        if refused:
            text += f"; connections refused {refused}"
        if o.get("uncontrollable"):
            text += f"; not controllable: {', '.join(o['uncontrollable'])}"
        parts.append(text)
    if "modbus" in status:
        m = dict(status["modbus"])
        n, answering, writes = m.pop("devices"), m.pop("answering"), m.pop("writes_ok", 0)
        text = f"{answering}/{n} Modbus units answering; setpoint writes read back {writes}"
        errors = {k: v for k, v in m.items() if v}
        if errors:
            text += "; errors " + ", ".join(f"{k} {v}" for k, v in errors.items())
        parts.append(text)
    return "devices: " + "; ".join(parts)
