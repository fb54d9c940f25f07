"""The simulated plant: generic over the technologies (each brings its physics), resumable, and
the electric boiler's physics (added through its own module) checked by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from adapters.sim.plant import Exogenous, PlantSim, kpis
from ems.config.schema import ElectricBoilerSpec
from ems.techs import registry
from ems.techs.electric_boiler import ElectricBoiler
from ems.techs.plant import EX_EBOILER, HEAT_EBOILER, HubStep
from ems.telemetry.schemas import ElectricBoilerState

ROOT = Path(__file__).resolve().parents[2]


def test_the_plant_lists_no_kind() -> None:
    """adapters/sim holds no per-kind code: no technology class imported, no kind or MQTT
    device kind of the registry named (only the site sensor ``weather``)."""
    kinds, classes = set(), {r.tech.__name__ for r in registry.REGISTRY}
    for r in registry.REGISTRY:
        kinds |= {r.kind} | ({r.device_kind} if r.device_kind else set())
    for f in ("adapters/sim/plant.py", "adapters/sim/thermal_plant.py"):
        src = (ROOT / f).read_text()
        assert not re.search(r"^\s*(from|import) ems\.techs\.(?!plant\b)", src, re.M), f
        found = {n for n in kinds if re.search(rf"[\"']{re.escape(n)}[\"']", src)}
        found |= {c for c in classes if re.search(rf"\b{c}\b", src)}
        assert not found, (f, found)


def _hub_step(setpoint_p_kw: float | None) -> HubStep:
    def setpoint(key: tuple[str, str, str], name: str) -> float | None:
        assert key == ("h1", "electric_boiler", "eb") and name == "p_kw"
        return setpoint_p_kw

    now = pd.Timestamp("2025-01-13 07:00", tz="UTC")
    return HubStep("h1", 0, now, 0.25, setpoint, False, lambda _c, default=0.0: default)


def _eboiler(size_kw: float = 40.0) -> ElectricBoiler:
    spec = ElectricBoilerSpec(kind="electric_boiler", eta=0.98, step_kw=10.0, lifetime_y=20)
    return ElectricBoiler(
        "h1_eb", "h1", "eb", spec, existing_kw=size_kw, max_kw=0.0, carriers=["heat"],
        fixed={"kw": size_kw},
    )  # fmt: skip


def test_electric_boiler_plant_hand_checked() -> None:
    """50 kW asked at η 0.98 → 49 kW of heat, capped at the 40 kW installed; a 15 kW surplus of
    the heat loop turns it down to 25 kW of heat, 25/0.98 kW drawn from the bus."""
    dev = _eboiler().plant_device()
    hs = _hub_step(50.0)
    dev.run(hs)
    assert dev.q == pytest.approx(40.0)
    assert hs.sums.total("heat_supply") == pytest.approx(40.0)
    assert hs.sums._g["heat_supply"].keys() == {HEAT_EBOILER}
    assert dev.turndown(hs, 15.0) == pytest.approx(0.0)
    assert dev.turndown(hs, 0.0) == 0.0
    dev.record(hs)
    assert hs.rows.total("eboiler_heat_kw") == pytest.approx(25.0)
    assert hs.rows.total("eboiler_kw") == pytest.approx(25.0 / 0.98)
    assert hs.sums._g["el_exchange"] == {EX_EBOILER: [pytest.approx(25.0 / 0.98)]}
    ((key, payload),) = dev.telemetry("2025-01-13T07:15:00+00:00", 1, lambda *_a: 0.0)
    assert key == ("h1", "electric_boiler", "eb")
    state = ElectricBoilerState(**payload)  # the telemetry passes its own payload schema
    assert state.p_kw == pytest.approx(25.0 / 0.98, abs=1e-3) and state.heat_kw == 25.0


def test_electric_boiler_without_setpoint_follows_the_rule() -> None:
    """No valid setpoint → the hub's rule (here 10 kW electric → 9.8 kW of heat); a negative
    setpoint is clamped to 0; an empty slot (0 kW installed) is not simulated."""
    dev = _eboiler().plant_device()
    hs = _hub_step(None)
    hs.rules = {("h1", "electric_boiler", "eb"): {"p_kw": 10.0}}
    dev.run(hs)
    assert dev.q == pytest.approx(9.8)
    hs = _hub_step(-5.0)
    dev.run(hs)
    assert dev.q == 0.0
    assert _eboiler(0.0).plant_device() is None


def test_resumed_plant_continues_identically(op) -> None:
    """The plant's state through JSON (as the state file keeps it) mid-run: the resumed run's
    rows, telemetry and KPIs equal the uninterrupted run's (EVs plugged, AI jobs queued)."""
    site, setup, fc, _ctl = op
    start = pd.Timestamp("2025-06-16 06:00", tz="Europe/Rome").tz_convert("UTC")
    exo = Exogenous.draw(setup, fc, start, 41, site.dt_h, 3, site.timezone)

    def run(sim: PlantSim, n: int) -> list:
        tel = []
        for _ in range(n):
            sim.begin_step()
            tel.append(sim.telemetry())
            sim.advance({})  # no setpoints: every device in its safe mode
        return tel

    whole = PlantSim(setup, exo, site.dt_h)
    tel_whole = run(whole, 40)
    first = PlantSim(setup, exo, site.dt_h)
    tel = run(first, 17)
    saved = json.loads(json.dumps(first.to_dict()))
    assert any(d.get("plugged") for d in saved["devices"].values())  # a vehicle is charging
    resumed = PlantSim(setup, exo, site.dt_h)
    resumed.load_dict(saved)
    tel += run(resumed, 23)
    assert resumed.rows == whole.rows and tel == tel_whole
    assert kpis(resumed, 100.0) == kpis(whole, 100.0)
    assert kpis(whole, 100.0)["ev_sessions_done"] >= 1
