"""Controller: setpoints within limits, one persistent model, fallback on timeout and stale data,
EV and AI-cluster requirements, balances of the plan."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from ems.techs.ai_cluster import AiCluster, BatchJob
from ems.techs.battery import Battery
from ems.techs.demand import Demand
from ems.techs.ev_charge_points import EvChargePoints, EvSession, session_from_state
from ems.techs.grid import Grid
from ems.techs.pv import Photovoltaic
from tests.operation.conftest import BESS, CP1, CP2, GPU1, noon, step_input


def _limits_ok(op, res) -> None:
    site, setup, fc, ctl = op
    for sp in res.setpoints:
        if sp.kind == "battery":
            bat = setup.first(Battery, sp.hub)
            p_max = bat.spec.c_rate_per_h * bat.capacity.value()
            assert -p_max - 1e-6 <= sp.values["p_kw"] <= p_max + 1e-6, sp
        elif sp.kind == "ev_charger":
            pt = next(
                c for c in setup.first(EvChargePoints, sp.hub).points if c.point_id == sp.device
            )
            assert -1e-6 <= sp.values["p_kw"] <= pt.p_kw + 1e-6, sp
        elif sp.kind == "ai_cluster":
            ai = next(a for a in setup.techs_of(AiCluster) if a.device_id == sp.device)
            assert ai.floor_kw - 1e-6 <= sp.values["p_cap_kw"] <= ai.rated_kw + 1e-6, sp
        assert sp.valid_until > res.start


def test_step_setpoints_within_limits_and_no_rebuild(op) -> None:
    site, setup, fc, ctl = op
    model_id, count = id(ctl.model), ctl.component_count()
    n_vars = sum(1 for _ in ctl.model.component_data_objects(pyo.Var))
    for k in range(3):
        start = noon() + pd.Timedelta(minutes=15 * k)
        inp = step_input(
            op,
            start,
            device_state={
                CP1: EvSession(12.0, 12),
                GPU1: [BatchJob("j", 60.0, 0, 20)],
                BESS: 0.3 + 0.1 * k,
            },
        )
        res = ctl.step(inp)
        assert res.mode in ("optimal", "feasible"), res.alerts
        kinds = {sp.kind for sp in res.setpoints}
        assert kinds == {"battery", "ev_charger", "ai_cluster"}
        _limits_ok(op, res)
        # the same Pyomo model, the same number of components: parameters only
        assert id(ctl.model) == model_id
        assert ctl.component_count() == count
        assert sum(1 for _ in ctl.model.component_data_objects(pyo.Var)) == n_vars


def test_time_limit_gives_fallback_within_the_step(op) -> None:
    site, setup, fc, ctl = op
    inp = step_input(op, noon(), time_limit_s=0.01, device_state={CP2: EvSession(10.0, 8)})
    t0 = time.perf_counter()
    res = ctl.step(inp)
    elapsed = time.perf_counter() - t0
    assert res.mode == "fallback", res.record
    assert res.alerts and "fallback" in res.alerts[0]
    assert all(sp.source == "fallback" for sp in res.setpoints)
    assert elapsed < 2.0
    sp = {s.key: s.values for s in res.setpoints}
    assert sp[("hub1", "ev_charger", "cp2")]["p_kw"] == site.ev_safe_kw  # EV at safe power
    assert sp[("hub1", "ai_cluster", "gpu1")]["p_cap_kw"] == 12.0  # AI at its floor
    _limits_ok(op, res)
    # the next step with a normal limit plans again
    assert ctl.step(step_input(op, noon())).mode in ("optimal", "feasible")


def test_stale_device_gets_its_safe_setpoint(op) -> None:
    site, setup, fc, ctl = op
    stale = {("hub1", "battery", "bess"): 3600.0}
    res = ctl.step(
        step_input(op, noon(), stale=stale, net_now_kw={"hub1": -40.0}, device_state={BESS: 0.5})
    )
    assert res.mode in ("optimal", "feasible")
    by_key = {s.key: s for s in res.setpoints}
    bat = by_key[("hub1", "battery", "bess")]
    assert bat.source == "fallback"
    assert bat.values["p_kw"] > 0  # surplus at the hub → charge (PV self-consumption rule)
    assert any("stale telemetry hub1/battery/bess" in a for a in res.alerts)
    assert all(s.source == "plan" for k, s in by_key.items() if k != ("hub1", "battery", "bess"))


def test_ev_leaves_with_requested_energy(op) -> None:
    """Receding horizon over a 2-hour session: the delivered energy reaches the request."""
    site, setup, fc, ctl = op
    pt = next(c for c in setup.first(EvChargePoints, "hub1").points if c.point_id == "cp1")
    need, got, dt = 10.0, 0.0, ctl.dt_h
    for k in range(8):
        start = noon() + pd.Timedelta(minutes=15 * k)
        sess = EvSession(need - got, 8 - k)
        res = ctl.step(step_input(op, start, device_state={CP1: sess}))
        p = {s.key: s.values for s in res.setpoints}[("hub1", "ev_charger", "cp1")]["p_kw"]
        assert 0 <= p <= pt.p_kw + 1e-6
        got += min(p * pt.eta * dt, need - got)
        assert res.short_kwh["ev_short_kwh"][("hub1", "cp1")] < 1e-6
    assert got >= need - 1e-3


def test_ai_batch_energy_before_deadline_and_in_surplus(op) -> None:
    site, setup, fc, ctl = op
    ai = setup.first(AiCluster, "hub1")
    # a 100 kWh job due in 4 h: 48 kW of headroom × 4 h = 192 kWh, feasible
    res = ctl.step(step_input(op, noon(), device_state={GPU1: [BatchJob("j1", 100.0, 0, 16)]}))
    assert res.short_kwh["ai_missed_kwh"]["gpu1"] < 1e-6
    b = ai.block
    keys = ctl.keys
    batch = np.array([sum(pyo.value(b.p_job_kw[j, p, t]) for j in b.J) for p, t in keys])
    assert batch[:16].sum() * ctl.dt_h == pytest_approx(100.0)
    assert batch[16:].sum() < 1e-6  # nothing after the deadline
    # an impossible job (300 kWh in 2 h) is served as far as possible and the rest reported missed
    res = ctl.step(step_input(op, noon(), device_state={GPU1: [BatchJob("j2", 300.0, 0, 8)]}))
    assert abs(res.short_kwh["ai_missed_kwh"]["gpu1"] - (300.0 - 48.0 * 2)) < 1e-3
    assert res.alerts == ["AI gpu1: job j2 cannot get 204.00 kWh before its deadline"]


def test_ai_batch_moves_to_pv_surplus(op) -> None:
    """A job free to run over the night and the morning goes where PV covers it (or it is cheap)."""
    site, setup, fc, ctl = op
    start = pd.Timestamp("2025-06-16 02:00", tz="UTC")  # 04:00 local, sunrise ahead
    res = ctl.step(step_input(op, start, device_state={GPU1: [BatchJob("j", 40.0, 0, 32)]}))
    plan = res.plan
    pv = plan["hub1.pv_kw"].to_numpy()
    ai = plan["hub1.ai_kw"].to_numpy() - 12.0
    assert ai.sum() * 0.25 > 39.9
    # energy-weighted PV at the hours the batch runs is above the window's mean PV
    assert (ai * pv).sum() / ai.sum() >= pv[:32].mean()


def test_plan_balances_close(op) -> None:
    site, setup, fc, ctl = op
    res = ctl.step(
        step_input(
            op,
            noon(),
            device_state={CP1: EvSession(8.0, 10), GPU1: [BatchJob("j", 50.0, 0, 20)]},
        )
    )
    plan = res.plan
    for hub in setup.hubs:
        supply = plan[f"{hub}.import_kw"] + plan.get(f"{hub}.pv_kw", 0) + plan[f"{hub}.unmet_kw"]
        use = (
            plan[f"{hub}.export_kw"]
            + plan[f"{hub}.load_kw"]
            + plan.get(f"{hub}.battery_kw", 0)
            + plan.get(f"{hub}.ev_kw", 0)
            + plan.get(f"{hub}.ai_kw", 0)
            + plan[f"{hub}.dump_kw"]
        )
        assert np.allclose(supply, use, atol=1e-5), hub
        assert plan[f"{hub}.unmet_kw"].max() < 1e-6  # nothing unserved in a normal plan


def pytest_approx(x: float, rel: float = 1e-4):
    import pytest

    return pytest.approx(x, rel=rel)


def test_persistent_resolve_matches_a_fresh_model(op) -> None:
    """Parameter updates reach HiGHS: after several steps with other data, re-solving equals a
    model built from scratch for the same input (mode parity of the persistent interface)."""
    from ems.operation.assembly import operation_setup, sale_can_exceed_purchase
    from ems.operation.controller import Controller

    site, setup, fc, ctl = op
    for k in range(2):
        ctl.step(
            step_input(
                op,
                noon() + pd.Timedelta(hours=3 * k),
                device_state={BESS: 0.9, GPU1: [BatchJob("x", 30.0, 2, 10)]},
            )
        )
    start = pd.Timestamp("2025-06-17 05:00", tz="UTC")
    kw = dict(
        device_state={BESS: 0.35, CP2: EvSession(9.0, 14), GPU1: [BatchJob("y", 70.0, 1, 24)]},
    )
    warm = ctl.step(step_input(op, start, **kw))
    fresh_setup = operation_setup(
        site, setup.scenario, setup.catalogue, sale_can_exceed_purchase(fc), sizes=setup.sizes
    )
    fresh = Controller(
        fresh_setup, n_steps=ctl.n_steps, dt_h=ctl.dt_h, time_limit_s=5.0, mip_rel_gap=1e-6
    )
    cold = fresh.step(step_input((site, fresh_setup, fc, fresh), start, **kw))
    assert warm.record.objective == pytest_approx(cold.record.objective, rel=0.011)


def test_tech_updates_set_values_only_and_reject_bad_data(op) -> None:
    import pytest

    site, setup, fc, ctl = op
    n = ctl.n_steps
    dem = next(d for d in setup.techs_of(Demand, "hub1") if d.carrier == "electricity")
    dem.update([10.0] * n)
    assert all(pyo.value(v) == 10.0 for v in dem.block.load_kw.values())
    with pytest.raises(ValueError, match="load_kw"):
        dem.update([1.0] * (n - 1))
    with pytest.raises(ValueError, match="NaN"):
        dem.update([float("nan")] * n)
    bat = setup.first(Battery, "hub1")
    bat.update(1.7)  # a BMS reading outside the band is clamped, never infeasible
    assert pyo.value(bat.block.soc_initial) == bat.spec.soc_max
    grid = setup.first(Grid, "hub1")
    grid.update([0.3] * n, [0.1] * n)
    assert pyo.value(next(iter(grid.block.price_buy.values()))) == 0.3
    pv = setup.techs_of(Photovoltaic, "hub1", installed=True)[0]
    pv.update([-0.2] * n)  # negative yields are clamped to 0
    assert all(pyo.value(v) == 0.0 for v in pv.block.yield_kw_per_kwp.values())
    # a short forecast is padded to the fixed horizon (the model never changes length)
    from ems.operation.controller import _fit

    assert len(_fit([1.0, 2.0], n, "x")) == n and _fit([1.0, 2.0], n, "x")[-1] == 2.0


def test_warm_start_from_the_shifted_plan_keeps_the_optimum(op):
    """Step twice with the same data, once warm-started from the previous plan shifted by one
    step and once cold: the objectives agree within the gap (a warm start must never change what
    is optimal), and the shift really moved the plan (x[t] took x[t+1]'s value)."""
    from ems.operation.warmstart import shift_plan

    site, setup, fc, ctl = op
    start = noon("2025-06-17")
    ctl.warm_start = True
    first = ctl.step(step_input(op, start))
    assert first.mode in ("optimal", "feasible")
    grid = next(t for t in setup.techs if t.kind == "grid" and t.hub == "hub1")
    # between steps the model holds the plan just made (read by plan_frame and the tests)
    imports = [grid.block.p_import_kw["h", t].value for t in range(3)]
    assert np.allclose(imports, first.plan["hub1.import_kw"].to_numpy()[:3])
    # the next step, half an hour on, starts from this plan shifted by two steps
    later = [grid.block.p_import_kw["h", t].value for t in range(2, 5)]
    assert ctl._prepare_warm_start(start + pd.Timedelta(minutes=30))
    assert [grid.block.p_import_kw["h", t].value for t in range(3)] == later
    assert not ctl._prepare_warm_start(
        start - pd.Timedelta(minutes=15)
    )  # a plan from the future: cold
    ctl.warm_start = True
    warm = ctl.step(step_input(op, start))
    assert warm.record.warm_start == "accepted" and first.record.warm_start in ("", "accepted")
    ctl.warm_start = False
    cold = ctl.step(step_input(op, start))
    assert warm.mode in ("optimal", "feasible") and cold.mode in ("optimal", "feasible")
    gap = max(warm.record.gap or 0, cold.record.gap or 0) + 1e-6
    assert (
        abs(warm.record.objective - cold.record.objective)
        <= gap * abs(cold.record.objective) + 1e-6
    )
    # shift_plan: moves t+1 into t
    before = [grid.block.p_import_kw["h", t].value for t in range(4)]
    moved = shift_plan(ctl.model)
    after = [grid.block.p_import_kw["h", t].value for t in range(3)]
    assert moved > 0 and after == before[1:4]
    assert all(v is not None for v in imports)


def test_site_gap_defaults_reach_highs(tmp_path) -> None:
    """The site's solver defaults — relative gap 0.01 %, absolute gap 5 cents over the horizon, warm
    start on — are what HiGHS gets (a 1 % relative gap of a day's bill could hide an EV shortfall
    or a missed AI job whose penalty is smaller than it)."""
    from adapters.config_io import load_operation
    from ems.operation.service import OperationService
    from tests.operation.conftest import write_site

    site, setup, fc = load_operation(write_site(tmp_path, solver={"time_limit_s": 3.0}))
    svc = OperationService(site, setup, fc)
    opts = svc.controller.session.options
    assert opts["mip_rel_gap"] == 1e-4 and opts["mip_abs_gap"] == 0.05 and svc.controller.warm_start
    # integer decisions over the whole horizon unless the site relaxes a tail
    assert svc.controller.integer_steps == site.n_steps and svc.controller.relaxed_vars == 0


@pytest.mark.parametrize(("hours", "steps"), [(1.0, 4), (0.1, 1), (1000.0, None)])
def test_site_integer_horizon_in_model_steps(tmp_path, hours: float, steps: int | None) -> None:
    """``solver.integer_horizon_h`` in whole 15-min steps, at least the first step (the
    setpoints); a horizon at least as long as the plan's keeps every step integer."""
    from adapters.config_io import load_site
    from tests.operation.conftest import write_site

    site = load_site(write_site(tmp_path, solver={"integer_horizon_h": hours}))
    assert site.integer_steps == steps


def test_a_cars_own_power_limit_from_the_charger_is_planned(op) -> None:
    """A 7.4 kW charger reports a 3 kW car (`vehicle_p_max_kw`): the session carries the limit and
    the plan never sets more, yet delivers the request by departure (3 kW × 4 h > 8 kWh)."""
    from ems.operation.state import PlantState

    site, setup, fc, ctl = op
    start = noon()
    st = PlantState()
    st.ingest(
        ("hub1", "ev_charger", "cp1"),
        {
            "ts": start.isoformat(),
            "plugged": True,
            "p_kw": 0.0,
            "requested_e_kwh": 8.0,
            "session_e_kwh": 0.0,
            "departure": (start + pd.Timedelta(hours=4)).isoformat(),
            "vehicle_p_max_kw": 3.0,
        },
    )
    sess = session_from_state(st.latest["hub1/ev_charger/cp1"], start, ctl.dt_h)
    assert sess.p_vehicle_kw == 3.0 and sess.departure_step == 16
    res = ctl.step(step_input(op, start, device_state={CP1: sess}))
    assert res.short_kwh["ev_short_kwh"][("hub1", "cp1")] < 1e-6
    planned = res.plan["hub1.ev_kw"].to_numpy()  # only cp1 is plugged
    assert planned.max() <= 3.0 + 1e-6
    pt = next(c for c in setup.first(EvChargePoints, "hub1").points if c.point_id == "cp1")
    assert planned[:16].sum() * ctl.dt_h * pt.eta >= 8.0 - 1e-4


def test_cars_waiting_make_the_plugged_car_finish_first(op) -> None:
    """A charger reports cars waiting for a free charger: the plugged car's window shrinks to the
    steps it needs at full power, so the plan charges it flat out now and frees the charger
    (without the queue, a 6-hour stay lets the plan wait for cheaper or sunnier hours)."""
    from ems.operation.service import OperationService

    site, setup, fc, ctl = op
    start = pd.Timestamp(
        "2025-06-16 05:00", tz="UTC"
    )  # early morning: PV comes later, waiting pays
    pt = next(c for c in setup.first(EvChargePoints, "hub1").points if c.point_id == "cp1")
    state = {
        "ts": start.isoformat(),
        "plugged": True,
        "p_kw": 0.0,
        "requested_e_kwh": 5.0,
        "session_e_kwh": 0.0,
        "departure": (start + pd.Timedelta(hours=6)).isoformat(),
    }
    steps_at_full = int(np.ceil(5.0 / (pt.p_kw * pt.eta * ctl.dt_h)))
    delivered = {}
    for waiting in (0, 2):
        svc = OperationService(site, setup, fc, controller=ctl)
        svc.on_state(("hub1", "ev_charger", "cp1"), {**state, "cars_waiting": waiting})
        out = svc.step(start, now=start)
        assert out.result.short_kwh["ev_short_kwh"][("hub1", "cp1")] < 1e-6
        delivered[waiting] = (
            out.result.plan["hub1.ev_kw"].to_numpy()[:steps_at_full].sum() * ctl.dt_h * pt.eta
        )
    assert delivered[2] >= 5.0 - 1e-4  # done within the steps it needs at full power
    assert delivered[0] < 5.0 - 0.5  # with no queue the plan takes its time


def test_charger_refusing_profiles_is_planned_at_full_power(op) -> None:
    """A charger that rejected the EMS's profile (session not controlled) charges at its own full
    power: the plan stops counting on deferring it (and on V2G from it)."""
    site, setup, fc, ctl = op
    pt = next(c for c in setup.first(EvChargePoints, "hub1").points if c.point_id == "cp1")
    start = pd.Timestamp("2025-06-16 02:00", tz="UTC")  # night: PV ahead, deferring pays
    key = ("hub1", "ev_charger", "cp1")

    def first_kw(sess: EvSession) -> float:
        res = ctl.step(step_input(op, start, device_state={CP1: sess}))
        assert res.mode in ("optimal", "feasible"), res.alerts
        return {s.key: s.values for s in res.setpoints}[key]["p_kw"]

    flexible = first_kw(EvSession(10.0, 32))
    refusing = first_kw(EvSession(10.0, 32, controlled=False))
    assert flexible < pt.p_kw - 0.5  # the plan defers a flexible car to cheaper/PV hours
    assert refusing == pytest_approx(pt.p_kw)  # as the charger will do on its own
