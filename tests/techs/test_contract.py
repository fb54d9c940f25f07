"""Contract tests over the technology registry, and the design↔operation parity test.

For every registered kind, on tiny scenarios that hold it (the cases below, plus the example hub
a technology gives with ``contract_hub``):

- it builds in design mode and in operation mode (sizes from the design optimum, fixed);
- in operation no size is a variable (every size handle is a Param);
- after an update with other data and a second solve HiGHS holds the same model: the same
  ``highspy.Highs`` object with the same row and column counts (asked from the solver);
- its balance terms close (design: the hard balances; operation: with the slack).

Parity: the operation model over the design's typical day, with the design data as a perfect
forecast and the stores starting where the design's cyclic day starts, plans the same cost as the
design dispatch of that day (energy − sale − incentive + penalties) within 0.1 %.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
import yaml

from adapters.config_io import load_operation, load_scenario
from design.study import prepare, yield_columns
from ems.config.sizes import SizesFile, check_known
from ems.model import results as res
from ems.model.assembly import grid_exclusivity_needed, techs_from_scenario
from ems.model.builder import BuiltModel, build_model
from ems.model.solve import SolverSession
from ems.operation.assembly import OperationSetup, operation_setup
from ems.operation.controller import Controller, StepInput
from ems.operation.service import OperationService
from ems.operation.site import SiteConfig, installed_sizes
from ems.operation.state import PlantState
from ems.techs.base import Technology, device_state
from ems.techs.registry import REGISTRY, Registration, registration
from tests.design.conftest import CATALOGUE as ELECTRIC_CATALOGUE
from tests.design.conftest import make_scenario as design_scenario
from tests.design_thermal.conftest import CATALOGUE as THERMAL_CATALOGUE

H = 24
START = pd.Timestamp("2025-01-15 00:00", tz="UTC")
CATALOGUE = {"entries": {**ELECTRIC_CATALOGUE["entries"], **THERMAL_CATALOGUE["entries"]}}
CATALOGUE["entries"]["pv"]["yield_column"] = "yield"


def make_scenario(
    tmp: Path,
    columns: dict[str, list[float]],
    hubs: list[dict[str, Any]],
    *,
    community: str = "independent",
    prices: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    catalogue: dict[str, Any] | None = None,
) -> Path:
    return design_scenario(
        tmp,
        columns,
        hubs,
        community=community,
        name="contract",
        extra=extra,
        catalogue=catalogue or CATALOGUE,
        prices=prices
        or {"purchase_column": "buy", "sale_eur_per_kwh": 0.05, "gas_eur_per_kwh": 0.08},
    )


def _day(peak: float, base: float = 0.0) -> list[float]:
    """A daylight bell over 24 hours (0 at night)."""
    return [base + peak * max(np.sin(np.pi * (h - 6) / 12), 0.0) for h in range(H)]


COLUMNS: dict[str, list[float]] = {
    "load1": [60.0 + 20 * (8 <= h < 20) for h in range(H)],
    "load2": [40.0 + 10 * (7 <= h < 22) for h in range(H)],
    "heat1": [120.0 - 40 * (10 <= h < 16) for h in range(H)],
    "heat2": [80.0] * H,
    "cool1": [0.0] * 10 + [30.0] * 8 + [0.0] * 6,
    "t_amb_c": [4.0 + 8 * max(np.sin(np.pi * (h - 8) / 12), 0.0) for h in range(H)],
    "yield": _day(0.8),
    "sol": _day(0.6),
    "buy": [0.22] * 7 + [0.30] * 12 + [0.22] * 5,
    "yield_a": _day(0.8),
    "pz": [90.0] * 7 + [130.0] * 12 + [90.0] * 5,
}


def _hub(hid: str, load: str, **kw: Any) -> dict[str, Any]:
    return {"id": hid, "contract_kw": 300.0, "electricity": {"column": load}, **kw}


def _multi_energy(tmp: Path) -> Path:
    """Two hubs of a physical community: PV, battery, CHP, heat pump, absorption chiller, buffer,
    solar thermal, boilers, district heating and the private electric network."""
    h1 = _hub(
        "h1",
        "load1",
        roof_area_m2=1000.0,
        pv=[{"type": "pv", "max_kwp": 150.0}],
        battery={"type": "bat", "max_modules": 10},
        heating={"column": "heat1"},
        cooling={"column": "cool1"},
        chp=[{"type": "chp100", "max_units": 1}],
        heat_pumps=[{"type": "hp", "max_units": 1}],
        absorption_chillers=[{"type": "ac", "max_units": 1}],
        puffer={"type": "puf"},
        solar_thermal={"type": "sol", "max_m2": 50.0},
        boilers=[{"type": "boil", "existing_kw": 300.0}],
        district_heating=True,
    )
    h2 = _hub(
        "h2",
        "load2",
        heating={"column": "heat2"},
        heat_pumps=[{"type": "hp", "max_units": 1}],
        boilers=[{"type": "boil", "existing_kw": 200.0}],
        district_heating=True,
    )
    extra = {"district_heating": {"eta": 0.9, "connection_capex_eur": 1000.0}}
    return make_scenario(tmp, COLUMNS, [h1, h2], community="physical", extra=extra)


def _virtual_ev(tmp: Path) -> Path:
    """A virtual community with the flat incentive and an EV fleet."""
    h1 = _hub(
        "h1",
        "load1",
        pv=[{"type": "pv_a", "max_kwp": 100.0}],
        battery={"type": "bat", "max_modules": 4},
        chargers=[{"type": "v1g", "max_units": 1}],
        vehicles=[
            {
                "name": "van",
                "arrival_h": 8,
                "departure_h": 18,
                "need_kwh_per_day": 30.0,
                "battery_kwh": 60.0,
                "days": "all",
                "p_max_kw": 11.0,
            }
        ],
    )
    h2 = _hub("h2", "load2")
    prices = {
        "purchase_column": "buy",
        "sale_eur_per_kwh": 0.05,
        "incentive_eur_per_mwh": 110.0,
        "gas_eur_per_kwh": 0.08,
    }
    return make_scenario(tmp, COLUMNS, [h1, h2], community="virtual", prices=prices)


def _virtual_dm414(tmp: Path) -> Path:
    """A virtual community with the DM 414 incentive by the ledger's rules (TIP per plant)."""
    h1 = _hub("h1", "load1", pv=[{"type": "pv", "max_kwp": 150.0}])
    h2 = _hub("h2", "load2")
    extra = {"incentive": {"region": "Liguria", "pz_column": "pz"}}
    return make_scenario(tmp, COLUMNS, [h1, h2], community="virtual", extra=extra)


