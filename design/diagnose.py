"""Where an infeasible case fails to balance: re-solve it with unmet/dump slack on every balance
(the operation mode's slack, dear) and name the hubs, carriers and first hours that need it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyomo.environ as pyo

from ems.model.builder import BuiltModel
from ems.model.solve import SolveRecord, SolverSession

#: €/kWh of slack: far above any energy price, so slack is used only where nothing else balances
SLACK_PENALTY_EUR_PER_KWH = 1000.0


@dataclass
class Shortfall:
    hub: str
    carrier: str
    kind: str  # "unmet" (supply missing) or "surplus" (nowhere to put it)
    mwh_per_y: float
    peak_kw: float
    first_hours: list[str]

    def text(self) -> str:
        what = "cannot meet demand" if self.kind == "unmet" else "cannot dispose of a surplus"
        hours = ", ".join(self.first_hours[:3]) + (" …" if len(self.first_hours) > 3 else "")
        return (
            f"{self.hub} {self.carrier} {what} (up to {self.peak_kw:,.1f} kW, "
            f"{self.mwh_per_y:,.1f} MWh/y; first at {hours})"
        )


def _hhmm(hour: float) -> str:
    minutes = int(round(hour * 60))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def shortfalls(built: BuiltModel, tol_kw: float = 1e-4) -> list[Shortfall]:
    """The slack a solved slack model used, per (hub, carrier, unmet/surplus)."""
    m = built.model
    g = built.ctx.grid
    out = []
    for kind, var in (("unmet", m.unmet_kw), ("surplus", m.dump_kw)):
        for h, c in m.B:
            used = [(p, t, float(pyo.value(var[h, c, p, t]))) for p, t in g.index()]
            used = [u for u in used if u[2] > tol_kw]
            if not used:
                continue
            out.append(
                Shortfall(
                    h,
                    c,
                    kind,
                    sum(kw * g.annual_factor(p) for p, _t, kw in used) / 1e3,
                    max(kw for _p, _t, kw in used),
                    [f"{p} {_hhmm(g.hour_of(t))}" for p, t, _ in used],
                )
            )
    return sorted(out, key=lambda s: -s.mwh_per_y)


def solve_with_slack(
    build: Callable[[float], BuiltModel], label: str, **session: float | int
) -> tuple[BuiltModel, SolveRecord, list[Shortfall]]:
    """Build with ``build(slack_penalty)``, solve, return the model, record and shortfalls."""
    built = build(SLACK_PENALTY_EUR_PER_KWH)
    rec = SolverSession(built.model, **session).solve(label)  # type: ignore[arg-type]
    return built, rec, shortfalls(built)


def summary(short: list[Shortfall]) -> str:
    if not short:
        return "no balance needs slack (the infeasibility is elsewhere: sizes, EV needs, links)"
    more = f"; and {len(short) - 2} more" if len(short) > 2 else ""
    return "; ".join(s.text() for s in short[:2]) + more


def is_infeasible(rec: SolveRecord) -> bool:
    return rec.objective is None and rec.termination in (
        "provenInfeasible",
        "infeasibleOrUnbounded",
    )
