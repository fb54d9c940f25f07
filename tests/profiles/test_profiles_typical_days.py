"""Typical-day aggregation: weights, exact totals, DST safety, tsam option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ems.errors import DataError
from ems.profiles.typical_days import aggregate_typical_days, to_standard_time


def _rel_err(td, df):
    tot = df.sum()
    got = td.weighted_totals()
    return float(((got - tot).abs() / tot.abs().clip(lower=1e-12)).max())


def test_bimonth_weights_and_totals(case_hourly):
    td = aggregate_typical_days(case_hourly, "bimonth_weekday_holiday")
    assert len(td.weights) == 12
    assert td.weights.sum() == 365
    assert td.profiles.shape == (12 * 24, case_hourly.shape[1])
    assert list(td.profiles.index.names) == ["day", "hour"]
    assert _rel_err(td, case_hourly) < 1e-6
    # 2023: Jan 1 is a Sunday; Jan 6 (Epiphany) is a Friday → holiday
    assert td.assignment[pd.Timestamp("2023-01-06")] == "jan-feb_holiday"
    assert td.assignment[pd.Timestamp("2023-01-07")] == "jan-feb_holiday"  # Saturday
    assert td.assignment[pd.Timestamp("2023-01-09")] == "jan-feb_weekday"


def test_saturday_as_weekday_option(case_hourly):
    a = aggregate_typical_days(case_hourly, saturday_is_holiday=True)
    b = aggregate_typical_days(case_hourly, saturday_is_holiday=False)
    assert b.weights["jan-feb_weekday"] > a.weights["jan-feb_weekday"]
    assert b.weights.sum() == 365


def test_tsam_option(case_hourly):
    # tsam is a hard dependency (pyproject): no importorskip, a missing install must fail
    td = aggregate_typical_days(case_hourly, "tsam", n_days=8)
    assert len(td.weights) == 8
    assert td.weights.sum() == 365
    assert _rel_err(td, case_hourly) < 1e-6


def test_dst_aware_input_is_exact(case_hourly):
    """A tz-aware Europe/Rome series (23/25-h local days) aggregates without loss."""
    df = case_hourly[["hub1_elec_kw", "pv_mono_kw_per_kwp"]].copy()
    df.index = df.index.tz_localize("Etc/GMT-1").tz_convert("Europe/Rome")
    days = df.groupby(df.index.date).size()
    assert set(days.unique()) == {23, 24, 25}
    td = aggregate_typical_days(df)
    assert td.weights.sum() == 365
    assert _rel_err(td, df) < 1e-9


def test_dst_wall_clock_naive_input():
    """Naive wall-clock data with a missing spring hour and a repeated autumn hour still works."""
    idx = pd.date_range("2023-01-01", "2024-01-01", freq="h", tz="Europe/Rome", inclusive="left")
    df = pd.DataFrame(
        {"x": np.arange(len(idx), dtype=float) % 24 + 1.0}, index=idx.tz_localize(None)
    )
    assert df.index.has_duplicates
    td = aggregate_typical_days(df)
    assert td.weights.sum() == 365
    assert td.profiles.notna().all().all()
    assert len(to_standard_time(df)) == 8760


def test_sub_hourly_input_preserves_energy(case_hourly):
    s = case_hourly["hub2_elec_kw"].iloc[: 24 * 14]
    fine = (
        s.resample("15min")
        .ffill()
        .reindex(pd.date_range(s.index[0], periods=len(s) * 4, freq="15min"))
        .ffill()
    )
    td = aggregate_typical_days(fine.to_frame())
    assert td.weighted_totals()["hub2_elec_kw"] == pytest.approx(s.sum(), rel=1e-9)


@pytest.mark.parametrize(
    "kwargs, argname",
    [
        ({"method": "weekly"}, "method"),
        ({"method": "tsam", "n_days": 0}, "n_days"),
        ({"resolution": "7h"}, "resolution"),
    ],
)
def test_bad_arguments(case_hourly, kwargs, argname):
    with pytest.raises(DataError, match=argname):
        aggregate_typical_days(case_hourly.iloc[:48], **kwargs)


def test_bad_data():
    with pytest.raises(DataError, match="data"):
        aggregate_typical_days(pd.DataFrame({"x": [1.0, 2.0]}))
