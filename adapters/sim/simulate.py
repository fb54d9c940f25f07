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
) -> dict[str, Any]:
    """Run (or resume) a simulated period; returns KPIs of the EMS and of the baseline.
    ``store``: a time-series store (default: SQLite in ``state_dir``)."""
    from adapters.mqtt.client import MqttClient, wait_until
    from adapters.mqtt.config import MqttSettings
    from adapters.sqlite_store import SQLiteStore

    state_dir.mkdir(parents=True, exist_ok=True)
    statedb = StateDB(state_dir / "ems-state.sqlite")
    meta = statedb.get("sim")
    if meta is None:
        meta = {
            "start": pd.Timestamp(start_local, tz=site.timezone).tz_convert("UTC").isoformat(),
            "seed": seed,
            "hours": hours,
        }
        statedb.commit_step({"sim": meta}, [], None, [])
    start = pd.Timestamp(meta["start"])
    dt = site.dt_h
    steps = int(round(float(meta["hours"]) / dt))
    exo = Exogenous.draw(setup, fc, start, steps + 1, dt, int(meta["seed"]), site.timezone)
    plant = PlantSim(setup, exo, dt, site.ev_safe_kw)
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
        f"model built once in {service.controller.build_s:.1f} s: {service.controller.component_count()} components, "
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
    sim_now = [plant.now]
    runtime = Runtime(service, settings, store, statedb, clock=lambda: sim_now[0]).start()

    # the plant's own MQTT client: publishes telemetry, receives retained setpoints
    plant_settings = settings.model_copy(update={"client_id": f"cer-sim-plant-{site.community}"})
    pclient = MqttClient(plant_settings, last_will=False).start()
    pclient.wait_connected(10)
    received: dict[tuple[str, str, str], dict[str, Any]] = {}
    rlock = threading.Lock()

    def on_setpoint(msg: Any) -> None:
        try:
            _root, _c, hub, kind, dev, _ch = msg.topic.split("/")
            if msg.payload:
                with rlock:
                    received[(hub, kind, dev)] = json.loads(msg.payload)
        except Exception:
            log.warning("bad setpoint on %s", msg.topic)

    pclient.subscribe(f"cer/{site.community}/+/+/+/setpoint", on_setpoint)
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    controllable = set(service.controllable())
    t_wall0 = time.perf_counter()
    sim0 = plant.i
    step_times: list[float] = []
    modes: dict[str, int] = {}
    try:
        while plant.i < steps and not stop.is_set():
            sim_now[0] = plant.now
            plant.begin_step()
            _publish_telemetry(pclient, site.community, plant, runtime)
            plan_id = f"{plant.now:%Y%m%dT%H%M}"
            out = runtime.run_step(plant.now, time_limit_s=time_limit_s)
            if out is None:  # the step failed (logged, alert stored): devices run their safe modes
                plant.advance({})
                statedb.commit_step({"plant": plant.to_dict()}, [], None, [])
                continue
            step_times.append(out.step_s)
            modes[out.outcome.result.mode] = modes.get(out.outcome.result.mode, 0) + 1
            wait_until(
                lambda: all(received.get(k, {}).get("plan_id") == plan_id for k in controllable),
                5.0,
                0.005,
            )
            with rlock:
                sps = {k: v for k, v in received.items() if v.get("plan_id") == plan_id}
            plant.advance(sps)
            statedb.commit_step({"plant": plant.to_dict()}, [], None, [])
            if plant.i % int(round(1 / dt)) == 0:
                r = out.outcome.result
                echo(
                    f"{plant.now.tz_convert(site.timezone):%a %H:%M}  {r.mode:8s} step {out.step_s:5.2f} s  "
                    f"import {sum(plant.rows[-1].get(f'{h}.import_kw', 0) for h in setup.hubs):6.1f} kW  "
                    f"export {sum(plant.rows[-1].get(f'{h}.export_kw', 0) for h in setup.hubs):6.1f} kW"
                    + (f"  alerts: {len(r.alerts)}" if r.alerts else "")
                )
            if speed > 0:
                target = (plant.i - sim0) * dt * 3600 / speed
                time.sleep(max(0.0, target - (time.perf_counter() - t_wall0)))
            if stop_after_steps is not None and len(step_times) >= stop_after_steps:
                break
        # a last telemetry round closes the final hour of the shared-energy log
        sim_now[0] = plant.now
        _publish_telemetry(pclient, site.community, plant, runtime)
        hours_closed = service.pending_hours
        service.pending_hours = []
        runtime._record_hours_only(hours_closed)  # also persists what the last round brought
    finally:
        pclient.stop(announce_offline=False)
        runtime.stop()
        if broker is not None:
            broker.stop()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    finished = plant.i >= steps
    result: dict[str, Any] = {
        "finished": finished,
        "steps": len(step_times),
        "modes": modes,
        "step_s": step_times,
        "wall_s": time.perf_counter() - t_wall0,
        "ledger_hours": statedb.hours(),
        "state_dir": str(state_dir),
    }
    incentive = setup.scenario.prices.incentive_eur_per_mwh
    if finished:
        base = PlantSim(setup, exo, dt, site.ev_safe_kw)
        for _ in range(steps):
            base.begin_step()
            base.advance(None)
        result["ems"] = with_thermal(kpis(plant, incentive), plant, setup, dt)
        result["baseline"] = with_thermal(kpis(base, incentive), base, setup, dt)
        result["plant"] = plant
        result["baseline_plant"] = base
    statedb.close()
    return result


