"""Shared fixtures for the profile-library tests (one synthetic Genoa year, built once)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ems.profiles.calendar import hourly_year
from ems.profiles.weather import GENOA, synthetic_weather

REPO = Path(__file__).resolve().parents[2]
CASE_CSV = REPO / "design" / "cases" / "opera_pia" / "data" / "hourly.csv"


@pytest.fixture(scope="session")
def year_index() -> pd.DatetimeIndex:
    return hourly_year(2023)


@pytest.fixture(scope="session")
def weather(year_index: pd.DatetimeIndex) -> pd.DataFrame:
    return synthetic_weather(year_index, GENOA, seed=7)


@pytest.fixture(scope="session")
def case_hourly() -> pd.DataFrame:
    return pd.read_csv(CASE_CSV, index_col="timestamp", parse_dates=["timestamp"])
