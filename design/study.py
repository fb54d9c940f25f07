"""A design study: AS-IS baseline, sizing MILP, KPIs, outputs.

``run_study`` is what ``ems design`` calls. The AS-IS case is the same model with every size held
at its existing value (so the same accounting computes its cost and CO2, SPEC §3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ems.config.schema import Catalogue, PvTypeSpec, Scenario, load_scenario
from ems.model import results as res
from ems.model.assembly import grid_exclusivity_needed, techs_from_scenario
from ems.model.builder import BuiltModel, ObjectiveSpec, build_model
from ems.model.solve import SolveRecord, SolverSession
from design.data import StudyData, prepare
from design.kpis import compute_kpis


@dataclass
class CaseRun:
    built: BuiltModel
    record: SolveRecord
    costs: dict[str, float]
    kpis: dict[str, Any]


@dataclass
class StudyResult:
    scenario: Scenario
    catalogue: Catalogue
    study: StudyData
    asis: CaseRun
    design: CaseRun
    notes: list[str] = field(default_factory=list)


def yield_columns(s: Scenario, cat: Catalogue) -> list[str]:
    return sorted({cat.get(pv.type, PvTypeSpec, "pv").yield_column for h in s.hubs for pv in h.pv})


def run_study(scenario_path: str | Path, *, tee: bool = False, log: Callable[[str], None] = lambda _m: None,
              time_limit_s: float | None = None, mip_rel_gap: float | None = None) -> StudyResult:
    s, cat = load_scenario(scenario_path)
    log(f"scenario {s.name}: {s.community} community, {len(s.hubs)} hubs")
    study = prepare(s, yield_columns(s, cat))
    g = study.grid
    log(f"time: {len(g.periods)} typical days × {g.n_steps} steps of {g.dt_h} h ({g.days_represented:.0f} days/year)")
    solver = s.solver
    gap = solver.mip_rel_gap if mip_rel_gap is None else mip_rel_gap
    limit = solver.time_limit_s if time_limit_s is None else time_limit_s

    # AS-IS: same builder, sizes at their existing values; the same exclusivity rule (without it
    # a community with an incentive could "share" energy by importing and exporting at once)
    exclusive = grid_exclusivity_needed(s, study.sale_can_exceed_purchase)
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=exclusive)
    asis = build_model(techs, g, study.data, asis=True, interest_rate=s.finance.interest_rate, limits=limits)
    rec_asis = SolverSession(asis.model, mip_rel_gap=gap, time_limit_s=limit, threads=solver.threads).solve("AS-IS")
    log(rec_asis.line())
    asis_costs = res.cost_breakdown(asis)
    asis_run = CaseRun(asis, rec_asis, asis_costs, compute_kpis(asis, asis_costs))

    obj = ObjectiveSpec(kind=s.objective.kind, co2_price_eur_per_t=s.objective.co2_price_eur_per_t, alpha=s.objective.alpha,
                        cost_asis_eur=asis_costs["total"], co2_asis_t=asis_costs["co2_t"])
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=exclusive)
    built = build_model(techs, g, study.data, interest_rate=s.finance.interest_rate, limits=limits, objective=obj)
    log("solving the sizing MILP (HiGHS)…")
    rec = SolverSession(built.model, mip_rel_gap=gap, time_limit_s=limit, threads=solver.threads, tee=tee).solve("design")
    log(rec.line())
    costs = res.cost_breakdown(built)
    design_run = CaseRun(built, rec, costs, compute_kpis(built, costs, asis_costs))
    notes = []
    if exclusive:
        notes.append("import/export exclusivity binaries on: simultaneous import and export could pay "
                     "(shared-energy incentive or sale price ≥ purchase price)")
    return StudyResult(s, cat, study, asis_run, design_run, notes)
