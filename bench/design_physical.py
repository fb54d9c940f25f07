"""Benchmark: the physical community of chapter 6 (4 hubs × 12 typical days × 24 h), HiGHS.

Variants (each prints model size, status, objective, bound, gap, time):
  monolithic   — every integer kept (sizes, units on, HP modes, exchange/DH binaries), one MILP;
  two_pass     — sizing pass with the per-step integers relaxed (only sizes integer), then the
                 per-day verification with sizes fixed and full integrality; the proven gap is
                 (verified − sizing bound) / verified.

  python bench/design_physical.py [economic|mixed] [--variant two_pass|monolithic] \
      [--gap 0.01] [--time-limit 600] [--threads 2] [--json out.json] [--gap-by-day]

``--gap-by-day`` (two_pass): after the verification, each typical day with the sizes fixed is
also solved with every per-step integer relaxed, so LP vs MILP per day shows where the
relaxation gap of the chosen plan lies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a file (python bench/<name>.py): the checkout goes first on sys.path, so the
# imports below (noqa: E402) load this tree's code, not an installed copy.
sys.path.insert(0, str(ROOT))

from adapters.config_io import load_scenario  # noqa: E402
from design.data import prepare  # noqa: E402
from design.study import verify_by_day, yield_columns  # noqa: E402
from ems.model.assembly import techs_from_scenario  # noqa: E402
from ems.model.builder import ObjectiveSpec, build_model, relax_operational_integers  # noqa: E402
from ems.model.solve import SolverSession  # noqa: E402

CASES = {
    "economic": ROOT / "design/cases/opera_pia/physical_economic.yaml",
    "mixed": ROOT / "design/cases/opera_pia/physical_mixed.yaml",
}
SEED = {
    "binaries": 99180,
    "integers": 2030,
    "continuous": 112920,
    "constraints": 338194,
    "time": "> 10 h (Gurobi)",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(CASES), nargs="?", default="economic")
    ap.add_argument("--variant", choices=["two_pass", "monolithic"], default="two_pass")
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--gap-by-day", action="store_true")
    a = ap.parse_args()
    s, cat = load_scenario(CASES[a.case])
    t0 = time.perf_counter()
    study = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in study.data.max(numeric_only=True).items()}
    obj = ObjectiveSpec(kind=s.objective.kind, co2_price_eur_per_t=s.objective.co2_price_eur_per_t)
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=False, peaks=peaks)
    built = build_model(
        techs,
        study.grid,
        study.data,
        interest_rate=s.finance.interest_rate,
        limits=limits,
        objective=obj,
    )
    t_build = time.perf_counter() - t0
    from ems.model.solve import ModelSize

    full_size = ModelSize.of(built.model)
    relaxed = relax_operational_integers(built) if a.variant == "two_pass" else 0
    rec = SolverSession(
        built.model, mip_rel_gap=a.gap, time_limit_s=a.time_limit, threads=a.threads
    ).solve(f"{a.case} {a.variant} sizing")
    print(f"build {t_build:.1f} s; full model {full_size}; seed {SEED}")
    print(rec.line())
    out = {
        "case": a.case,
        "variant": a.variant,
        "gap_target": a.gap,
        "build_s": t_build,
        "full_size": full_size.__dict__,
        "sizing": {**rec.as_dict(), "relaxed_vars": relaxed},
    }
    if a.variant == "two_pass":
        v = verify_by_day(
            s,
            cat,
            study,
            built,
            rec,
            obj,
            False,
            peaks,
            gap=min(a.gap, 0.001),
            time_limit_s=30,
            threads=a.threads,
            log=print,
        )
        out["verification"] = v
        print(f"two-pass total {v['total_time_s']:.1f} s, proven gap {v['proven_gap_pct']:.3f} %")
        if a.gap_by_day:
            out["gap_by_day"] = gap_by_day(s, cat, study, built, obj, peaks, v)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2, default=str))


def gap_by_day(s, cat, study, built, obj, peaks, verification) -> list[dict]:  # noqa: ANN001
    """Per typical day, sizes fixed: LP (per-step integers relaxed) vs the verified MILP objective."""
    import pyomo.environ as pyo

    from ems.model.timegrid import TimeGrid

    g = study.grid
    sizes = {
        h.units.name: float(pyo.value(h.units)) for h in built.ctx.sizes.values() if h.is_variable
    }
    rows = []
    for day in verification["days"]:
        p = day["day"]
        grid_d = TimeGrid(
            (p,),
            g.n_steps,
            g.dt_h,
            {p: g.weight[p]},
            cyclic=g.cyclic,
            kind={p: g.kind.get(p, "weekday")},
        )
        techs, limits = techs_from_scenario(s, cat, exclusive_grid=False, peaks=peaks)
        dm = build_model(
            techs,
            grid_d,
            study.data.loc[[p]],
            interest_rate=s.finance.interest_rate,
            limits=limits,
            objective=obj,
        )
        for h in dm.ctx.sizes.values():
            if h.is_variable:
                val = sizes[h.units.name]
                h.units.fix(round(val) if h.units.is_integer() else val)
        relax_operational_integers(dm)
        rec = SolverSession(dm.model, mip_rel_gap=1e-4, time_limit_s=60).solve(f"LP {p}")
        rows.append(
            {
                "day": p,
                "lp": rec.objective,
                "milp": day["objective"],
                "gap_eur": day["objective"] - rec.objective,
            }
        )
        print(
            f"{p}: LP {rec.objective:,.0f}, MILP {day['objective']:,.0f}, "
            f"relaxation gap {day['objective'] - rec.objective:,.0f} €/y"
        )
    print(
        f"relaxation gap at the chosen sizes, all days: {sum(r['gap_eur'] for r in rows):,.0f} €/y"
    )
    return rows


if __name__ == "__main__":
    main()
