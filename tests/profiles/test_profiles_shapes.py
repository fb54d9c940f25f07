"""Demand shapes: exact annual totals, seasonality, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from ems.errors import DataError
from ems.profiles.shapes import (
    ELECTRIC_SHAPE_NAMES,
    cooling_profile,
    dhw_profile,
    electric_profile,
    heating_profile,
)


@pytest.mark.parametrize("shape", ELECTRIC_SHAPE_NAMES)
def test_electric_total_exact(year_index, shape):
    s = electric_profile(year_index, 838.0, shape)
    assert len(s) == 8760
    assert s.sum() * 1.0 == pytest.approx(838_000.0, abs=1e-6)
    assert (s >= 0).all()


def test_weekday_above_holiday(year_index):
    s = electric_profile(year_index, 100.0, "office")
    assert s.loc["2023-03-15 11:00"] > 2 * s.loc["2023-03-19 11:00"]  # Wed vs Sun
    assert s.loc["2023-04-25 11:00"] == pytest.approx(
        s.loc["2023-03-19 11:00"], rel=0.1
    )  # Liberation Day


def test_thermal_totals_and_seasons(year_index, weather):
    t = weather["t_amb_c"]
    heat = heating_profile(year_index, 867.0, t)
    cool = cooling_profile(year_index, 100.0, t)
    dhw = dhw_profile(year_index, 8.67)
    assert heat.sum() == pytest.approx(867_000.0, abs=1e-6)
    assert cool.sum() == pytest.approx(100_000.0, abs=1e-6)
    assert dhw.sum() == pytest.approx(8_670.0, abs=1e-6)
    assert heat.loc["2023-07"].sum() == 0.0
    assert heat.loc["2023-05-01":"2023-10-14"].sum() == 0.0
    assert heat.loc["2023-01"].sum() > heat.loc["2023-03"].sum()
    assert cool.loc["2023-01"].sum() == 0.0 and cool.loc["2023-07"].sum() > 0
    assert (dhw > 0).all()


def test_zero_total_gives_zeros(year_index):
    assert electric_profile(year_index, 0.0, "flat").sum() == 0.0


@pytest.mark.parametrize(
    "call, argname",
    [
        (lambda i, t: electric_profile(i, 100.0, "spaceship"), "shape"),
        (lambda i, t: electric_profile(i, -5.0, "office"), "annual_mwh"),
        (lambda i, t: electric_profile(i, float("nan"), "office"), "annual_mwh"),
        (lambda i, t: heating_profile(i, -1.0, t), "annual_mwh"),
        (lambda i, t: heating_profile(i, 10.0, t[:100]), "t_amb"),
        (lambda i, t: cooling_profile(i, "lots", t), "annual_mwh"),
        (lambda i, t: dhw_profile(i, 1.0, holiday_fraction=2.0), "holiday_fraction"),
        (lambda i, t: electric_profile(list(range(5)), 1.0, "office"), "index"),
    ],
)
def test_bad_arguments_raise_data_error(year_index, weather, call, argname):
    with pytest.raises(DataError, match=argname):
        call(year_index, weather["t_amb_c"])


def test_heating_zero_when_season_is_warm(year_index):
    warm = pd.Series(25.0, index=year_index)
    with pytest.raises(DataError, match="zero everywhere"):
        heating_profile(year_index, 10.0, warm)
