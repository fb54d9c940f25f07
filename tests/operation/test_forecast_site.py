"""Forecasts fall back to the profile (never zeros); SITE.yaml errors name file and field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adapters.config_io import load_operation, load_site
from ems.errors import ConfigError
from ems.operation.state import PlantState
from tests.operation.conftest import write_site


@pytest.fixture(scope="module")
def fc(tmp_path_factory):
    _site, _setup, fc = load_operation(write_site(tmp_path_factory.mktemp("f")))
    return fc


def test_nan_or_missing_history_falls_back_to_profile(fc) -> None:
    times = pd.date_range("2025-06-16 08:00", periods=96, freq="15min", tz="UTC")
    prof = fc.profile.at("hub1_elec_kw", times)
    hist = pd.Series(
        np.nan, index=pd.date_range("2025-05-01", "2025-06-16", freq="15min", tz="UTC")
    )
    out = fc.load_kw("hub1_elec_kw", times, hist)
    assert np.allclose(out, prof) and out.min() > 0
    assert np.allclose(fc.load_kw("hub1_elec_kw", times, None), prof)
    assert np.allclose(fc.load_kw("hub1_elec_kw", times, pd.Series(dtype=float)), prof)


def test_history_blends_with_profile(fc) -> None:
    times = pd.date_range("2025-06-16 08:00", periods=8, freq="15min", tz="UTC")
    prof = fc.profile.at("hub1_elec_kw", times)
    idx = pd.date_range("2025-05-01", "2025-06-16 07:45", freq="15min", tz="UTC")
    hist = pd.Series(prof.mean() * 2, index=idx)
    out = fc.load_kw("hub1_elec_kw", times, hist)
    # 4 weeks of history → weight 0.7 on the history
    assert np.allclose(out, 0.7 * prof.mean() * 2 + 0.3 * prof)


def test_pv_correction_learned_from_measurements(fc) -> None:
    now = pd.Timestamp("2025-06-16 10:00", tz="UTC")
    times = pd.date_range(now, periods=8, freq="15min")
    past = pd.date_range(now - pd.Timedelta(hours=3), now, freq="15min")
    from ems.operation.forecast import clearsky_yield

    cs = clearsky_yield(past, fc.lat, fc.lon)
    cloudy = pd.Series(0.3 * cs, index=past)
    k = fc.pv_correction("pv_mono_kw_per_kwp", cloudy, now)
    assert k == pytest.approx(0.3, abs=0.01)
    out = fc.pv_yield("pv_mono_kw_per_kwp", times, cloudy, now)
    assert out[0] == pytest.approx(0.3 * clearsky_yield(times, fc.lat, fc.lon)[0], rel=0.05)
    assert np.all(np.isfinite(out))


def test_prices_from_bands(fc) -> None:
    times = pd.date_range(
        "2025-06-16 00:00", periods=96, freq="15min", tz="Europe/Rome"
    ).tz_convert("UTC")
    buy = fc.price_buy(times)
    assert set(np.round(buy, 3)) == {0.44, 0.40}
    assert np.all(fc.price_sell(times) > 0)


def _reference_lookup(table: pd.DataFrame, column: str, times_utc: pd.DatetimeIndex) -> np.ndarray:
    """The lookup by pandas reindex the dense table replaced (the oracle)."""
    from ems.profiles.calendar import CET_FIXED_TZ, is_holiday_day

    local = pd.DatetimeIndex(times_utc).tz_convert(CET_FIXED_TZ).tz_localize(None)
    col = table[column]
    hol = is_holiday_day(local).astype(int)
    nxt = local + pd.Timedelta(hours=1)
    a = col.reindex(pd.MultiIndex.from_arrays([local.month, hol, local.hour])).to_numpy(float)
    b = col.reindex(pd.MultiIndex.from_arrays([nxt.month, hol, nxt.hour])).to_numpy(float)
    a = np.nan_to_num(a, nan=0.0)
    b = np.where(np.isnan(b), a, b)
    frac = (local.minute + local.second / 60.0).to_numpy() / 60.0
    return a + (b - a) * frac


def test_profile_lookup_matches_the_reindex_lookup(fc) -> None:
    """The dense (month, day type, hour) table gives the reindex lookup's values bit for bit:
    DST days, a holiday, a year end, an odd minute, and a profile missing a whole month (0, or
    the hour before for the hour after)."""
    from ems.operation.forecast import SiteProfile

    full = fc.profile
    hourly = full.hourly
    no_march = SiteProfile(hourly[pd.DatetimeIndex(hourly.index).month != 3])
    starts = ["2025-03-29 22:00", "2025-10-25 21:07", "2025-12-24 18:00", "2025-02-28 20:00"]
    for prof in (full, no_march):
        for start in starts:
            times = pd.date_range(start, periods=150, freq="15min", tz="UTC")
            for column in prof.columns():
                got = prof.at(column, times)
                assert np.array_equal(got, _reference_lookup(prof.table, column, times))
    march = pd.date_range("2025-03-15 10:00", periods=4, freq="15min", tz="UTC")
    col = full.columns()[0]
    assert (no_march.at(col, march) == 0).all() and (full.at(col, march) > 0).all()
    with pytest.raises(KeyError):
        full.at("no_such_column", times)


def test_clearsky_on_whole_days_equals_the_direct_computation() -> None:
    """A receding horizon's clear sky is sliced from whole days computed once; the slice equals
    pvlib on the horizon's own instants, on grids that tile a day and on ones that do not."""
    from ems.operation.forecast import _clearsky, clearsky_yield

    cases = [
        ("2025-06-16 00:00", "UTC", "15min", 96),
        ("2025-06-16 23:45", "UTC", "15min", 192),
        ("2025-03-30 00:00", "Europe/Rome", "15min", 200),
        ("2025-06-16 00:07", "UTC", "15min", 96),
        ("2025-06-16 05:00", "UTC", "7min", 48),
        ("2025-12-31 20:00", "UTC", "1h", 24),
        ("2025-06-16 10:00", None, "15min", 8),
    ]
    for start, tz, freq, n in cases:
        times = pd.date_range(pd.Timestamp(start, tz=tz), periods=n, freq=freq)
        direct = _clearsky(times, 44.4, 8.9, 0.0, 0.85)
        assert direct.max() > 0.3
        assert np.array_equal(clearsky_yield(times, 44.4, 8.9), direct)
    irregular = pd.DatetimeIndex(["2025-06-16 10:00", "2025-06-16 10:15", "2025-06-16 11:00"])
    irregular = irregular.tz_localize("UTC")
    assert np.array_equal(
        clearsky_yield(irregular, 44.4, 8.9), _clearsky(irregular, 44.4, 8.9, 0.0, 0.85)
    )


