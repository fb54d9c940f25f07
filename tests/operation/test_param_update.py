"""The compiled Param update (ems.model.param_update) pushes to HiGHS exactly what Pyomo's own
persistent update pushes, and the one-pass solution load gives what Pyomo's loader gives: the
15-min multi-energy site, steps with new forecasts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from adapters.config_io import load_operation
from adapters.sim.plant import Exogenous, PlantSim
from ems.errors import SolveError
from ems.model.param_update import CompiledUpdate, NotCompilable
from ems.model.solve import SolverSession
from ems.operation.service import OperationService

SITE = Path(__file__).resolve().parents[2] / "adapters/sim/opera_pia_physical_site_15min.yaml"


def _lp(h) -> dict[str, np.ndarray]:  # noqa: ANN001 - highspy.Highs
    lp = h.getLp()
    a = lp.a_matrix_
    return {
        "col_cost": np.array(lp.col_cost_),
        "col_lower": np.array(lp.col_lower_),
        "col_upper": np.array(lp.col_upper_),
        "row_lower": np.array(lp.row_lower_),
        "row_upper": np.array(lp.row_upper_),
        "a_start": np.array(a.start_),
        "a_index": np.array(a.index_),
        "a_value": np.array(a.value_),
        "offset": np.array([lp.offset_]),
    }


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_compiled_update_pushes_what_pyomo_pushes() -> None:
    site, setup, fc = load_operation(SITE)
    service = OperationService(site, setup, fc)
    start = pd.Timestamp("2025-01-13 06:00", tz="Europe/Rome").tz_convert("UTC")
    plant = PlantSim(setup, Exogenous.draw(setup, fc, start, 4, site.dt_h, seed=1), site.dt_h)
    ctl = service.controller
    before = None
    for i in range(3):
        plant.begin_step()
        for key, payload in plant.telemetry():
            service.on_state(key, payload)
        res = service.step(plant.now).result
        assert res.mode == "optimal"  # the compiled pass runs from the second step on
        solver = ctl.session.solver
        assert solver.compiled_updates and isinstance(solver._compiled, CompiledUpdate) == (i > 0)
        if i > 0:
            # the plan was loaded by the one-pass list (frozen structure): the values Pyomo's
            # own loader would give, bit for bit, for every variable it would load
            assert solver._load_key is not None
            by_pyomo = solver._get_primals()
            assert len(by_pyomo) > 5_000
            assert all(var.value == value for var, value in by_pyomo.items())
            h = solver._solver_model
            solver._compiled.push(h)  # the Params as this step left them
            compiled = _lp(h)
            super(type(solver), solver).update_parameters()  # Pyomo's own update
            assert _same(compiled, _lp(h))  # bit for bit
            assert before is not None and not _same(before, compiled)  # the forecasts moved
            before = compiled
        else:
            before = _lp(solver._solver_model)
        plant.advance(
            {
                sp.key: {"valid_until": sp.valid_until.isoformat(), **sp.values}
                for sp in res.setpoints
            }
        )


def test_unknown_expressions_go_through_pyomo_and_quadratic_objectives_fall_back() -> None:
    m = pyo.ConcreteModel()
    m.p = pyo.Param(initialize=2.0, mutable=True)
    m.q = pyo.Param(initialize=3.0, mutable=True)
    m.x = pyo.Var(bounds=(0, 10))
    m.y = pyo.Var(bounds=(0, 10))
    # a coefficient Pyomo evaluates (exp of a Param: an "opaque" node), a sum bound, a division
    m.c = pyo.Constraint(expr=pyo.exp(m.p / 10) * m.x + m.y >= m.p + m.q)
    m.d = pyo.Constraint(expr=m.x <= m.q / m.p * 4)
    m.o = pyo.Objective(expr=m.p * m.x + (m.q - m.p) * m.y + m.q)
    session = SolverSession(m, threads=1, mip_rel_gap=0.0)
    session.solve("first")
    session.freeze_structure()
    m.p.value, m.q.value = 4.0, 7.0
    rec = session.solve("second")
    assert isinstance(session.solver._compiled, CompiledUpdate)
    compiled = _lp(session.solver._solver_model)
    m.q.value = None  # a Param without a value is an error, as in Pyomo's update (no NaN pushed)
    with pytest.raises(SolveError, match="uninitialized parameter q"):
        session.solve("third")
    m.q.value = 7.0
    session.solver.compiled_updates = False
    session.solver.update_parameters()
    assert _same(compiled, _lp(session.solver._solver_model))
    # min 4x + 3y + 7 with exp(0.4)·x + y ≥ 11, x ≤ 7·4/4 = 7: x is the cheaper cover
    # (4/exp(0.4) = 2.68 € per unit against 3 €), up to its bound; y the rest
    assert rec.objective == pytest.approx(4.0 * 7.0 + 3.0 * (11.0 - 7.0 * math.exp(0.4)) + 7.0)

    mq = pyo.ConcreteModel()
    mq.p = pyo.Param(initialize=1.0, mutable=True)
    mq.x = pyo.Var(bounds=(-5, 5))
    mq.o = pyo.Objective(expr=mq.p * mq.x**2 - mq.x)
    sq = SolverSession(mq, threads=1)
    sq.solve("q")
    with pytest.raises(NotCompilable):
        CompiledUpdate(sq.solver)
    sq.freeze_structure()
    mq.p.value = 2.0
    assert sq.solve("q2").objective == pytest.approx(-1.0 / 8.0, abs=1e-6)  # x = 1/(2p)
    assert sq.solver._compiled is False  # Pyomo's update did it
