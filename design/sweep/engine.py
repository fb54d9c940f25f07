"""Run a sweep's variants: serially in this process, on a Dask LocalCluster (default) or on a Dask
scheduler (``tcp://HOST:8786``), with a content-hash cache, a progress bar and one results table.

Each variant is one Dask task. A worker lost mid-task (machine gone, OOM kill) is the scheduler's
business: it re-runs the task on another worker (up to ``distributed.scheduler.allowed-failures``
times) and nothing is lost. A variant that fails by itself (invalid value, infeasible scenario,
solver error) comes back as a row with its status and reason; the others go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from design.sweep.spec import Sweep, Variant, file_digest
from design.sweep.variant import FINAL_STATUSES, run_variant
from ems.errors import EmsError

log = logging.getLogger(__name__)


@dataclass
class SweepRun:
    table: pd.DataFrame
    out_dir: Path
    wall_s: float
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    startup_s: float = 0.0  # starting the LocalCluster or connecting to the scheduler


# --------------------------------------------------------------------------- tasks and cache
def _tasks(variants: list[Variant], ship_files: bool) -> tuple[list[dict], dict[str, bytes]]:
    """One task per distinct hash; with ``ship_files`` the input files travel as a bundle."""
    bundle: dict[str, bytes] = {}
    tasks: dict[str, dict[str, Any]] = {}
    for v in variants:
        if v.hash in tasks:
            continue
        refs = {}
        for fld, path in v.files.items():
            if ship_files and Path(path).is_file():
                name = f"{file_digest(path)[:16]}_{Path(path).name}"
                if name not in bundle:
                    bundle[name] = Path(path).read_bytes()
                refs[fld] = name
            else:
                refs[fld] = path
        tasks[v.hash] = {
            "hash": v.hash,
            "label": v.label,
            "scenario": v.scenario,
            "price_path": v.price_path,
            "files": refs,
        }
    return list(tasks.values()), bundle


def _cache_get(cache: Path, h: str) -> dict[str, Any] | None:
    p = cache / f"{h}.json"
    if not p.is_file():
        return None
    try:
        row = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return row if row.get("status") in FINAL_STATUSES else None


def _cache_put(cache: Path, row: dict[str, Any]) -> None:
    if row.get("status") not in FINAL_STATUSES:
        return  # an error or a lost worker is retried next time
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f"{row['hash']}.json.tmp"
    tmp.write_text(json.dumps(row, default=str))
    tmp.replace(cache / f"{row['hash']}.json")


class _Progress:
    """tqdm bar on stderr: done / total variants, failures, elapsed and ETA."""

    def __init__(self, total: int, cached: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.failed = 0
        self.bar = tqdm(
            total=total,
            initial=cached,
            unit="variant",
            desc="sweep",
            file=sys.stderr,
            disable=not enabled,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self.bar.set_postfix(cached=cached, failed=0)
        self.cached = cached

    def step(self, row: dict[str, Any]) -> None:
        if row.get("status") != "ok":
            self.failed += 1
            self.bar.write(
                f"  variant {row.get('label', row['hash'])}: {row['status']}: {row.get('reason', '')}"
            )
        self.bar.set_postfix(cached=self.cached, failed=self.failed)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


# --------------------------------------------------------------------------- executors
def _run_serial(tasks: list[dict], threads: int, on_row) -> dict[str, dict]:
    for t in tasks:
        on_row(run_variant(t, None, threads))
    return {}


def threads_per_worker(client: Any) -> dict[str, int]:
    """Solver threads per worker so a host's workers do not oversubscribe its cores:
    cores of the host // task slots (worker threads) on that host, at least 1."""
    import os as _os

    info = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_os.cpu_count)
    slots: dict[str, int] = defaultdict(int)
    for w in info.values():
        slots[w["host"]] += int(w["nthreads"])
    return {
        addr: max(1, int(cores.get(addr) or 1) // max(1, slots[w["host"]]))
        for addr, w in info.items()
    }


def _worker_table(client: Any, threads: dict[str, int]) -> dict[str, dict[str, Any]]:
    info = client.scheduler_info(n_workers=-1)["workers"]
    return {
        a: {"host": w["host"], "nthreads": w["nthreads"], "solver_threads": threads.get(a)}
        for a, w in info.items()
    }


def _identity(x: Any) -> Any:
    return x


def _bundle_key(bundle: dict[str, bytes]) -> str:
    return hashlib.sha256("|".join(sorted(bundle)).encode()).hexdigest()[:16]


def _run_dask(
    tasks: list[dict],
    bundle: dict[str, bytes],
    client: Any,
    solver_threads: int | None,
    on_row,
) -> dict[str, dict[str, Any]]:
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    threads: dict[str, int] | int
    threads = solver_threads if solver_threads else {**threads_per_worker(client), "*": 1}
    workers = _worker_table(client, threads if isinstance(threads, dict) else {})
    # The input files are one task's output, not scattered data: scattered data lost with its
    # worker cannot be recomputed (and the active memory manager keeps a single replica), which
    # would cancel every variant; a task's output is recomputed from the spec the scheduler holds.
    bundle_f = None
    if bundle:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            bundle_f = client.submit(
                _identity, bundle, key=f"ems-files-{_bundle_key(bundle)}", pure=False
            )
    futures = {
        client.submit(
            run_variant,
            t,
            bundle_f,
            threads,
            key=f"ems-variant-{t['hash']}",
            pure=False,
        ): t
        for t in tasks
    }
    for fut in as_completed(futures):
        t = futures[fut]
        try:
            row = fut.result()
        except (FutureCancelledError, Exception) as exc:  # noqa: BLE001
            row = {
                "hash": t["hash"],
                "status": "error",
                "reason": f"{type(exc).__name__}: {exc}"[:500],
            }
        on_row(row)
        fut.release()
    return workers


def local_cluster(workers: int | None, n_tasks: int) -> tuple[Any, int]:
    """An embedded LocalCluster: one single-threaded worker process per core (capped by the
    number of variants); returns (cluster, solver threads per worker)."""
    from distributed import LocalCluster

    cores = os.cpu_count() or 1
    n = workers or max(1, min(cores, n_tasks))
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return cluster, max(1, cores // n)


def _quiet_distributed() -> None:
    """distributed logs at INFO by default: keep the terminal to the progress bar unless -v."""
    import distributed  # noqa: F401 - configures its loggers on import

    level = max(logging.WARNING, logging.getLogger().level)
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(level)


# --------------------------------------------------------------------------- the sweep
def run_sweep(
    sweep: Sweep,
    out_dir: Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    solver_threads: int | None = None,
    serial: bool = False,
    use_cache: bool = True,
    progress: bool = True,
    plots: bool = True,
) -> SweepRun:
    """Run every variant not in the cache, gather the table, write it and the plots."""
    t0 = time.perf_counter()
    cache = out_dir / "cache"
    done: dict[str, dict[str, Any]] = {}
    cached: set[str] = set()
    for v in sweep.variants:
        if use_cache and v.hash not in done:
            row = _cache_get(cache, v.hash)
            if row is not None:
                done[v.hash] = row
                cached.add(v.hash)
    todo = [v for v in sweep.variants if v.hash not in done]
    ship = scheduler is not None and not serial
    tasks, bundle = _tasks(todo, ship)
    n_unique = len({v.hash for v in sweep.variants})
    bar = _Progress(n_unique, len(cached), progress)

    def on_row(row: dict[str, Any]) -> None:
        row["label"] = next((v.label for v in sweep.variants if v.hash == row["hash"]), "")
        done[row["hash"]] = row
        _cache_put(cache, row)
        bar.step(row)

    if not serial and tasks:
        _quiet_distributed()
    mode = "serial" if serial else ("scheduler " + scheduler if scheduler else "LocalCluster")
    worker_info: dict[str, dict[str, Any]] = {}
    startup = 0.0
    if not tasks:
        mode = "all cached"
    try:
        if not tasks:
            pass
        elif serial:
            _run_serial(tasks, solver_threads or (os.cpu_count() or 1), on_row)
        elif scheduler:
            from distributed import Client

            try:
                t_start = time.perf_counter()
                client = Client(scheduler, timeout="20s")
                startup = time.perf_counter() - t_start
            except (OSError, TimeoutError, ValueError) as exc:
                raise EmsError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
            with client:
                worker_info = _run_dask(tasks, bundle, client, solver_threads, on_row)
        else:
            from distributed import Client

            t_start = time.perf_counter()
            cluster, threads = local_cluster(workers, len(tasks))
            startup = time.perf_counter() - t_start
            n_solver = solver_threads or threads
            mode = f"LocalCluster ({len(cluster.workers)} workers × {n_solver} solver threads)"
            with cluster, Client(cluster) as client:
                worker_info = _run_dask(tasks, bundle, client, solver_threads or threads, on_row)
    finally:
        bar.close()
    table = assemble(sweep, done, cached)
    run = SweepRun(table, out_dir, time.perf_counter() - t0, mode, workers=worker_info)
    run.startup_s = startup
    run.counts = table.drop_duplicates("hash")["status"].value_counts().to_dict()
    run.counts["cached"] = len(cached)
    run.counts["run"] = len(tasks)
    run.written = write_table(table, out_dir)
    if plots:
        from design.sweep.plots import write_plots

        run.written += write_plots(table, sweep, out_dir)
    return run


def assemble(sweep: Sweep, rows: dict[str, dict[str, Any]], cached: set[str]) -> pd.DataFrame:
    """One row per variant: index, group, label, axes, then the variant's result columns."""
    records = []
    for v in sweep.variants:
        rec: dict[str, Any] = {"variant": v.index, "group": v.group, "label": v.label}
        for k, val in v.axes.items():
            rec[f"axis.{k}"] = val
        rec["hash"] = v.hash
        rec["cached"] = v.hash in cached
        r = rows.get(v.hash, {"status": "lost", "reason": "no result came back"})
        rec.update({k: val for k, val in r.items() if k not in ("hash", "label")})
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    front = ["variant", "group", "label", "status", "reason", "cached", "hash"]
    cols = front + [c for c in df.columns if c not in front]
    return df[[c for c in cols if c in df.columns]]


def write_table(df: pd.DataFrame, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, pq = out_dir / "results.csv", out_dir / "results.parquet"
    df.to_csv(csv, index=False)
    # axis columns may mix numbers and labels across groups: store those as text in Parquet
    safe = df.copy()
    for c in safe.columns:
        if safe[c].dtype == object:
            kinds = {type(x) for x in safe[c].dropna()}
            if len(kinds) > 1:
                safe[c] = safe[c].map(lambda x: None if x is None else str(x))
    safe.to_parquet(pq, index=False)
    return [pq, csv]
