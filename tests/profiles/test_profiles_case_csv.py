"""The committed Opera Pia profile CSV: columns, totals (SPEC §7), and reproducibility."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

EXPECTED_COLUMNS = [
    "hub1_elec_kw",
    "hub2_elec_kw",
    "hub3_elec_kw",
    "hub4_elec_kw",
    "hub1_heat_kw",
    "hub2_heat_kw",
    "hub3_heat_kw",
    "hub4_heat_kw",
    "hub1_dhw_kw",
    "hub2_dhw_kw",
    "hub3_dhw_kw",
    "hub4_dhw_kw",
    "hub3_cool_kw",
    "pv_mono_kw_per_kwp",
    "pv_thin_kw_per_kwp",
    "solar_thermal_kw_per_m2",
    "t_amb_c",
    "ghi_w_per_m2",
    "zonal_price_hp_eur_per_mwh",
    "zonal_price_lp_eur_per_mwh",
]
TOTALS_MWH = {
    "hub1_elec_kw": 838,
    "hub2_elec_kw": 114,
    "hub3_elec_kw": 244,
    "hub4_elec_kw": 277,
    "hub1_heat_kw": 867,
    "hub2_heat_kw": 268,
    "hub3_heat_kw": 261,
    "hub4_heat_kw": 264,
}


def test_shape_and_columns(case_hourly):
    assert list(case_hourly.columns) == EXPECTED_COLUMNS
    assert len(case_hourly) == 8760
    assert case_hourly.index[0] == pd.Timestamp("2023-01-01 00:00")
    assert case_hourly.index.is_monotonic_increasing and not case_hourly.index.has_duplicates
    assert case_hourly.notna().all().all()


@pytest.mark.parametrize("col, mwh", sorted(TOTALS_MWH.items()))
def test_annual_totals_exact(case_hourly, col, mwh):
    assert case_hourly[col].sum() == pytest.approx(mwh * 1000.0, abs=1e-6)


def test_physical_sanity(case_hourly):
    d = case_hourly
    assert d.filter(like="_heat_kw").loc["2023-07"].to_numpy().sum() == 0.0
    night = d["ghi_w_per_m2"] <= 0
    assert (
        (d.loc[night, ["pv_mono_kw_per_kwp", "pv_thin_kw_per_kwp", "solar_thermal_kw_per_m2"]] == 0)
        .all()
        .all()
    )
    assert 1100 <= d["pv_mono_kw_per_kwp"].sum() <= 1450
    assert 1100 <= d["pv_thin_kw_per_kwp"].sum() <= 1450
    assert d["zonal_price_hp_eur_per_mwh"].mean() > 3 * d["zonal_price_lp_eur_per_mwh"].mean()


def test_build_script_reproduces_csv(case_hourly):
    spec = importlib.util.spec_from_file_location(
        "opera_pia_build", REPO / "design" / "cases" / "opera_pia" / "build_profiles.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    df, _ = mod.build()
    assert list(df.columns) == list(case_hourly.columns)
    assert np.allclose(df.to_numpy(), case_hourly.to_numpy(), atol=1e-4, rtol=0)
