"""Scenario → time grid and data table for the model builder.

An hourly year (CSV) is completed with shape-built demand columns and band purchase prices on
the real calendar, then aggregated into typical days; or typical days are read directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ems.config.schema import Scenario
from ems.errors import ConfigError, DataError
from ems.model.assembly import electricity_column
from ems.model.timegrid import TimeGrid
from ems.profiles import shapes
from ems.profiles.calendar import is_holiday_day
from ems.profiles.typical_days import aggregate_typical_days
from ems.tariffs import arera_bands, typical_day_band

BUY = "price_buy_eur_per_kwh"
SELL = "price_sell_eur_per_kwh"


@dataclass
class StudyData:
    grid: TimeGrid
    data: pd.DataFrame  # index (period, step)
    sale_can_exceed_purchase: bool
    hourly: pd.DataFrame | None = None


def read_series_csv(
    path: Path,
    file_label: str,
    *,
    index_col: str | None = "timestamp",
    label_cols: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a numeric CSV; a missing file, a bad timestamp or a non-numeric/NaN cell → DataError
    naming the file, the line and the column."""
    if not path.is_file():
        raise DataError(f"{file_label}: file not found: {path}")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # parser errors carry their own line numbers
        raise DataError(f"{file_label}: cannot parse CSV: {exc}") from None
    if index_col is not None:
        if index_col not in df.columns:
            raise DataError(
                f"{file_label}: no {index_col!r} column (first column must be the timestamp)"
            )
        ts = pd.to_datetime(df[index_col], errors="coerce")
        if ts.isna().any():
            line = int(np.flatnonzero(ts.isna())[0]) + 2
            raise DataError(
                f"{file_label}: line {line}: {index_col}: not a timestamp: {df[index_col].iloc[line - 2]!r}"
            )
        repeated = ts.duplicated()
        if repeated.any():
            line = int(np.flatnonzero(repeated.to_numpy())[0]) + 2
            first = int(np.flatnonzero((ts == ts.iloc[line - 2]).to_numpy())[0]) + 2
            raise DataError(
                f"{file_label}: line {line}: {index_col}: {df[index_col].iloc[line - 2]} "
                f"repeats line {first}"
            )
        df = df.drop(columns=[index_col])
        df.index = pd.DatetimeIndex(ts)
    for col in df.columns:
        if col in label_cols:
            continue
        values = pd.to_numeric(df[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))  # NaN, text, ±inf
        if bad.any():
            line = int(np.flatnonzero(bad)[0]) + 2
            cell = df[col].iloc[line - 2]
            shown = "empty" if pd.isna(cell) else repr(str(cell))
            raise DataError(f"{file_label}: line {line}: {col}: missing or not a number ({shown})")
        df[col] = values.astype(float)
    return df


def check_hourly_year(hourly: pd.DataFrame, file_label: str) -> None:
    """An hourly year is 8760 (or 8784) rows one hour apart (local standard time, so no DST gap):
    fewer rows would be aggregated into typical days standing for part of a year while every KPI
    says per year."""
    n = len(hourly)
    if n not in (8760, 8784):
        raise DataError(
            f"{file_label}: {n} rows: an hourly year needs 8760 (or 8784) rows, one per hour "
            "of local standard time"
        )
    step = hourly.index.to_series().diff().iloc[1:]
    off = step != pd.Timedelta(hours=1)
    if off.any():
        i = int(np.flatnonzero(off.to_numpy())[0]) + 1
        raise DataError(
            f"{file_label}: line {i + 2}: timestamp: {hourly.index[i]} is "
            f"{step.iloc[i - 1]} after the previous row (rows must be one hour apart, in order)"
        )


def _needed_columns(s: Scenario) -> list[str]:
    cols = [h.electricity.column for h in s.hubs if h.electricity.column]
    if s.prices.purchase_column:
        cols.append(s.prices.purchase_column)
    if s.prices.sale_column:
        cols.append(s.prices.sale_column)
    if s.incentive is not None:
        cols.append(s.incentive.pz_column)
    return cols


def _demand_columns(s: Scenario) -> list[str]:
    """The data columns of every hub's electricity, heating, DHW and cooling demand."""
    specs = [spec for h in s.hubs for spec in (h.electricity, h.heating, h.dhw, h.cooling)]
    return [spec.column for spec in specs if spec is not None and spec.column]


