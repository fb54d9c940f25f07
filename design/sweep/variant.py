"""Run one sweep variant where it lands (in this process or on a Dask worker) and summarise it.

The variant is the one design study entry point, :func:`design.study.run_study`, on a scenario
file written to a private temp folder: no study logic lives here. Input files travel with the task
(a bundle of bytes named by content hash, written once per machine) so workers need no shared
filesystem. The summary is one flat row: sizes, KPIs, costs, cash-flow figures when the study
has them, and every solve's record.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from ems.errors import ConfigError, EmsError, SolveError

#: outcomes that are a property of the variant (cached); anything else is retried on a re-run
FINAL_STATUSES = ("ok", "infeasible", "invalid")


def _machine_dir() -> Path:
    d = Path(tempfile.gettempdir()) / f"cer-ems-sweep-{os.getuid()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def materialise_bundle(bundle: dict[str, bytes]) -> dict[str, Path]:
    """Write the bundle's files once per machine (names carry their content hash)."""
    root = _machine_dir() / "files"
    root.mkdir(exist_ok=True)
    out = {}
    for name, blob in bundle.items():
        p = root / name
        if not p.exists() or p.stat().st_size != len(blob):
            tmp = p.with_suffix(p.suffix + f".{os.getpid()}.tmp")
            tmp.write_bytes(blob)
            tmp.replace(p)
        out[name] = p
    return out


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local:{os.getpid()}"


def _threads_here(threads: int | dict[str, int] | None) -> int:
    if isinstance(threads, int):
        return threads
    if isinstance(threads, dict):
        return int(threads.get(_worker_address(), threads.get("*", 1)))
    return 1


def _write_scenario(task: dict[str, Any], files: dict[str, Path], folder: Path) -> Path:
    """The variant's scenario file, its file references pointing at local copies; a Monte Carlo
    price path is applied to a copy of the data table."""
    scn = yaml.safe_load(yaml.safe_dump(task["scenario"]))  # deep copy, plain types
    for fld, ref in task["files"].items():
        keys = fld.split(".")
        node = scn
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = str(files.get(ref, ref))
    path = task.get("price_path")
    if path is not None:
        import pandas as pd

        from design.sweep import prices as mc

        t = scn["time"]
        if t.get("hourly_csv"):
            hourly = pd.read_csv(t["hourly_csv"], index_col=0, parse_dates=[0])
            scn["prices"] = mc.apply_to_hourly(scn, hourly, path)
            hourly.index = hourly.index.strftime("%Y-%m-%d %H:%M")
            hourly.index.name = "timestamp"
            t["hourly_csv"] = str(folder / "hourly_mc.csv")
            hourly.to_csv(t["hourly_csv"])
        else:
            days = pd.read_csv(t["typical_days_csv"])
            scn["prices"] = mc.apply_level_only(scn, days, path)
            t["typical_days_csv"] = str(folder / "days_mc.csv")
            days.to_csv(t["typical_days_csv"], index=False)
    p = folder / "scenario.yaml"
    p.write_text(yaml.safe_dump(scn, sort_keys=False))
    return p


def run_variant(
    task: dict[str, Any],
    bundle: dict[str, bytes] | None = None,
    threads: int | dict[str, int] | None = None,
) -> dict[str, Any]:
    """Run one variant (a Dask task). Never raises for a bad or infeasible variant: the row says
    ``status`` (ok | infeasible | invalid | error) and ``reason``."""
    t0 = time.perf_counter()
    n_threads = _threads_here(threads)
    row: dict[str, Any] = {
        "hash": task["hash"],
        "worker": _worker_address(),
        "host": os.uname().nodename,
        "solver_threads": n_threads,
    }
    try:
        files = materialise_bundle(bundle) if bundle else {}
        with tempfile.TemporaryDirectory(dir=_machine_dir()) as tmp:
            task = {**task, "scenario": dict(task["scenario"])}
            task["scenario"]["solver"] = {
                **task["scenario"].get("solver", {}),
                "threads": n_threads,
            }
            path = _write_scenario(task, files, Path(tmp))
            from design.study import run_study

            result = run_study(path)
            row.update(summarise(result))
        row["status"], row["reason"] = "ok", ""
    except SolveError as exc:
        infeasible = "infeasible" in str(exc).lower()
        row["status"] = "infeasible" if infeasible else "error"
        row["reason"] = str(exc)
    except (ConfigError, EmsError) as exc:
        row["status"], row["reason"] = "invalid", str(exc).replace(str(_machine_dir()), "<tmp>")
    except Exception as exc:  # noqa: BLE001 - a failing variant must not stop the sweep
        last = traceback.extract_tb(exc.__traceback__)[-1]
        row["status"] = "error"
        row["reason"] = f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})"
    row["wall_s"] = round(time.perf_counter() - t0, 3)
    row["peak_rss_mb"] = _peak_rss_mb()
    return row


