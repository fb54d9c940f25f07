"""``ems run``: the operation daemon (``--config SITE.yaml``) or the embedded demo (``--simulate``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from ems.errors import ConfigError

log = logging.getLogger(__name__)


def _check_start(start_local: str) -> None:
    """``--start`` must be a local date and time (a bad one was a pandas traceback)."""
    import pandas as pd

    try:
        ts = pd.Timestamp(start_local)
    except (ValueError, TypeError) as exc:
        raise click.BadParameter(
            f"{start_local!r} is not a date and time (e.g. 2025-06-16 00:00): {exc}",
            param_hint="--start",
        ) from None
    if ts is pd.NaT or ts.tzinfo is not None:
        raise click.BadParameter(
            f"{start_local!r}: give a local date and time without a time zone",
            param_hint="--start",
        )


@click.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="SITE.yaml of the community to operate.",
)
@click.option(
    "--simulate",
    is_flag=True,
    help="Simulated case-study plant, embedded broker and SQLite, accelerated clock.",
)
@click.option(
    "--speed",
    type=float,
    default=0.0,
    show_default=True,
    help="Simulated seconds per wall second (0: as fast as the steps allow).",
)
@click.option("--hours", type=float, default=24.0, show_default=True, help="Simulated hours.")
@click.option(
    "--state",
    "state_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory (SQLite state, ledger, time series); reuse it to resume after a restart.",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Random draws of the simulated day."
)
@click.option(
    "--start",
    "start_local",
    default="2025-06-16 00:00",
    show_default=True,
    help="Simulated start (local time).",
)
@click.option(
    "--devices",
    is_flag=True,
    help="--simulate: the chargers as OCPP charge points and the batteries/PV as Modbus SunSpec "
    "devices (real protocols on loopback) instead of MQTT.",
)
@click.option(
    "--mqtt-host", default=None, help="Use this broker instead of the embedded one (--simulate)."
)
@click.option("--mqtt-port", type=click.IntRange(1, 65535), default=1883, show_default=True)
@click.option(
    "--time-limit",
    "time_limit_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Solver time limit per step (s).",
)
@click.option(
    "--steps",
    "max_steps",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many steps (tests, first runs).",
)
def run(
    config_path: str | None,
    simulate: bool,
    speed: float,
    hours: float,
    state_dir: str | None,
    seed: int,
    start_local: str,
    devices: bool,
    mqtt_host: str | None,
    mqtt_port: int,
    time_limit_s: float | None,
    max_steps: int | None,
) -> None:
    """Operate a community: every quarter hour (and when an EV plugs in or an AI job arrives)
    forecast, re-solve the persistent model and publish setpoints over MQTT."""
    from adapters.config_io import load_operation

    if not simulate and not config_path:
        raise click.UsageError("give --config SITE.yaml, or --simulate for the embedded demo")
    if speed < 0:
        raise click.BadParameter("must be ≥ 0", param_hint="--speed")
    if hours <= 0:
        raise click.BadParameter("must be > 0", param_hint="--hours")
    _check_start(start_local)
    if simulate:
        from adapters.sim.simulate import DEFAULT_SITE, kpi_table, run_simulation

        site, setup, fc = load_operation(config_path or DEFAULT_SITE)
        ignored = ignored_device_sections(site, devices)
        if ignored:
            click.echo(ignored, err=True)
        state = Path(state_dir) if state_dir else Path("out") / "simulate"
        mqtt = {"host": mqtt_host, "port": mqtt_port} if mqtt_host else None
        click.echo(
            f"simulating {hours:g} h of {site.community} ({len(setup.hubs)} hubs); state in {state}/"
        )
        res = run_simulation(
            site,
            setup,
            fc,
            state_dir=state,
            hours=hours,
            speed=speed,
            seed=seed,
            start_local=start_local,
            mqtt=mqtt,
            time_limit_s=time_limit_s,
            echo=click.echo,
            stop_after_steps=max_steps,
            devices=devices,
        )
        _echo_simulation(res, kpi_table)
        return

    from adapters.mqtt.config import MqttSettings
    from adapters.runtime.daemon import Runtime, StateDB, run_realtime, utcnow
    from ems.operation.service import OperationService
    from ems.operation.state import PlantState

    site, setup, fc = load_operation(config_path)
    statedb = StateDB(site.resolve(site.store.path))
    service = OperationService(
        site, setup, fc, state=PlantState.from_dict(statedb.get("plant_state") or {})
    )
    broker = None
    mqtt = dict(site.mqtt or {})
    if not mqtt:
        from adapters.broker.embedded import EmbeddedBroker

        broker = EmbeddedBroker().start()
        mqtt = {"host": broker.host, "port": broker.port}
        click.echo(f"no mqtt: section; embedded broker on {broker.host}:{broker.port}")
    try:
        settings = MqttSettings(community=site.community, **mqtt)
    except Exception as exc:
        raise ConfigError(config_path, "mqtt", str(exc).splitlines()[-1].strip()) from None
    if site.store.kind == "influx":
        from adapters.influx.config import InfluxSettings
        from adapters.influx.store import InfluxStore

        store = InfluxStore(InfluxSettings.model_validate(site.store.influx))
    else:
        from adapters.sqlite_store import SQLiteStore

        p = site.resolve(site.store.path)
        store = SQLiteStore(p.with_name(p.stem + "-timeseries.sqlite"))
    from adapters.devices.runtime import device_settings

    ocpp, modbus = device_settings(site, {(h, k, d) for h, k, d, _ in service.devices()})
    runtime = Runtime(service, settings, store, statedb, clock=utcnow).start()
    bridges = _start_bridges(runtime, site, ocpp, modbus)
    click.echo(
        f"operating {site.community}: {len(setup.hubs)} hubs, "
        f"model built in {service.controller.build_s:.1f} s; steps every {site.step_min} min"
    )
    try:
        run_realtime(runtime, site.step_min, max_steps=max_steps, echo=click.echo)
    finally:
        if bridges is not None:
            bridges.stop()
        statedb.close()
        if broker is not None:
            broker.stop()
    sys.stdout.flush()


def ignored_device_sections(site: Any, devices: bool) -> str:
    """The one-line warning that ``--simulate`` does not use the site's ``ocpp:`` / ``modbus:``
    sections (empty when it declares neither): they address real charge points and inverters
    (their ids, passwords, certificates, IP addresses), which a simulated plant cannot be."""
    names = [f"{s}:" for s in ("ocpp", "modbus") if getattr(site, s, None)]
    if not names:
        return ""
    instead = (
        "--devices runs the simulated chargers/batteries/PV over OCPP/Modbus on loopback "
        "with settings of its own"
        if devices
        else "add --devices to run the simulated ones over OCPP/Modbus on loopback"
    )
    return (
        f"warning: --simulate ignores the {' and '.join(names)} section of {site.path_ or 'SITE.yaml'}"
        ": it addresses real devices, which the simulated plant cannot be; "
        f"{instead}; `ems run --config` without --simulate connects to them"
    )


def _echo_simulation(res: dict, kpi_table: Any) -> None:
    st = sorted(res["step_s"])
    if st:
        p50, p95 = st[len(st) // 2], st[min(len(st) - 1, int(0.95 * len(st)))]
        click.echo(
            f"{res['steps']} steps in {res['wall_s']:.1f} s wall; "
            f"step p50 {p50:.2f} s, p95 {p95:.2f} s; modes {res['modes']}; "
            f"{len(res['ledger_hours'])} hours in the shared-energy log"
        )
    stops = res.get("time_limit_stops") or []
    if stops:
        click.echo(
            f"{len(stops)} steps stopped by the solver's time limit (a wall-clock safety net, "
            f"UTC {', '.join(stops[:5])}{' …' if len(stops) > 5 else ''}): their plans, and so "
            "these KPIs, depend on the machine's load; raise solver.time_limit_s to stop on the gap"
        )
    if res.get("devices"):
        from adapters.sim.simulate import devices_line

        click.echo(devices_line(res["devices"]))
    if res.get("ems"):
        from adapters.sim.simulate import incentive_note

        click.echo("")
        click.echo(kpi_table(res["ems"], res["baseline"]))
        note = incentive_note(res["ems"], res["baseline"], res["incentive_eur_per_mwh"])
        if note:
            click.echo(note)
    elif not res["finished"]:
        click.echo("stopped before the end; run the same command again to resume")


def _start_bridges(runtime: Any, site: Any, ocpp: Any, modbus: Any) -> Any:
    """The site's OCPP CSMS and Modbus bridge (None when it declares neither)."""
    if ocpp is None and modbus is None:
        return None
    from adapters.devices.runtime import DeviceBridges

    bridges = DeviceBridges(
        runtime, ocpp=ocpp, modbus=modbus, base_dir=site.path_.parent if site.path_ else None
    ).start()
    if bridges.csms is not None:
        click.echo(
            f"OCPP CSMS on {'wss' if ocpp.cert_file else 'ws'}://{ocpp.host}:{bridges.csms.port}"
            f"{ocpp.path_prefix}/<id> for {len(ocpp.charge_points)} charge points"
        )
    if bridges.modbus is not None:
        click.echo(f"polling {len(modbus.devices)} Modbus TCP devices")
    return bridges


COMMANDS = [run]
