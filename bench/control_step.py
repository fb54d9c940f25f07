"""Control-step latency of the operation daemon (issue 6 benchmark).

A step = estimate state from telemetry + forecasts (pvlib clear sky, load history, tariff bands) +
parameter update of the persistent model + HiGHS re-solve + setpoint publish over MQTT (embedded
broker, QoS 1, retained) + store writes and the persisted state. Telemetry comes from the
simulated plant, which executes the setpoints between steps (not timed).

    python bench/control_step.py                         # case-study site, 96 steps, 48 h × 15 min
    python bench/control_step.py --hubs 20               # generated 20-hub community
    python bench/control_step.py --steps 1000 --mem      # memory after 10 vs after N steps
    python bench/control_step.py --site adapters/sim/opera_pia_physical_site.yaml \
        --steps 48 --start "2025-01-13 00:00"   # any SITE.yaml with its own step, horizon, solver

Prints p50/p95/max latency, solve share, modes and RSS.
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import resource
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
# run as a file (python bench/<name>.py): the checkout goes first on sys.path, so the
# imports below (noqa: E402) load this tree's code, not an installed copy.
sys.path.insert(0, str(ROOT))

from adapters.config_io import load_operation, read_scenario_yaml  # noqa: E402
from adapters.sim.plant import Exogenous, PlantSim  # noqa: E402


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def site_file(
    tmp: Path,
    hubs: int,
    horizon_h: float,
    time_limit_s: float,
    gap: float = 1e-4,
    warm_start: bool = True,
    abs_gap: float = 0.05,
) -> Path:
    scen_path = ROOT / "design/cases/opera_pia/virtual_hp.yaml"
    sizes = yaml.safe_load((ROOT / "adapters/sim/opera_pia_sizes.yaml").read_text())
    over = {"hub1": {"battery": {"modules": 6}, "chargers": {"charger_v1g_7_4kw": 3}}}
    ai = [{"id": "gpu1", "hub": "hub1", "rated_kw": 60, "floor_kw": 12}]
    if hubs != 4:
        raw = read_scenario_yaml(scen_path)
        base_hubs = raw["hubs"]
        new_hubs, new_sizes, over, ai = [], {}, {}, []
        for k in range(hubs):
            src = base_hubs[k % len(base_hubs)]
            h = copy.deepcopy(src)
            h["id"] = f"h{k + 1:02d}"
            new_hubs.append(h)
            new_sizes[h["id"]] = copy.deepcopy(sizes["hubs"].get(src["id"], {}))
            if src["id"] == "hub1":
                over[h["id"]] = {"battery": {"modules": 6}, "chargers": {"charger_v1g_7_4kw": 3}}
                if len(ai) < 3:
                    ai.append(
                        {"id": f"gpu{len(ai) + 1}", "hub": h["id"], "rated_kw": 60, "floor_kw": 12}
                    )
        raw["hubs"] = new_hubs
        raw["name"] = f"generated_{hubs}_hubs"
        raw["time"]["hourly_csv"] = str(ROOT / "design/cases/opera_pia/data/hourly.csv")
        raw.pop("extends", None)
        scen_path = tmp / "scenario.yaml"
        scen_path.write_text(yaml.safe_dump(raw))
        sizes = {"hubs": new_sizes}
        (tmp / "sizes.yaml").write_text(yaml.safe_dump(sizes))
        sizes_path = tmp / "sizes.yaml"
    else:
        sizes_path = ROOT / "adapters/sim/opera_pia_sizes.yaml"
    site = {
        "community": f"bench{hubs}",
        "scenario": str(scen_path),
        "sizes": str(sizes_path),
        "sizes_override": over,
        "horizon_h": horizon_h,
        "step_min": 15,
        "solver": {
            "time_limit_s": time_limit_s,
            "mip_rel_gap": gap,
            "mip_abs_gap_eur": abs_gap,
            "warm_start": warm_start,
        },
        "ai_clusters": ai,
    }
    p = tmp / "site.yaml"
    p.write_text(yaml.safe_dump(site))
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--hubs",
        type=int,
        default=4,
        help="4 = the case-study site; otherwise a generated community",
    )
    ap.add_argument("--steps", type=int, default=96)
    ap.add_argument("--horizon-h", type=float, default=48.0)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--gap", type=float, default=1e-4, help="HiGHS mip_rel_gap (the site default)")
    ap.add_argument(
        "--abs-gap", type=float, default=0.05, help="HiGHS mip_abs_gap in € (the site default)"
    )
    ap.add_argument("--cold", action="store_true", help="no warm start (each solve from scratch)")
    ap.add_argument("--mem", action="store_true", help="report RSS after 10 steps and at the end")
    ap.add_argument(
        "--no-publish", action="store_true", help="service step only (no MQTT, no store)"
    )
    ap.add_argument(
        "--site",
        default=None,
        help="a SITE.yaml (its step, horizon and solver settings; --hubs, "
        "--horizon-h, --time-limit, --gap, --abs-gap, --cold are ignored)",
    )
    ap.add_argument("--start", default="2025-06-16 00:00", help="simulated start, local time")
    ap.add_argument(
        "--per-step", action="store_true", help="one line per step: time, status, gap, bound"
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-control-"))
    site, setup, fc = load_operation(
        args.site
        or site_file(
            tmp, args.hubs, args.horizon_h, args.time_limit, args.gap, not args.cold, args.abs_gap
        )
    )
    dt = site.dt_h
    from adapters.runtime.daemon import Runtime, StateDB
    from ems.operation.service import OperationService

    t0 = time.perf_counter()
    service = OperationService(site, setup, fc)
    build_s = time.perf_counter() - t0
    ctl = service.controller
    print(
        f"{len(setup.hubs)} hubs, horizon {site.horizon_h:g} h × {site.step_min} min "
        f"({ctl.n_steps} steps); model built once in {build_s:.2f} s; "
        f"{ctl.component_count()} components; exports closed at {len(ctl.closed_exports)} hubs; "
        f"integer steps {ctl.integer_steps}, relaxation-cut rows {ctl.cut_rows} "
        f"({site.solver.relaxation_cuts})"
    )
    start = pd.Timestamp(args.start, tz="Europe/Rome").tz_convert("UTC")
    days = args.steps * dt / 24
    exo = Exogenous.draw(setup, fc, start, args.steps + 1, dt, seed=1)
    plant = PlantSim(setup, exo, dt)
    clock = [start]
    runtime = broker = None
    if not args.no_publish:
        from adapters.broker.embedded import EmbeddedBroker
        from adapters.mqtt.config import MqttSettings
        from adapters.sqlite_store import SQLiteStore

        broker = EmbeddedBroker().start()
        settings = MqttSettings(community=site.community, host=broker.host, port=broker.port)
        runtime = Runtime(
            service,
            settings,
            SQLiteStore(tmp / "ts.sqlite"),
            StateDB(tmp / "state.sqlite"),
            clock=lambda: clock[0],
        ).start()
    lat, cpu, solve, modes, gaps = [], [], [], {}, []
    limit_hits = 0
    load_start = os.getloadavg()
    starts: dict[str, int] = {}
    mem10 = None
    components = ctl.component_count()
    for i in range(args.steps):
        clock[0] = plant.now
        plant.begin_step()
        for key, payload in plant.telemetry():
            service.on_state(key, payload)
        for key, payload in plant.job_announcements():
            service.on_message("job", key, payload)
        t, c = time.perf_counter(), time.process_time()
        if runtime is not None:
            out = runtime.run_step(plant.now)
            res = out.outcome.result
        else:
            res = service.step(plant.now).result
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        limit_hits += bool(res.record is not None and res.record.hit_time_limit)
        solve.append(res.timings_s.get("solve", 0.0))
        modes[res.mode] = modes.get(res.mode, 0) + 1
        if res.record is not None and res.record.gap is not None:
            gaps.append(res.record.gap)
        if res.record is not None and res.record.warm_start:
            starts[res.record.warm_start] = starts.get(res.record.warm_start, 0) + 1
        if args.per_step and res.record is not None:
            r = res.record
            gap = "n/a" if r.gap is None else f"{100 * r.gap:.2f} %"
            print(
                f"  step {i:3d} {plant.now:%H:%M}Z: {lat[-1]:.2f} s (solve {r.time_s:.2f} s) "
                f"{r.termination}, gap {gap}, objective {r.objective or 0:,.2f}, "
                f"bound {r.bound or 0:,.2f}",
                flush=True,
            )
        plant.advance(
            {
                sp.key: {"valid_until": sp.valid_until.isoformat(), **sp.values}
                for sp in res.setpoints
            }
        )
        if i == 9 and args.mem:
            gc.collect()
            mem10 = rss_mb()
        if (i + 1) % 100 == 0:
            print(f"  {i + 1} steps, last {lat[-1]:.2f} s, RSS {rss_mb():.0f} MB", flush=True)
    assert ctl.component_count() == components, "the model changed structure"
    s = sorted(lat)
    q = lambda p: s[min(len(s) - 1, int(round(p * (len(s) - 1))))]  # noqa: E731
    cs = sorted(cpu)
    print(
        f"steps {len(lat)} ({days:.1f} simulated days): latency p50 {q(0.5):.2f} s, p95 {q(0.95):.2f} s, "
        f"max {s[-1]:.2f} s; solve p50 {statistics.median(solve):.2f} s; modes {modes}; "
        f"gap max {100 * max(gaps or [0]):.2f} %; {limit_hits} stopped by the time limit; "
        f"warm starts {starts or 'none'}"
    )
    print(
        f"process CPU time per step (all threads; what the step costs without other jobs): "
        f"p50 {cs[len(cs) // 2]:.2f} s, p95 {cs[min(len(cs) - 1, round(0.95 * (len(cs) - 1)))]:.2f} s, "
        f"max {cs[-1]:.2f} s; load average at start {load_start[0]:.1f}, "
        f"at end {os.getloadavg()[0]:.1f} (1 min); highspy {version('highspy')}"
    )
    from adapters.sim.simulate import kpis

    k = kpis(plant, setup.scenario.prices.incentive_eur_per_mwh)
    if setup.has_thermal():
        from adapters.sim.simulate import with_thermal

        k = with_thermal(k, plant, setup, dt)
        print(
            f"executed (multi-energy): net cost incl. gas and CHP O&M {k['total_cost_eur']:.2f} €, "
            f"heat not served {k['heat_unmet_kwh']:.1f} kWh, dissipated {k['heat_dump_kwh']:.1f} kWh"
        )
    print(
        f"executed: net cost {k['net_cost_eur']:.2f} €, EV requests met {k['ev_requests_met']:.0f}/"
        f"{k['ev_sessions_done']:.0f}, AI jobs late {k['ai_jobs_late']:.0f}, "
        f"{'warm start' if not args.cold else 'cold start'}"
    )
    if args.mem:
        gc.collect()
        end = rss_mb()
        print(
            f"RSS after 10 steps {mem10:.0f} MB, after {len(lat)} steps {end:.0f} MB "
            f"({100 * (end / mem10 - 1):+.1f} %)"
        )
    if runtime is not None:
        runtime.stop()
        runtime.statedb.close()
    if broker is not None:
        broker.stop()


if __name__ == "__main__":
    main()
