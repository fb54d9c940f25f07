"""Benchmark: the virtual-community design case (seed §5.2.1) to a 0.5 % gap.

Usage: python bench/design_virtual.py [SCENARIO ...] [--gap 0.005] [--repeat 3]
Prints one Markdown row per run: build + solve time, gap, model size (for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# run as a file (python bench/<name>.py): the checkout goes first on sys.path, so the
# imports below (noqa: E402) load this tree's code, not an installed copy.
sys.path.insert(0, str(ROOT))

from design.study import run_study  # noqa: E402

DEFAULT = [ROOT / "design/cases/opera_pia/virtual_hp.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenarios", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--gap", type=float, default=0.005)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(
        "| scenario | binaries | integers | continuous | constraints "
        "| wall s (median) | solve s (median) | gap % | objective € |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in args.scenarios:
        walls, solves = [], []
        rec = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = run_study(scenario, mip_rel_gap=args.gap)
            walls.append(time.perf_counter() - t0)
            rec = r.design.record
            solves.append(rec.time_s)
        assert rec is not None
        s = rec.size
        print(
            f"| {scenario.stem} | {s.binaries:,} | {s.integers:,} | {s.continuous:,} | {s.constraints:,} | "
            f"{statistics.median(walls):.1f} | {statistics.median(solves):.1f} | "
            f"{100 * (rec.gap or 0):.3f} | {rec.objective:,.0f} |"
        )


if __name__ == "__main__":
    main()