@dataclass
class Case:
    name: str
    path: Path
    design: BuiltModel
    setup: OperationSetup
    ctl: Controller
    data: pd.DataFrame


def _design(path: Path) -> tuple[BuiltModel, pd.DataFrame, Any, Any]:
    s, cat = load_scenario(path)
    st = prepare(s, yield_columns(s, cat))
    peaks = {str(c): float(v) for c, v in st.data.max(numeric_only=True).items()}
    exclusive = grid_exclusivity_needed(s, False)
    techs, limits = techs_from_scenario(s, cat, exclusive_grid=exclusive, peaks=peaks)
    built = build_model(
        techs, st.grid, st.data, interest_rate=s.finance.interest_rate, limits=limits
    )
    rec = SolverSession(built.model, mip_rel_gap=0.0, time_limit_s=120).solve("design")
    assert rec.status == "optimal"
    return built, st.data, s, cat


def _case(tmp: Path, name: str, path: Path, ai: bool = False) -> Case:
    built, data, s, cat = _design(path)
    sizes: dict[str, dict[str, Any]] = {}
    for t in built.techs:
        sizes.setdefault(t.hub, {}).update(t.size_entry())
    sizes.pop("community", None)
    site = SiteConfig(
        community="t",
        scenario=str(path),
        sizes=str(tmp / "sizes.yaml"),
        step_min=60,
        horizon_h=H,
        ai_clusters=[{"id": "gpu1", "hub": "h1", "rated_kw": 20.0, "floor_kw": 5.0}] if ai else [],
    )
    setup = operation_setup(site, s, cat, sizes=sizes)
    ctl = Controller(
        setup,
        n_steps=H,
        dt_h=1.0,
        time_limit_s=60.0,
        mip_rel_gap=0.0,
        mip_abs_gap_eur=1e-6,
        warm_start=False,
    )
    return Case(name, path, built, setup, ctl, data)


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    out = {}
    builtin = (
        ("multi_energy", _multi_energy),
        ("virtual_ev", _virtual_ev),
        ("virtual_dm414", _virtual_dm414),
    )
    for name, make in builtin:
        tmp = tmp_path_factory.mktemp(name)
        out[name] = _case(tmp, name, make(tmp), ai=name == "virtual_ev")
    for reg in REGISTRY:  # a technology's own example hub (Technology.contract_hub)
        example = reg.tech.contract_hub()
        if example is not None:
            tmp = tmp_path_factory.mktemp(reg.kind)
            hub, catalogue = example
            cat = {"entries": {**CATALOGUE["entries"], **catalogue}}
            path = make_scenario(tmp, COLUMNS, [hub], catalogue=cat)
            out[reg.kind] = _case(tmp, reg.kind, path)
    return out


