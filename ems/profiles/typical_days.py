"""Aggregate an hourly year into typical days with weights (SPEC §3 "Time").

Two methods:

* ``bimonth_weekday_holiday`` — the seed's 12 days (§5.1: "giorno feriale e festivo dei bimestri
  gennaio/febbraio, marzo/aprile, maggio/giugno, luglio/agosto, settembre/ottobre,
  novembre/dicembre").  The seed does not say where Saturdays go; the campus is closed on
  Saturdays, so Saturday, Sunday and Italian national holidays are "holiday" (configurable).
  Each typical day is the *mean* of its real days, so Σ_d N_d Σ_t x_{d,t} reproduces the annual
  total of every column exactly.
* ``tsam`` — k clusters of days with tsam (hierarchical clustering, mean representation); each
  column is then corrected (multiplicatively for non-negative columns, additively otherwise) so
  that the weighted sum equals the original total exactly.

Daylight saving time: everything is done on a *standard-time* hourly year in which every day has
24 steps (see :func:`to_standard_time`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ems.errors import DataError
from ems.profiles.calendar import CET_OFFSET_H, is_holiday_day

METHODS = ("bimonth_weekday_holiday", "tsam")
_BIMONTHS = ("jan-feb", "mar-apr", "may-jun", "jul-aug", "sep-oct", "nov-dec")


@dataclass(frozen=True)
class TypicalDays:
    """Result of an aggregation.

    Attributes:
        profiles: DataFrame indexed by (day, hour) — ``day`` a string label, ``hour`` 0..T−1 —
            with the same columns as the input (mean power of the step).
        weights: Series indexed by day label: number of real days each typical day stands for.
        assignment: Series indexed by real date (Timestamp at midnight) → day label.
        dt_h: step length in hours.
        method: the aggregation method used.
    """

    profiles: pd.DataFrame
    weights: pd.Series
    assignment: pd.Series
    dt_h: float
    method: str

    @property
    def days(self) -> list[str]:
        return list(self.weights.index)

    def weighted_totals(self) -> pd.Series:
        """Σ_d N_d Σ_t x_{d,t}·Δt for each column (kWh for kW columns)."""
        per_day = self.profiles.groupby(level="day", sort=False).sum() * self.dt_h
        return per_day.mul(self.weights.reindex(per_day.index), axis=0).sum()

    def day_frame(self, day: str) -> pd.DataFrame:
        """Profiles of one typical day, indexed by hour."""
        if day not in self.weights.index:
            raise DataError(f"day: unknown typical day {day!r}; expected one of {self.days}")
        return self.profiles.xs(day, level="day")


def to_standard_time(
    data: pd.DataFrame,
    standard_offset_h: float = CET_OFFSET_H,
    resolution: str = "1h",
) -> pd.DataFrame:
    """Return ``data`` on a naive, gap-free, local-*standard*-time index at ``resolution``.

    * tz-aware index (e.g. ``Europe/Rome`` with DST): converted to the fixed offset
      ``standard_offset_h`` (UTC+1 for Italy) and made naive — exact, no data lost.
    * naive index: taken as standard time; a wall-clock series with DST artefacts is repaired —
      duplicated timestamps (the repeated autumn hour) are averaged, missing steps (the skipped
      spring hour) are linearly interpolated.
    * finer steps than ``resolution`` are averaged (energy-preserving for power columns).
    """
    if not isinstance(data, pd.DataFrame) or data.empty:
        raise DataError("data: expected a non-empty DataFrame")
    if not isinstance(data.index, pd.DatetimeIndex):
        raise DataError("data: index must be a DatetimeIndex (local time)")
    non_num = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
    if non_num:
        raise DataError(f"data: non-numeric columns {non_num}")
    try:
        step = pd.Timedelta(resolution)
    except (ValueError, TypeError):
        raise DataError(f"resolution: not a time step: {resolution!r}") from None
    if step <= pd.Timedelta(0) or pd.Timedelta(days=1) % step != pd.Timedelta(0):
        raise DataError(f"resolution: {resolution!r} must divide one day")
    df = data.sort_index()
    if df.index.tz is not None:
        df = df.tz_convert("UTC")
        df.index = (df.index + pd.Timedelta(hours=standard_offset_h)).tz_localize(None)
    if df.index.has_duplicates:
        df = df.groupby(level=0).mean()
    # average onto the target grid (also handles finer data), then fill gaps
    df = df.resample(step).mean()
    if df.isna().any().any():
        df = df.interpolate(method="time", limit_direction="both")
    if df.isna().any().any():
        raise DataError("data: columns entirely NaN cannot be aggregated")
    df.index.name = data.index.name
    return df


def _complete_days(df: pd.DataFrame, steps: int) -> pd.DataFrame:
    counts = df.groupby(df.index.normalize()).size()
    full = counts[counts == steps].index
    if len(full) == 0:
        raise DataError(f"data: no complete day of {steps} steps")
    return df[df.index.normalize().isin(full)]


def aggregate_typical_days(
    data: pd.DataFrame,
    method: str = "bimonth_weekday_holiday",
    n_days: int = 12,
    saturday_is_holiday: bool = True,
    resolution: str = "1h",
    standard_offset_h: float = CET_OFFSET_H,
) -> TypicalDays:
    """Aggregate a (usually one-year) time series into typical days.

    Args:
        data: DataFrame with a DatetimeIndex in local time (naive standard time, or tz-aware),
            numeric columns (any units; power columns are averaged per step).
        method: ``"bimonth_weekday_holiday"`` (the seed's 12 days) or ``"tsam"``.
        n_days: number of clusters for ``"tsam"`` (ignored otherwise).
        saturday_is_holiday: bimonth method — treat Saturdays as holidays (default True).
        resolution: step of the typical days (``"1h"`` default; e.g. ``"15min"``).
        standard_offset_h: UTC offset of local standard time for tz-aware input.

    Only complete days are used; the weights sum to the number of complete days (365 for a
    non-leap year).
    """
    if method not in METHODS:
        raise DataError(
            f"method: unknown aggregation method {method!r}; expected one of {list(METHODS)}"
        )
    df = to_standard_time(data, standard_offset_h, resolution)
    dt_h = pd.Timedelta(resolution) / pd.Timedelta(hours=1)
    steps = int(round(24 / dt_h))
    df = _complete_days(df, steps)
    if method == "bimonth_weekday_holiday":
        return _bimonth(df, steps, dt_h, saturday_is_holiday)
    if not isinstance(n_days, (int, np.integer)) or n_days < 1:
        raise DataError(f"n_days: expected a positive integer, got {n_days!r}")
    return _tsam(df, int(n_days), steps, dt_h)


def _profiles_from_labels(
    df: pd.DataFrame, labels_per_step: np.ndarray, order: list[str], steps: int
) -> pd.DataFrame:
    step_no = np.tile(np.arange(steps), len(df) // steps)
    g = df.groupby([labels_per_step, step_no]).mean()
    g.index = g.index.set_names(["day", "hour"])
    return g.reindex(pd.MultiIndex.from_product([order, range(steps)], names=["day", "hour"]))


def _bimonth(df: pd.DataFrame, steps: int, dt_h: float, saturday_is_holiday: bool) -> TypicalDays:
    idx = df.index
    hol = is_holiday_day(idx, saturday_is_holiday=saturday_is_holiday)
    bim = (idx.month.to_numpy() - 1) // 2
    names = np.array(
        [f"{_BIMONTHS[b]}_{'holiday' if h else 'weekday'}" for b, h in zip(bim, hol, strict=True)]
    )
    order_all = [f"{b}_{k}" for b in _BIMONTHS for k in ("weekday", "holiday")]
    present = [n for n in order_all if n in set(names)]
    profiles = _profiles_from_labels(df, names, present, steps)
    day_labels = pd.Series(names[::steps], index=idx[::steps].normalize())
    weights = day_labels.value_counts().reindex(present).astype(float)
    weights.index.name = "day"
    weights.name = "weight"
    return TypicalDays(profiles, weights, day_labels, dt_h, "bimonth_weekday_holiday")


def _tsam(df: pd.DataFrame, n_days: int, steps: int, dt_h: float) -> TypicalDays:
    try:
        import tsam
        from tsam import ClusterConfig
    except ImportError as e:  # pragma: no cover
        raise DataError("method: 'tsam' needs the tsam package (pip install tsam)") from e
    n_real = len(df) // steps
    if n_days > n_real:
        raise DataError(f"n_days: {n_days} exceeds the number of complete days ({n_real})")
    # Columns that are constant confuse the normalisation; tsam handles them, but guard anyway.
    res = tsam.aggregate(
        df,
        n_days,
        period_duration=24,
        temporal_resolution=dt_h,
        cluster=ClusterConfig(method="hierarchical", representation="mean"),
        preserve_column_means=True,
    )
    assign = np.asarray(res.cluster_assignments)
    counts = pd.Series(res.cluster_counts).sort_index()
    used = [int(c) for c in counts.index if counts[c] > 0]
    label = {c: f"cluster_{c:02d}" for c in used}
    # Recompute the representatives as exact means of their member days (energy-consistent).
    per_step = np.repeat([label[int(a)] for a in assign], steps)
    order = [label[c] for c in used]
    profiles = _profiles_from_labels(df, per_step, order, steps)
    weights = pd.Series(
        [float((assign == c).sum()) for c in used], index=pd.Index(order, name="day"), name="weight"
    )
    day_labels = pd.Series([label[int(a)] for a in assign], index=df.index[::steps].normalize())
    td = TypicalDays(profiles, weights, day_labels, dt_h, "tsam")
    return _correct_totals(td, df)


def _correct_totals(td: TypicalDays, df: pd.DataFrame) -> TypicalDays:
    """Make weighted sums equal the original totals exactly (guards floating drift)."""
    target = df.sum() * td.dt_h
    got = td.weighted_totals()
    prof = td.profiles.copy()
    n_steps = float(td.weights.sum()) * (len(prof) / len(td.weights))
    for c in prof.columns:
        if np.isclose(got[c], target[c], rtol=1e-12, atol=1e-12):
            continue
        if (df[c] >= 0).all() and got[c] > 0:
            prof[c] *= target[c] / got[c]
        else:
            prof[c] += (target[c] - got[c]) / (n_steps * td.dt_h)
    return TypicalDays(prof, td.weights, td.assignment, td.dt_h, td.method)
