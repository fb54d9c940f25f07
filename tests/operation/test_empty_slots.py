"""Operation leaves out the design's empty slots (catalogue models with nothing installed): the
model is smaller and its optimum is the same as with the slots in it, fixed at zero."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyomo.environ as pyo
import pytest

import ems.operation.assembly as op_assembly
from adapters.config_io import load_operation
from adapters.sim.plant import Exogenous, PlantSim
from ems.model.assembly import techs_from_scenario
from ems.operation.service import OperationService

SITE = Path(__file__).resolve().parents[2] / "adapters/sim/opera_pia_physical_site_15min.yaml"


def _first_step(monkeypatch: pytest.MonkeyPatch, drop: bool) -> tuple[float, int, set[str]]:
    """Objective (solved to 1e-6), variable count and technology names of the first step."""

    def assemble(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - passes through
        kwargs["drop_empty_slots"] = drop
        return techs_from_scenario(*args, **kwargs)

    monkeypatch.setattr(op_assembly, "techs_from_scenario", assemble)
    site, setup, fc = load_operation(SITE)
    service = OperationService(site, setup, fc)
    service.controller.session.options["mip_rel_gap"] = 1e-6
    start = pd.Timestamp("2025-01-13 06:00", tz="Europe/Rome").tz_convert("UTC")
    plant = PlantSim(setup, Exogenous.draw(setup, fc, start, 2, site.dt_h, seed=1), site.dt_h)
    plant.begin_step()
    for key, payload in plant.telemetry():
        service.on_state(key, payload)
    record = service.step(plant.now).result.record
    assert record is not None and record.status == "optimal" and record.gap < 1e-5
    m = service.controller.model
    n_vars = sum(1 for _ in m.component_data_objects(pyo.Var, descend_into=True))
    return record.objective, n_vars, {t.name for t in setup.techs}


def test_empty_slots_are_left_out_and_the_optimum_is_the_same(monkeypatch) -> None:
    with_slots, n_with, names_with = _first_step(monkeypatch, drop=False)
    without, n_without, names_without = _first_step(monkeypatch, drop=True)
    dropped = names_with - names_without
    # the catalogue's engines, batteries, chillers and heat pump nobody installed, and the CHP
    # heat split of the hubs left without an engine; every installed device and every load stays
    assert {"hub2_ice_200", "hub1_battery", "hub3_ac_35", "hub3_hp_15", "hub2_chp_heat"} <= dropped
    assert {"hub1_ice_200", "hub4_ice_200", "hub3_ac_175", "hub3_hp_45"} <= names_without
    assert not any(n.endswith("_load") for n in dropped)
    assert n_without < 0.7 * n_with
    assert without == pytest.approx(with_slots, rel=1e-7)