def _first_day_input(case: Case, scale: float = 1.0) -> StepInput:
    """The design day as a perfect forecast (``scale`` × the demands for a second, other step)."""
    d = case.data
    s = case.setup
    cols = {c: d[c].to_numpy(dtype=float) for c in d.columns if c in s.data_columns()}
    for c in cols:
        if "load" in c or "heat" in c or "cool" in c:
            cols[c] = cols[c] * scale
    inp = StepInput(
        START,
        {h: cols.pop(s.load_column(h)) for h in s.hubs},
        {},
        cols.pop("price_buy_eur_per_kwh"),
        cols.pop("price_sell_eur_per_kwh"),
        columns=cols,
    )
    return inp


def _with_design_start_state(case: Case, inp: StepInput) -> StepInput:
    """Stores start where the design's cyclic day starts (its state at the last step)."""
    last = case.design.ctx.grid.index()[-1]
    for t in case.design.techs:
        if t.kind == "battery":
            cap = t.capacity.value()
            if cap > 0:
                inp.device_state[t.device_key] = pyo.value(t.block.e_kwh[last]) / cap
        elif t.kind == "thermal_storage":
            cap = float(pyo.value(t.capacity_expr()))
            if cap > 0:
                inp.device_state[t.device_key] = pyo.value(t.block.e_kwh[last]) / cap
    return inp


def _kinds(built_or_setup: Any) -> set[str]:
    return {t.kind for t in built_or_setup.techs}


def test_every_registered_kind_is_covered(cases: dict[str, Case]) -> None:
    """Each kind of the registry is built by at least one case (design or operation model)."""
    seen: set[str] = set()
    for c in cases.values():
        seen |= _kinds(c.design) | _kinds(c.setup)
    missing = {r.kind for r in REGISTRY} - seen - UNCOVERED
    assert not missing, f"no contract case builds {sorted(missing)}: give it a contract_hub"


#: Kinds without a contract case yet.
UNCOVERED: set[str] = set()


def _registered(cases: dict[str, Case]) -> Iterator[tuple[str, Case]]:
    for reg in REGISTRY:
        for c in cases.values():
            if reg.kind in _kinds(c.design) | _kinds(c.setup):
                yield reg.kind, c
                break


def test_design_and_operation_build_and_balances_close(cases: dict[str, Case]) -> None:
    for kind, c in _registered(cases):
        assert res.balance_residuals(c.design) < 1e-6, (kind, c.name)
        for t in c.design.techs:
            if t.kind == kind:
                assert t.block is not None, f"{kind} has no block in design ({c.name})"


def test_operation_has_no_size_variable(cases: dict[str, Case]) -> None:
    for c in cases.values():
        built = c.ctl.built
        assert built.ctx.sizes, c.name
        for name, h in built.ctx.sizes.items():
            assert not h.is_variable, (c.name, name)
            assert isinstance(h.units, pyo.Param) or h.units.is_parameter_type(), (c.name, name)
            assert h.ub_units == pytest.approx(h.value_units()), (c.name, name)  # installed bound
        design_sizes = {n for n, h in c.design.ctx.sizes.items() if h.is_variable}
        op_vars = {v.parent_component().name for v in built.model.component_data_objects(pyo.Var)}
        assert not design_sizes & op_vars, c.name


def _highs(ctl: Controller) -> Any:
    return ctl.session.solver._solver_model  # the persistent highspy.Highs


def test_update_and_resolve_keep_the_same_highs_model(cases: dict[str, Case]) -> None:
    for c in cases.values():
        first = c.ctl.step(_first_day_input(c))
        assert first.mode == "optimal", (c.name, first.alerts)
        h = _highs(c.ctl)
        rows, cols = h.getNumRow(), h.getNumCol()
        assert rows > 0 and cols > 0
        second = c.ctl.step(_first_day_input(c, scale=1.3))
        assert second.mode == "optimal", (c.name, second.alerts)
        assert _highs(c.ctl) is h, c.name
        assert (h.getNumRow(), h.getNumCol()) == (rows, cols), c.name
        assert second.record.objective != pytest.approx(first.record.objective), c.name
        # operation balances close with their slack, every kind's setpoints are valid values
        assert res.balance_residuals(c.ctl.built) < 1e-6, c.name
        for sp in second.setpoints:
            assert all(np.isfinite(float(v)) for v in sp.values.values() if not isinstance(v, str))


