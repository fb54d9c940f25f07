"""Benchmark: chapter-6 physical design with the Benders sizing pass (issue 17), as ``ems design``
runs it, optionally with a CPU-bound process on the other core.

  python bench/design_benders.py [economic|mixed] [--load] [--gap G] [--strengthen N]
                                 [--proven-gap G] [--time-limit S] [--json out.json]

Prints the whole run's wall time, the sizing pass (rounds, bound, gap, stop), the verification,
the proven gap, the chosen sizes, and the time to a proven 2 %, 1 % and 0.5 %: the time from the
start of the sizing pass until its bound, against the plan finally verified, proves that gap,
plus the verification time ("not reached" when the final proven gap is above it).
``--load`` starts ``python -c 'while 1: pass'`` for the whole run and stops it at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from design.study import run_study  # noqa: E402

CASES = {
    "economic": ROOT / "design/cases/opera_pia/physical_economic.yaml",
    "mixed": ROOT / "design/cases/opera_pia/physical_mixed.yaml",
}


def time_to_proven(v: dict, history: list[dict], pct: float) -> float | None:
    """Seconds from the start of the sizing pass until the bound proves ``pct`` for the plan
    finally verified: without strengthened cuts, the round's time + the verification; with them,
    the later of the round and the moment that plan's verification ended (both are in the run)."""
    verified = v["verified_objective"]
    verified_at = v.get("verified_at_s")
    for h in history:
        if 100.0 * (verified - h["lower"]) / verified <= pct:
            if verified_at is None:
                return h["t"] + v["time_s"]
            return max(h["t"], verified_at)
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES), nargs="?", default="economic")
    ap.add_argument("--load", action="store_true", help="a busy loop on the other core")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--gap", type=float, default=None, help="sizing gap (overrides the scenario)")
    ap.add_argument(
        "--strengthen",
        type=int,
        default=0,
        help="rounds of strengthened cuts per engine configuration (solver.strengthen_rounds)",
    )
    ap.add_argument(
        "--proven-gap", type=float, default=0.0, help="with --strengthen: solver.proven_gap"
    )
    ap.add_argument(
        "--time-limit", type=float, default=None, help="safety net, s (solver.time_limit_s)"
    )
    a = ap.parse_args()
    case = CASES[a.case]
    if a.strengthen:  # the case with solver.strengthen_rounds set, through `extends` (beside
        # the case: its data paths are relative to the scenario file; removed at the end)
        case = case.with_name(f".{a.case}_strengthen_{os.getpid()}.yaml")
        case.write_text(
            f"extends: {CASES[a.case].name}\n"
            f"solver: {{strengthen_rounds: {a.strengthen}, proven_gap: {a.proven_gap}}}\n"
        )
    hog = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if a.load else None
    try:
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        r = run_study(case, log=print, mip_rel_gap=a.gap, time_limit_s=a.time_limit)
        wall = time.perf_counter() - t0
        load1 = os.getloadavg()[0]
    finally:
        if a.strengthen:
            case.unlink(missing_ok=True)
        if hog is not None:
            hog.kill()
            hog.wait()
    v = r.verification or {}
    rec = r.design.record
    sizes = {
        h.units.name: round(float(h.units.value), 6)
        for h in r.design.built.ctx.sizes.values()
        if h.is_variable
    }
    out = {
        "case": a.case,
        "loaded": a.load,
        "load_avg_start_end": [load0, load1],
        "highspy": version("highspy"),  # figures differ between HiGHS builds and machines
        "wall_s": wall,
        "asis_s": r.asis.record.time_s,
        "sizing": rec.as_dict(),
        "verification_s": v.get("time_s"),
        "verified_eur": v.get("verified_objective"),
        "proven_gap_pct": v.get("proven_gap_pct"),
        "time_to_proven_s": {
            str(p): time_to_proven(v, r.sizing_history or [], p) for p in (2.0, 1.0, 0.5)
        },
        "sizes": sizes,
        "history": r.sizing_history,
    }
    print(rec.line())
    print(
        f"{a.case}{' (loaded)' if a.load else ''}: wall {wall:.1f} s, proven gap "
        f"{out['proven_gap_pct']:.3f} %, verified {out['verified_eur']:,.0f} €, load "
        f"{load0:.1f} → {load1:.1f}, highspy {out['highspy']}; time to proven 2/1/0.5 %: "
        f"{out['time_to_proven_s']}"
    )
    print("sizes:", {k: v for k, v in sizes.items() if v})
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