def _peak_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


# --------------------------------------------------------------------------- summary row
def flatten(prefix: str, value: Any, out: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Scalar leaves of nested mappings as ``prefix.a.b`` columns."""
    if isinstance(value, dict):
        for k, v in value.items():
            if str(k) not in skip:
                flatten(f"{prefix}.{k}" if prefix else str(k), v, out, skip)
    elif value is None or isinstance(value, (bool, int, float, str)):
        out[prefix] = (
            float(value) if isinstance(value, int) and not isinstance(value, bool) else value
        )
    elif hasattr(value, "__float__"):
        out[prefix] = float(value)


def size_summary_of(techs: list[Any]) -> str:
    """Sizes summed over hubs in one line: each technology with a ``summary_label`` as one group
    ('PV 385 kWp · bat 50 kWh · 6 chargers'), then up to three other non-zero items by key."""
    groups: dict[str, list[Any]] = {}
    other: dict[str, float] = {}
    for t in techs:
        for s in t.size_rows():
            if t.summary_label:
                groups.setdefault(t.summary_label, [0.0, s["unit"]])[0] += s["installed"]
            elif s["installed"]:
                other[s["key"]] = other.get(s["key"], 0.0) + s["installed"]
    parts = []
    for label, (v, unit) in groups.items():
        if unit != "units":
            parts.append(f"{label} {v:.0f} {unit}")
        elif round(v):
            parts.append(f"{v:.0f} {label}{'' if round(v) == 1 else 's'}")
    parts += [f"{k} {v:.3g}" for k, v in list(other.items())[:3]]
    return " · ".join(parts)


def summarise(r: Any) -> dict[str, Any]:
    """One flat row of a :class:`design.study.StudyResult`."""
    from design.report import sizes_table

    row: dict[str, Any] = {}
    for s in sizes_table(r):
        row[f"size.{s['hub']}.{s['key']}_{str(s['unit']).lower()}"] = s["installed"]
    row["label.sizes"] = size_summary_of(r.design.built.techs)
    flatten("kpi", r.design.kpis, row, skip=("energy_mwh_per_y",))
    flatten("asis", r.asis.kpis, row, skip=("energy_mwh_per_y", "hubs"))
    flatten("cost", r.design.costs, row)
    for name, rec in (("asis", r.asis.record), ("design", r.design.record)):
        d = rec.as_dict()
        for k in ("status", "termination", "objective", "bound", "gap", "time_s"):
            row[f"solve.{name}.{k}"] = d[k]
        for k, v in d["size"].items():
            row[f"solve.{name}.{k}"] = v
    if getattr(r, "verification", None):
        flatten("verification", r.verification, row, skip=("days",))
    row.update(cash_flow_columns(r))
    row["notes"] = " | ".join(r.notes)
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def cash_flow_columns(r: Any) -> dict[str, Any]:
    """Cash-flow figures (NPV, IRR, payback…) when the design study computes them: the summary the
    report writes to results.json, flattened. Absent → no columns."""
    out: dict[str, Any] = {}
    try:
        from design import report
        from design.cashflow import summary
    except ImportError:
        return out
    flows = getattr(report, "cash_flows", None)
    if flows is None:
        return out
    flatten("cashflow", summary(flows(r)), out)
    return out