def _dispatch_cost(built: BuiltModel) -> float:
    """Energy − sale − incentive + penalties of the dispatch (no capex, no fixed O&M)."""
    m = built.model
    return float(
        pyo.value(m.cost_energy)
        - pyo.value(m.cost_revenue_sale)
        - pyo.value(m.cost_revenue_incentive)
        + pyo.value(m.cost_penalty)
    )


#: Kinds whose parity has its own test, because the two modes describe them differently: the
#: design's EV fleet is a daily vehicle schedule, operation has live sessions at charge points
#: (tests/techs/test_ev_parity.py); the design's AI cluster has a floor share and daily batch
#: windows, operation a floor in kW and batch jobs, and the operation cluster of the cases here
#: (SITE.yaml's) has no design counterpart (tests/techs/test_ai_parity.py).
NO_PARITY = {"ev_fleet", "ev_charge_points", "ai_cluster"}


def test_design_operation_parity_over_the_typical_day(cases: dict[str, Case]) -> None:
    checked = []
    for c in cases.values():
        if (_kinds(c.design) | _kinds(c.setup)) & NO_PARITY:
            continue
        weight = c.design.ctx.grid.annual_factor(c.design.ctx.grid.periods[0])  # 365 d × 1 h
        design_day = _dispatch_cost(c.design) / weight
        out = c.ctl.step(_with_design_start_state(c, _first_day_input(c)))
        assert out.mode == "optimal", (c.name, out.alerts)
        plan = _dispatch_cost(c.ctl.built)
        assert plan == pytest.approx(design_day, rel=1e-3), (c.name, plan, design_day)
        checked.append(c.name)
    assert "multi_energy" in checked


def test_design_sizes_round_trip_into_the_operation_model(cases: dict[str, Case]) -> None:
    """The multi-energy design's sizes, written to YAML and read back, are the sizes (size
    handles' values and upper bounds) of the operation model built from them."""
    c = cases["multi_energy"]
    text = yaml.safe_dump(SizesFile.from_techs(c.design.techs, "contract").to_dict())
    read = installed_sizes(yaml.safe_load(text), "sizes.yaml")
    assert read == {h: e for h, e in c.setup.sizes.items() if e}
    design = {n: h.value() for n, h in c.design.ctx.sizes.items()}
    for name, h in c.ctl.built.ctx.sizes.items():
        if name in design:
            assert h.value() == pytest.approx(design[name], abs=1e-3), name
            assert h.ub == pytest.approx(h.value()), name


# ---------------------------------------------------------------- a new kind's device state
PROBE = ("hub1", "probe", "p1")


class _Probe(Technology):
    """A kind nobody else knows, written only against the Technology interface: its telemetry
    and its messages (a counter channel, kept in its durable book) become its state in
    ``observe``; it reads the state back in ``take_state`` and in its fallback rule, and turns it
    into its setpoint."""

    kind = "probe"
    device_kind = "probe"

    def __init__(self, name: str, hub: str) -> None:
        super().__init__(name, hub)
        self.taken: Any = None

    @classmethod
    def wants_step(cls, before: dict[str, Any], payload: dict[str, Any]) -> bool:
        return float(payload["x"]) > float(before.get("x", 0.0))

    @classmethod
    def upgrade_persisted(cls, d: dict[str, Any]) -> None:
        if "probe_counts" in d:  # an older layout kept the counters at the top level
            for name, n in d.pop("probe_counts").items():
                d.setdefault("books", {}).setdefault(name, {})["count"] = n

    def devices(self) -> list[Any]:
        return [(*PROBE, None)]

    def take_message(self, state: Any, key: Any, channel: str, payload: Any) -> bool:
        book = state.book(key)
        book["count"] = book.get("count", 0) + int(payload["n"])
        return True

    def observe(self, obs: Any, inp: Any) -> None:
        name = "/".join(PROBE)
        x = obs.state.latest[name]["x"]
        inp.device_state[PROBE] = (x, obs.state.books.get(name, {}).get("count", 0))

    def take_state(self, inp: Any) -> None:
        self.taken = device_state(inp, PROBE)

    def setpoints(self, k0: Any) -> list[Any]:
        x, n = self.taken
        return [(*PROBE, {"x": x, "n": n, "by": "plan"})]

    def fallback_passes(self) -> list[Any]:
        def rule(st: Any) -> list[Any]:
            x, n = device_state(st.inp, PROBE)
            return [(*PROBE, {"x": x, "n": n, "by": "rule"})]

        return [((99.0,), rule)]


