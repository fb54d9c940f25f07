"""Tiny multi-energy scenarios written to a temp folder (typical days given directly)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.design.conftest import make_scenario as design_make_scenario

CATALOGUE: dict[str, Any] = {
    "entries": {
        # fuel = 2.25·P + 25·u (rated fuel 250 kW, no-load 10 %), heat = 0.5·fuel
        "chp100": {
            "kind": "chp",
            "p_el_kw": 100.0,
            "eta_el": 0.4,
            "eta_th": 0.5,
            "min_load": 0.5,
            "no_load_fuel_fraction": 0.1,
            "capex_eur_per_kw_el": 1000.0,
            "lifetime_y": 10,
        },
        # fuel = 2.25·P + 5·u (rated fuel 50 kW), heat = 0.5·fuel: a fifth of chp100
        "chp20": {
            "kind": "chp",
            "p_el_kw": 20.0,
            "eta_el": 0.4,
            "eta_th": 0.5,
            "min_load": 0.5,
            "no_load_fuel_fraction": 0.1,
            "capex_eur_per_kw_el": 1000.0,
            "lifetime_y": 10,
        },
        "chp100_low": {
            "kind": "chp",
            "p_el_kw": 100.0,
            "eta_el": 0.4,
            "eta_th": 0.5,
            "min_load": 0.2,
            "no_load_fuel_fraction": 0.1,
            "capex_eur_per_kw_el": 1000.0,
            "lifetime_y": 10,
        },
        "hp": {
            "kind": "heat_pump",
            "p_el_kw": 40.0,
            "heat_kw": 100.0,
            "cop_heat": 3.0,
            "cool_kw": 80.0,
            "eer": 2.8,
            "modes": ["heating", "cooling"],
            "capex_eur_per_unit": 1000.0,
            "lifetime_y": 10,
        },
        "ac": {
            "kind": "absorption_chiller",
            "cool_kw": 50.0,
            "cop_th": 0.7,
            "aux_el_fraction": 0.03,
            "capex_eur_per_unit": 1000.0,
            "lifetime_y": 10,
        },
        "puf": {
            "kind": "thermal_storage",
            "carrier": "heat",
            "sizes_kwh": [50.0, 100.0],
            "capex_eur_per_kwh": 0.001,
            "loss_per_h": 0.01,
            "eta_charge": 1.0,
            "eta_discharge": 1.0,
            "c_rate_per_h": 1.0,
            "lifetime_y": 10,
            "exclusive_charge": True,
        },
        "sol": {
            "kind": "solar_thermal",
            "capex_eur_per_m2": 0.001,
            "step_m2": 1.0,
            "output_column": "sol",
            "carrier": "heat",
            "lifetime_y": 10,
        },
        "boil": {"kind": "boiler", "eta": 0.9, "lifetime_y": 10},
        "pv": {
            "kind": "pv",
            "capex_eur_per_kwp": 1000.0,
            "lifetime_y": 10,
            "kwp_per_m2": 0.2,
            "step_kwp": 1.0,
            "yield_column": "yield",
        },
    }
}


def make_scenario(
    tmp: Path,
    columns: dict[str, list[float]],
    hubs: list[dict[str, Any]],
    *,
    community: str = "independent",
    prices: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    weight: float = 365.0,
) -> Path:
    """The design tests' tiny scenario with the multi-energy catalogue and a gas price."""
    return design_make_scenario(
        tmp,
        columns,
        hubs,
        weight=weight,
        community=community,
        name="tiny_thermal",
        extra=extra,
        catalogue=CATALOGUE,
        prices=prices
        or {"purchase_column": "buy", "sale_eur_per_kwh": 0.0, "gas_eur_per_kwh": 0.05},
    )


@pytest.fixture
def scenario_factory(tmp_path: Path) -> Callable[..., Path]:
    return lambda *a, **k: make_scenario(tmp_path, *a, **k)
