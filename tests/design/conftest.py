"""Tiny design scenarios written to a temp folder (typical days given directly)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

CATALOGUE: dict[str, Any] = {
    "entries": {
        "pv_a": {
            "kind": "pv",
            "capex_eur_per_kwp": 1000.0,
            "lifetime_y": 10,
            "kwp_per_m2": 0.2,
            "step_kwp": 1.0,
            "yield_column": "yield_a",
        },
        "pv_b": {
            "kind": "pv",
            "capex_eur_per_kwp": 800.0,
            "lifetime_y": 10,
            "kwp_per_m2": 0.1,
            "step_kwp": 1.0,
            "yield_column": "yield_b",
        },
        "bat": {
            "kind": "battery",
            "module_kwh": 5.0,
            "capex_eur_per_module": 500.0,
            "lifetime_y": 10,
            "c_rate_per_h": 1.0,
            "eta_charge": 1.0,
            "eta_discharge": 1.0,
        },
        "dumb": {
            "kind": "ev_charger",
            "mode": "dumb",
            "p_kw": 3.7,
            "capex_eur_per_unit": 100.0,
            "lifetime_y": 10,
            "eta": 1.0,
        },
        "v1g": {
            "kind": "ev_charger",
            "mode": "v1g",
            "p_kw": 11.0,
            "capex_eur_per_unit": 300.0,
            "lifetime_y": 10,
            "eta": 1.0,
        },
    }
}


def make_scenario(
    tmp: Path,
    columns: dict[str, list[float]],
    hubs: list[dict[str, Any]],
    *,
    weight: float = 365.0,
    community: str = "independent",
    prices: dict[str, Any] | None = None,
    name: str = "tiny",
    extra: dict[str, Any] | None = None,
    catalogue: dict[str, Any] | None = None,
) -> Path:
    n = len(next(iter(columns.values())))
    df = pd.DataFrame({"day": ["d1"] * n, "hour": list(range(n)), **columns})
    df.to_csv(tmp / "days.csv", index=False)
    (tmp / "catalogue.yaml").write_text(yaml.safe_dump(catalogue or CATALOGUE))
    scenario: dict[str, Any] = {
        "name": name,
        "community": community,
        "catalogue": "catalogue.yaml",
        "site": {"lat": 44.4, "lon": 8.96},
        "time": {"typical_days_csv": "days.csv", "weights": {"d1": weight}, "dt_h": 24.0 / n},
        "hubs": hubs,
        "prices": prices or {"purchase_column": "buy", "sale_eur_per_kwh": 0.0},
        "finance": {"interest_rate": 0.0},
        "solver": {"mip_rel_gap": 0.0, "time_limit_s": 60},
    }
    scenario.update(extra or {})
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


@pytest.fixture
def scenario_factory(tmp_path: Path) -> Callable[..., Path]:
    return lambda *a, **k: make_scenario(tmp_path, *a, **k)