def _publish_telemetry(pclient: Any, community: str, plant: PlantSim, runtime: Runtime) -> None:
    from adapters.mqtt.client import wait_until
    from ems.telemetry.topics import job_topic, state_topic

    msgs = [(state_topic(community, *key), p) for key, p in plant.telemetry()]
    msgs += [(job_topic(community, *key), p) for key, p in plant.job_announcements()]
    before = runtime.received
    for topic, payload in msgs:
        pclient.publish(topic, json.dumps(payload), qos=1)
    wait_until(lambda: runtime.received - before >= len(msgs), 5.0, 0.002)


KPI_ROWS = [
    ("cost_eur", "energy cost (purchase − sale)", "€", 2),
    ("incentive_eur", "shared-energy incentive", "€", 2),
    ("net_cost_eur", "net cost", "€", 2),
    ("net_cost_backlog_eur", "net cost + AI backlog at mean price", "€", 2),
    ("grid_import_kwh", "grid import", "kWh", 1),
    ("self_consumption_pct", "PV self-consumption", "%", 1),
    ("shared_kwh", "shared energy (hourly)", "kWh", 1),
    ("ai_batch_kwh", "AI batch energy", "kWh", 1),
    ("ai_from_surplus_kwh", "AI batch energy from surplus", "kWh", 1),
    ("ai_queued_end_kwh", "AI batch still queued (not yet due)", "kWh", 1),
    ("ai_jobs_late", "AI jobs finished late", "", 0),
    ("ev_kwh", "EV energy delivered", "kWh", 1),
    ("ev_requests_met", "EV sessions with request met", "", 0),
    ("ev_sessions_done", "EV sessions", "", 0),
    # multi-energy sites only
    ("local_self_consumption_pct", "self-consumption of PV + CHP electricity", "%", 1),
    ("gas_eur", "gas (CHP + boilers)", "€", 2),
    ("chp_om_eur", "CHP O&M", "€", 2),
    ("total_cost_eur", "net cost incl. gas and CHP O&M", "€", 2),
    ("co2_t", "CO2 (gas + grid import)", "t", 3),
    ("gas_kwh", "gas", "kWh", 0),
    ("chp_kwh", "CHP electricity", "kWh", 1),
    ("chp_heat_kwh", "CHP heat", "kWh", 1),
    ("hp_heat_kwh", "heat-pump heat", "kWh", 1),
    ("boiler_kwh", "boiler heat", "kWh", 1),
    ("dh_kwh", "district heat exchanged", "kWh", 1),
    ("link_kwh", "electricity exchanged between hubs", "kWh", 1),
    ("heat_unmet_kwh", "heat not served", "kWh", 1),
    ("heat_dump_kwh", "heat dissipated", "kWh", 1),
    ("cooling_unmet_kwh", "cooling not served", "kWh", 1),
]
THERMAL_KEYS = {
    "self_consumption_pct",
    "local_self_consumption_pct",
    "gas_eur",
    "chp_om_eur",
    "total_cost_eur",
    "co2_t",
    "gas_kwh",
    "chp_kwh",
    "chp_heat_kwh",
    "hp_heat_kwh",
    "boiler_kwh",
    "dh_kwh",
    "link_kwh",
    "heat_unmet_kwh",
    "heat_dump_kwh",
    "cooling_unmet_kwh",
}


def with_thermal(
    k: dict[str, float], sim: PlantSim, setup: OperationSetup, dt_h: float
) -> dict[str, float]:
    """KPIs plus the thermal side's (gas, CHP, heat pumps, boilers, exchanges, CO2) on a multi-energy site."""
    t = thermal_kpis(sim.rows, setup, dt_h)
    if t:
        k = {
            **k,
            **t,
            "total_cost_eur": k.get("net_cost_eur", 0.0) + t["gas_eur"] + t["chp_om_eur"],
        }
        gen = (
            k.get("pv_kwh", 0.0) + t["chp_kwh"]
        )  # with CHP the exports are not PV's: self-consumption of both
        k.pop("self_consumption_pct", None)
        k["local_self_consumption_pct"] = (
            100.0 * (1 - k.get("grid_export_kwh", 0.0) / gen) if gen > 0 else 0.0
        )
    return k


def kpi_table(ems: dict[str, float], base: dict[str, float]) -> str:
    lines = [f"{'KPI':44s} {'EMS':>10s} {'baseline':>10s}"]
    for key, label, unit, nd in KPI_ROWS:
        if key in THERMAL_KEYS and key not in ems and key not in base:
            continue
        lines.append(
            f"{label + (' (' + unit + ')' if unit else ''):44s} {ems.get(key, 0):10.{nd}f} {base.get(key, 0):10.{nd}f}"
        )
    return "\n".join(lines)