def test_site_errors_name_file_and_field(tmp_path) -> None:
    p = write_site(tmp_path, step_min=0)
    with pytest.raises(ConfigError) as e:
        load_site(p)
    assert str(p) in str(e.value) and "step_min" in str(e.value)
    p = write_site(
        tmp_path, ai_clusters=[{"id": "g", "hub": "hub1", "rated_kw": 10, "floor_kw": 20}]
    )
    with pytest.raises(ConfigError, match="ai_clusters"):
        load_site(p)
    p = write_site(tmp_path, solver={"integer_horizon_h": 0})
    with pytest.raises(ConfigError, match="solver.integer_horizon_h"):
        load_site(p)
    p = write_site(tmp_path, sizes=str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="sizes"):
        load_site(p)
    p = write_site(
        tmp_path, ai_clusters=[{"id": "g", "hub": "nohub", "rated_kw": 10, "floor_kw": 2}]
    )
    with pytest.raises(ConfigError, match="nohub"):
        load_operation(p)


def test_site_typo_is_an_unknown_key_not_a_missing_field(tmp_path) -> None:
    p = write_site(tmp_path)
    p.write_text(p.read_text().replace("scenario:", "scenaro:"))
    with pytest.raises(ConfigError) as e:
        load_site(p)
    assert str(e.value) == f"{p}: scenaro: unknown key 'scenaro'; did you mean 'scenario'?"


def test_shared_energy_hours_survive_a_gap() -> None:
    """Counters interpolated at hour boundaries: a daemon down for 2 h still closes every hour."""
    st = PlantState()
    t0 = pd.Timestamp("2025-06-16 08:00", tz="UTC")

    def meter(hub: str, t: pd.Timestamp, imp: float, exp: float):
        return st.ingest(
            (hub, "meter", "main"),
            {
                "ts": t.isoformat(),
                "import_p_kw": 0.0,
                "export_p_kw": 0.0,
                "import_e_kwh": imp,
                "export_e_kwh": exp,
            },
        )

    closed = []
    for k, t in enumerate(
        [t0, t0 + pd.Timedelta(minutes=15), t0 + pd.Timedelta(hours=3, minutes=15)]
    ):
        closed += meter("a", t, 100 + 10 * k, 50)
        closed += meter("b", t, 200, 60 + 5 * k)
    hours = sorted(h["hour_utc"] for h in closed)
    assert hours == [int((t0 + pd.Timedelta(hours=i)).timestamp()) for i in range(3)]
    for h in closed:
        assert h["shared_wh"] == min(h["import_wh"], h["export_wh"])
    # the same state after a JSON round trip (what the daemon persists)
    again = PlantState.from_dict(st.to_dict())
    assert again.ledger == st.ledger


def test_example_site_config_validates() -> None:
    import yaml

    from adapters.influx.config import InfluxSettings
    from adapters.mqtt.config import MqttSettings
    from ems.operation.site import SiteConfig

    root = write_site.__globals__["ROOT"]
    site = SiteConfig.model_validate(
        yaml.safe_load((root / "deploy/site.example.yaml").read_text())
    )
    assert MqttSettings(community=site.community, **site.mqtt).username == "ems"
    assert InfluxSettings.model_validate(site.store.influx).version == 2
    assert site.n_steps == 192