def prepare(s: Scenario, yield_columns: list[str]) -> StudyData:
    """Build the (period, step) data table and the time grid of a design study."""
    file = s.source_file
    if s.time.hourly_csv:
        hourly = read_series_csv(s.path(s.time.hourly_csv), s.time.hourly_csv)
        check_hourly_year(hourly, s.time.hourly_csv)
        if s.time.pvgis or s.time.gme_prices:
            from design.inputs import apply_inputs

            apply_inputs(s, hourly)
        _check_columns(hourly, _needed_columns(s) + yield_columns, file, "time.hourly_csv")
        _check_non_negative(hourly, _demand_columns(s) + yield_columns, s.time.hourly_csv)
        for hub in s.hubs:
            if hub.electricity.column is None:
                try:
                    hourly[electricity_column(hub.id, s)] = shapes.electric_profile(
                        hourly.index, hub.electricity.annual_mwh, hub.electricity.shape
                    ).to_numpy()
                except DataError as exc:
                    raise ConfigError(file, f"hubs[{hub.id}].electricity", str(exc)) from None
        _add_prices_hourly(s, hourly)
        td = aggregate_typical_days(hourly, method=s.time.aggregation, n_days=s.time.n_days)
        profiles, weights, dt_h = td.profiles, td.weights, td.dt_h
        holiday = pd.Series(
            is_holiday_day(pd.DatetimeIndex(td.assignment.index)), index=td.assignment.index
        )
        kinds = (
            holiday.groupby(td.assignment.values)
            .mean()
            .map(lambda f: "holiday" if f >= 0.5 else "weekday")
        )
    else:
        raw = read_series_csv(
            s.path(s.time.typical_days_csv),
            s.time.typical_days_csv,
            index_col=None,
            label_cols=("day",),
        )
        _check_columns(raw, ["day", "hour"], file, "time.typical_days_csv")
        _check_non_negative(raw, _demand_columns(s) + yield_columns, s.time.typical_days_csv)
        raw["day"] = raw["day"].astype(str)
        raw["hour"] = raw["hour"].astype(int)
        profiles = raw.set_index(["day", "hour"]).sort_index()
        weights = pd.Series(s.time.weights)
        missing = set(weights.index) - set(profiles.index.get_level_values(0).astype(str))
        if missing:
            raise ConfigError(
                file,
                "time.weights",
                f"typical days {sorted(missing)} not in {s.time.typical_days_csv}",
            )
        kinds = pd.Series(
            {
                d: ("holiday" if "holiday" in d or "festivo" in d else "weekday")
                for d in weights.index
            }
        )
        _check_columns(profiles, _needed_columns(s) + yield_columns, file, "time.typical_days_csv")
        dt_h = s.time.dt_h
    days = [str(d) for d in weights.index]
    if s.time.days:
        unknown = sorted(set(s.time.days) - set(days))
        if unknown:
            raise ConfigError(file, "time.days", f"unknown typical days {unknown} (have {days})")
        days = [d for d in days if d in s.time.days]
    n_steps = int(profiles.loc[days[0]].shape[0])
    data = pd.concat(
        {d: profiles.loc[d].reset_index(drop=True) for d in days}, names=["period", "step"]
    )
    if s.time.typical_days_csv:
        _add_prices_typical(s, data, kinds, dt_h)
    grid = TimeGrid(
        tuple(days),
        n_steps,
        dt_h,
        {d: float(weights[d]) for d in days},
        kind={d: str(kinds[d]) for d in days},
    )
    exceed = bool((data[SELL] >= data[BUY].min() - 1e-12).any())
    return StudyData(grid, data, exceed, hourly if s.time.hourly_csv else None)


def _check_non_negative(df: pd.DataFrame, cols: list[str], file_label: str) -> None:
    """Demand and PV-yield columns are ≥ 0 (a negative load would be sized as free generation)."""
    for col in dict.fromkeys(cols):
        if col not in df.columns:
            continue  # a missing column is reported by the column check, with its field
        negative = (df[col] < 0).to_numpy()
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            raise DataError(
                f"{file_label}: line {i + 2}: {col}: {df[col].iloc[i]:g} is negative "
                "(demand and PV yield are ≥ 0)"
            )


def _check_columns(df: pd.DataFrame, cols: list[str], file: str, field: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ConfigError(file, field, f"missing columns {missing}")


def _add_prices_hourly(s: Scenario, hourly: pd.DataFrame) -> None:
    p = s.prices
    if p.purchase_bands is not None:
        bands = arera_bands(hourly.index)
        hourly[BUY] = [p.purchase_bands.price(b) for b in bands]
    else:
        hourly[BUY] = hourly[p.purchase_column]
    hourly[SELL] = (
        p.sale_eur_per_kwh
        if p.sale_column is None
        else p.sale_factor * hourly[p.sale_column] / 1000.0
    )


def _add_prices_typical(s: Scenario, data: pd.DataFrame, kinds: pd.Series, dt_h: float) -> None:
    p = s.prices
    if p.purchase_bands is not None:
        data[BUY] = [
            p.purchase_bands.price(typical_day_band(kinds[d], int(t * dt_h))) for d, t in data.index
        ]
    else:
        data[BUY] = data[p.purchase_column]
    data[SELL] = (
        p.sale_eur_per_kwh
        if p.sale_column is None
        else p.sale_factor * data[p.sale_column] / 1000.0
    )
