"""Sweep benchmark: the same variants of the Opera Pia virtual case run serially, on an embedded
LocalCluster (2 workers) and on an external Dask scheduler with 2 worker processes (started here
on loopback), without the cache. Prints wall time, speed-up and peak memory per worker.

    python bench/sweep.py                       # 8 variants: incentive 80 … 150 €/MWh, economic
    python bench/sweep.py --modes local,external --variants 4

Figures and conditions: BENCHMARKS.md ("Sweeps").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from design.sweep import load_sweep, run_sweep  # noqa: E402
from tests.integration import servers  # noqa: E402

BASE = ROOT / "design/cases/opera_pia/virtual_hp.yaml"


def sweep_file(folder: Path, n: int) -> Path:
    values = [float(v) for v in np.linspace(80.0, 150.0, n).round(1)]
    p = folder / "bench_sweep.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "name": "bench_incentive",
                "base": str(BASE),
                "grid": [{"field": "prices.incentive_eur_per_mwh", "values": values}],
            }
        )
    )
    return p


def measure(mode: str, path: Path, tmp: Path) -> dict:
    sweep = load_sweep(path)
    out = tmp / f"out_{mode}"
    cluster = None
    kwargs: dict = {"use_cache": False, "progress": True, "plots": False}
    if mode == "serial":
        kwargs["serial"] = True
    elif mode == "local":
        kwargs["workers"] = 2
    elif mode == "external":
        cluster = servers.dask_cluster(tmp / "dask", ("w1", "w2"))
        kwargs["scheduler"] = cluster.address
    t0 = time.perf_counter()
    try:
        run = run_sweep(sweep, out, **kwargs)
    finally:
        if cluster is not None:
            cluster.stop()
    wall = time.perf_counter() - t0
    t = run.table
    ok = t[t["status"] == "ok"]
    if mode == "serial":
        per_worker = {"this process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    else:
        per_worker = ok.groupby("worker")["peak_rss_mb"].max().to_dict()
    return {
        "mode": run.mode,
        "variants": len(t),
        "ok": len(ok),
        "wall_s": round(wall, 1),
        "startup_s": round(run.startup_s, 1),
        "workers": 1 if mode == "serial" else len(per_worker),
        "sum_variant_s": round(float(ok["wall_s"].sum()), 1),
        "median_variant_s": round(float(ok["wall_s"].median()), 1),
        "median_solve_s": round(float(ok["solve.design.time_s"].median()), 1),
        "solver_threads": sorted(set(int(x) for x in ok["solver_threads"])),
        "peak_rss_mb_per_worker": {k: round(v, 0) for k, v in per_worker.items()},
        "variants_per_worker": ok["worker"].value_counts().to_dict(),
        "objectives": [round(x, 0) for x in ok["solve.design.objective"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", type=int, default=8)
    ap.add_argument("--modes", default="serial,local,external")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    load = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = sweep_file(Path(tmp), args.variants)
        for mode in args.modes.split(","):
            print(f"--- {mode}", file=sys.stderr)
            results.append(measure(mode, path, Path(tmp)))
            print(json.dumps(results[-1]), file=sys.stderr)
    base = next((r["wall_s"] for r in results if r["mode"] == "serial"), None)
    print(f"\nload average at start {load[0]:.1f}, at end {os.getloadavg()[0]:.1f}; "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("| mode | variants ok | wall s | of which cluster start s | speed-up vs serial | "
          "median variant s | busy share of workers | solver threads | peak RSS per worker MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        speed = f"{base / r['wall_s']:.2f}×" if base else "–"
        rss = ", ".join(f"{v:.0f}" for v in r["peak_rss_mb_per_worker"].values())
        busy = r["sum_variant_s"] / (r["wall_s"] * r["workers"])
        print(
            f"| {r['mode']} | {r['ok']}/{r['variants']} | {r['wall_s']} | {r['startup_s']} | "
            f"{speed} | {r['median_variant_s']} | {busy:.0%} | {r['solver_threads']} | {rss} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"load": load, "results": results}, indent=2))


if __name__ == "__main__":
    main()
