"""PVGIS and GME files as scenario inputs, placed on the study's hourly year (local standard
time), read with pvlib's PVGIS readers and the accounting ledger's zonal-price parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from design.inputs import gme_prices, pvgis_yield
from ems.errors import ConfigError

YEAR = pd.date_range("2023-01-01 00:00", periods=8760, freq="h")  # the study's year


def _pvgis_hourly(path: Path) -> None:
    """A PVGIS 'Hourly data' csv with PV power for a 2 kWp system, year 2020 (UTC, hh:10)."""
    lines = [
        "Latitude (decimal degrees):\t44.400",
        "Longitude (decimal degrees):\t8.960",
        "Elevation (m):\t20",
        "Radiation database:\tPVGIS-SARAH2",
        "",
        "",
        "Slope: 35 deg. ",
        "Azimuth: 0 deg. ",
        "Nominal power of the PV system (c-Si) (kWp):\t2.0",
        "System losses (%):\t14.0",
        "time,P,G(i),H_sun,T2m,WS10m,Int",
    ]
    for ts in pd.date_range("2020-01-01 00:10", periods=8784, freq="h", tz="UTC"):
        # 500 W in the UTC hours 10 and 11 (local standard 11 and 12) in June, else 0
        p = 500.0 if ts.month == 6 and ts.hour in (10, 11) else 0.0
        lines.append(f"{ts:%Y%m%d:%H%M},{p},0.0,0.0,20.0,1.0,0")
    lines += ["", "P: PV system power (W)", "G(i): Global irradiance on the inclined plane (W/m2)"]
    path.write_text("\r\n".join(lines) + "\r\n")


def _gme_wide(path: Path) -> None:
    """GME-style wide file: Data;Ora;PUN;NORD with decimal commas, local days (23/25 h at DST),
    2024. NORD = 100 + the UTC hour of day, so each local hour's value is known."""
    rows = ["Data;Ora;PUN;NORD"]
    for day in pd.date_range("2024-01-01", "2024-12-31", freq="D"):
        start = pd.Timestamp(day, tz="Europe/Rome")
        end = pd.Timestamp(day + pd.Timedelta(days=1), tz="Europe/Rome")
        hours = pd.date_range(start, end, freq="h", inclusive="left")
        for i, h in enumerate(hours, start=1):
            nord = 100 + h.tz_convert("UTC").hour
            rows.append(f"{day:%Y%m%d};{i};{nord + 5},00;{nord},50".replace(".", ","))
    path.write_text("\n".join(rows) + "\n")


def test_pvgis_hourly_power_becomes_kw_per_kwp_in_local_standard_time(tmp_path):
    f = tmp_path / "Timeseries_44.400_8.960_SA2_2kWp_crystSi_14_35deg_0deg_2020_2020.csv"
    _pvgis_hourly(f)
    y = pd.Series(pvgis_yield(f, YEAR, "s.yaml", "time.pvgis[0].file"), index=YEAR)
    june = y[(y.index.month == 6)]
    assert set(june[june.index.hour.isin([11, 12])].round(9)) == {0.25}  # 500 W / 2 kWp
    assert june[~june.index.hour.isin([11, 12])].max() == 0.0
    assert y[y.index.month != 6].max() == 0.0
    assert len(y) == 8760  # 2020's 29 February dropped


def test_gme_zonal_prices_by_local_hour_and_zone(tmp_path):
    f = tmp_path / "Anno_2024_prezzi.csv"
    _gme_wide(f)
    pz = pd.Series(gme_prices(f, "NORD", YEAR, "s.yaml", "time.gme_prices[0].file"), index=YEAR)
    # local standard hour h is UTC hour h − 1, all year (also across the DST days)
    expected = 100.5 + (YEAR.hour - 1) % 24
    assert np.allclose(pz.to_numpy(), expected)
    with pytest.raises(ConfigError, match="no prices for zone 'SUD'"):
        gme_prices(f, "SUD", YEAR, "s.yaml", "time.gme_prices[0].file")


def test_a_non_pvgis_file_is_one_clear_error(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match=r"time.pvgis\[0\].file: bad.csv: not a PVGIS"):
        pvgis_yield(f, YEAR, "s.yaml", "time.pvgis[0].file")


def test_scenario_inputs_replace_the_hourly_columns(tmp_path):
    import yaml

    from adapters.config_io import load_scenario
    from design.data import prepare

    case = Path(__file__).resolve().parents[2] / "design" / "cases" / "opera_pia"
    _pvgis_hourly(tmp_path / "pvgis.csv")
    _gme_wide(tmp_path / "gme.csv")
    scenario = {
        "extends": str(case / "virtual_hp_dm414.yaml"),
        "name": "with_real_inputs",
        "time": {
            "hourly_csv": str(case / "data" / "hourly.csv"),
            "pvgis": [{"file": "pvgis.csv", "column": "pv_mono_kw_per_kwp"}],
            "gme_prices": [
                {"file": "gme.csv", "zone": "NORD", "column": "zonal_price_hp_eur_per_mwh"}
            ],
        },
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    s, _cat = load_scenario(path)
    study = prepare(s, ["pv_mono_kw_per_kwp", "pv_thin_kw_per_kwp"])
    mono = study.data["pv_mono_kw_per_kwp"]
    # 0.25 kW/kWp at 11–12 h in June only; the may–jun typical days average May's zeros in
    assert mono.max() == pytest.approx(0.125, rel=0.02) and mono.min() == 0.0
    pz = study.data["zonal_price_hp_eur_per_mwh"]
    assert pz.min() >= 100.5 - 1e-9 and pz.max() <= 123.5 + 1e-9