def test_a_new_kinds_state_reaches_its_own_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A technology registered with one line reaches the whole operation path through the
    generic code only: its telemetry and its own message channel (through the service), its
    durable book across a restart (also from an older persisted layout it upgrades itself), its
    state in its ``observe``, ``take_state``, setpoints and fallback rule."""
    import ems.operation.state as state_module
    import ems.techs.registry as registry_module
    from tests.operation.conftest import write_site

    reg = Registration("probe", _Probe, device_kind="probe", modes=("operation",))
    monkeypatch.setattr(registry_module, "REGISTRY", (*REGISTRY, reg))
    monkeypatch.setattr(state_module, "REGISTRY", (*REGISTRY, reg))
    site, setup, fc = load_operation(write_site(tmp_path))  # the case-study site, 8 h ahead
    probe = _Probe("hub1_probe", "hub1")
    setup.techs.append(probe)
    svc = OperationService(site, setup, fc)
    start = pd.Timestamp("2025-06-16 08:00", tz="UTC")
    ts = start.isoformat()
    assert svc.on_message("state", PROBE, {"ts": ts, "x": 7.0})  # its own wants_step
    assert svc.on_message("count", PROBE, {"ts": ts, "n": 2})
    assert not svc.on_message("count", ("hub1", "probe", "other"), {"ts": ts, "n": 5})
    # a restart: the state file written in an older layout (counters at the top level)
    old = json.loads(json.dumps(svc.state.to_dict()))
    old["probe_counts"] = {"/".join(PROBE): old.pop("books")["/".join(PROBE)]["count"] + 1}
    again = OperationService(site, setup, fc, controller=svc.controller)
    again.state = PlantState.from_dict(old)
    assert again.state.books == {"/".join(PROBE): {"count": 3}}
    out = again.step(start)
    assert out.result.mode == "optimal", out.result.alerts
    assert probe.taken == (7.0, 3)
    sp = {s.key: s for s in out.result.setpoints}[PROBE]
    assert (sp.values, sp.source) == ({"x": 7.0, "n": 3, "by": "plan"}, "plan")
    again.controller.warm_start = False  # no plan to start from, no time: the rules decide
    fallback = again.step(start, time_limit_s=1e-6).result
    assert fallback.mode == "fallback"
    sp = {s.key: s for s in fallback.setpoints}[PROBE]
    assert (sp.values, sp.source) == ({"x": 7.0, "n": 3, "by": "rule"}, "fallback")


def test_every_written_size_entry_is_one_a_technology_declares(cases: dict[str, Case]) -> None:
    """What design writes to sizes.yaml (each technology's ``size_entry``) passes the check that
    refuses entries no technology reads (``Technology.size_keys``), for every case; and a
    registered kind that writes sizes declares them."""
    writers = set()
    for c in cases.values():
        written = SizesFile.from_techs(c.design.techs, "contract").hubs
        check_known(written, c.setup.scenario, c.setup.catalogue, "sizes.yaml", "hubs")
        writers |= {t.kind for t in c.design.techs if t.size_entry()}
    for kind in writers:
        own = registration(kind).tech.size_keys.__func__  # type: ignore[attr-defined]
        assert own is not Technology.size_keys.__func__, kind  # type: ignore[attr-defined]


def test_every_bar_a_flow_feeds_is_one_a_technology_declares(cases: dict[str, Case]) -> None:
    """The hub-energy report lists the bars the technologies declare (``energy_bars``); every
    bar a flow of a built case feeds is among them (none dropped, no KeyError in the report)."""
    from design.report_thermal import BARS, hub_energy

    fed = {bar for c in cases.values() for t in c.design.techs for bar, _s in t.bars.values()}
    assert {"pv", "chp_el", "hp_heat", "dh_given", "eboiler_heat"} <= fed <= set(BARS)
    for c in cases.values():
        assert all(set(e) == set(BARS) for e in hub_energy(c.design).values())
