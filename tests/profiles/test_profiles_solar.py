"""Synthetic weather and PV / solar-thermal yields for Genoa."""

from __future__ import annotations

import numpy as np
import pytest

from ems.errors import DataError
from ems.profiles.pv import pv_specific_yield, solar_thermal_output
from ems.profiles.weather import GENOA, synthetic_weather


def test_monthly_climatology_reproduced(weather):
    ghi = weather["ghi"].groupby(weather.index.month).sum() / 1000.0
    assert np.allclose(ghi.to_numpy(), GENOA.monthly_ghi_kwh_m2, rtol=1e-6)
    t = weather["t_amb_c"].groupby(weather.index.month).mean()
    assert np.allclose(t.to_numpy(), GENOA.monthly_t_mean_c, atol=1e-9)
    assert (weather["ghi"] <= weather["ghi_clear"] + 1e-9).all()


def test_weather_is_deterministic(year_index, weather):
    again = synthetic_weather(year_index, GENOA, seed=7)
    assert np.array_equal(again["ghi"].to_numpy(), weather["ghi"].to_numpy())
    other = synthetic_weather(year_index, GENOA, seed=8)
    assert not np.array_equal(other["ghi"].to_numpy(), weather["ghi"].to_numpy())


@pytest.mark.parametrize("module", ["mono", "thin_film"])
def test_pv_yield_band_and_night(weather, module):
    y = pv_specific_yield(weather, module)
    assert 1100.0 <= y.sum() <= 1450.0
    night = weather["ghi"] <= 0
    assert night.sum() > 3000
    assert (y[night] == 0).all()
    assert y.loc["2023-06-21 00:00":"2023-06-21 03:00"].sum() == 0.0
    assert 0 < y.max() <= 1.0


def test_mono_vs_thin_temperature_effect(weather):
    mono = pv_specific_yield(weather, "mono", tilt=30, azimuth=180)
    thin = pv_specific_yield(weather, "thin_film", tilt=30, azimuth=180)
    summer = weather.index.month.isin([7, 8])
    # same plane: the thin film loses less at high cell temperature
    assert thin[summer].sum() > mono[summer].sum() * 0.97


def test_solar_thermal(weather):
    q = solar_thermal_output(weather)
    assert (q >= 0).all() and q.max() < 1.0
    assert (q[weather["ghi"] <= 0] == 0).all()
    assert 400 < q.sum() < 1000


def test_pv_bad_module(weather):
    with pytest.raises(DataError, match="module"):
        pv_specific_yield(weather, "perovskite")
    with pytest.raises(DataError, match="tilt"):
        pv_specific_yield(weather, "mono", tilt=120)
