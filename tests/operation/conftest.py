"""Operation-mode fixtures: the case-study site (Opera Pia, virtual HP) with a short horizon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from adapters.config_io import load_operation
from ems.operation.controller import Controller, StepInput
from ems.techs.pv import Photovoltaic

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "design/cases/opera_pia/virtual_hp.yaml"
SIZES = ROOT / "adapters/sim/opera_pia_sizes.yaml"


#: Device keys of the case-study site (hub, kind, id) for ``StepInput.device_state``.
BESS = ("hub1", "battery", "bess")
CP1, CP2 = ("hub1", "ev_charger", "cp1"), ("hub1", "ev_charger", "cp2")
GPU1 = ("hub1", "ai_cluster", "gpu1")


def write_site(tmp: Path, **over: Any) -> Path:
    site: dict[str, Any] = {
        "community": "opera_pia",
        "scenario": str(SCENARIO),
        "sizes": str(SIZES),
        "sizes_override": {
            "hub1": {"battery": {"modules": 6}, "chargers": {"charger_v1g_7_4kw": 3}}
        },
        "step_min": 15,
        "horizon_h": 8,
        "solver": {"time_limit_s": 5.0},
        "ai_clusters": [{"id": "gpu1", "hub": "hub1", "rated_kw": 60, "floor_kw": 12}],
    }
    site.update(over)
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


@pytest.fixture(scope="module")
def op(tmp_path_factory: pytest.TempPathFactory):
    """(site, setup, forecaster, controller) built once per test module."""
    site, setup, fc = load_operation(write_site(tmp_path_factory.mktemp("site")))
    ctl = Controller(
        setup, n_steps=site.n_steps, dt_h=site.dt_h, time_limit_s=5.0
    )  # the site defaults: gap, warm start
    return site, setup, fc, ctl


def pv_columns(setup: Any) -> list[str]:
    """The yield columns of the installed PV (the keys of the step input's PV yields)."""
    return sorted({pv.spec.yield_column for pv in setup.techs_of(Photovoltaic, installed=True)})


def step_input(op, start: pd.Timestamp, **kw: Any) -> StepInput:
    site, setup, fc, ctl = op
    times = pd.date_range(start, periods=ctl.n_steps, freq="15min")
    inp = StepInput(
        start,
        {h: fc.load_kw(setup.load_column(h), times) for h in setup.hubs},
        {c: fc.pv_yield(c, times) for c in pv_columns(setup)},
        fc.price_buy(times),
        fc.price_sell(times),
        device_state={BESS: 0.5},
    )
    inp.device_state.update(kw.pop("device_state", {}))
    for k, v in kw.items():
        setattr(inp, k, v)
    return inp


def noon(day: str = "2025-06-16") -> pd.Timestamp:
    return pd.Timestamp(f"{day} 08:00", tz="UTC")


_ = np
