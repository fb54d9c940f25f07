"""Real inputs for a design study: a PVGIS hourly or TMY file (read with pvlib's readers) as a
PV-yield column and a GME zonal-price file as a price column, placed on the scenario's hourly
year (``time.hourly_csv``) by month, day and hour of local standard time.

Where to download them (docs/design_inputs.md): PVGIS (https://re.jrc.ec.europa.eu/pvg_tools/)
"Hourly data" with "PV power" ticked (csv), or "TMY" (csv); GME (https://www.mercatoelettrico.org)
"Esiti dei mercati → MGP → Prezzi" or the yearly "Anno_<YYYY>" workbook's price sheet saved as CSV
(``date;hour;PUN;NORD;…`` — the zonal-price layouts the accounting ledger already reads).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ems.accounting.readings import hourly_prices, parse_csv
from ems.errors import ConfigError, DataError

#: Italy's local standard time (the scenario's hourly year is in standard time, no DST)
STANDARD_OFFSET_H = 1


def _month_day_hour(index: pd.DatetimeIndex) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([index.month, index.day, index.hour])


def _place(values: pd.Series, target: pd.DatetimeIndex, file: str, field: str) -> np.ndarray:
    """Values indexed by local standard time → the target year's hours, by (month, day, hour);
    29 February comes from 28 February when the source year has none."""
    src = values[~((values.index.month == 2) & (values.index.day == 29))]
    by_key = pd.Series(src.to_numpy(), index=_month_day_hour(src.index))
    by_key = by_key[~by_key.index.duplicated()]
    keys = _month_day_hour(target)
    keys = pd.MultiIndex.from_arrays(
        [
            keys.get_level_values(0),
            np.where(
                (keys.get_level_values(0) == 2) & (keys.get_level_values(1) == 29),
                28,
                keys.get_level_values(1),
            ),
            keys.get_level_values(2),
        ]
    )
    out = by_key.reindex(keys)
    missing = int(out.isna().sum())
    if missing:
        first = target[np.flatnonzero(out.isna().to_numpy())[0]]
        raise ConfigError(
            file, field, f"{missing} hours of the study year have no value (first {first})"
        )
    return out.to_numpy(dtype=float)


def _to_local_standard(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return (index.tz_convert("UTC") + pd.Timedelta(hours=STANDARD_OFFSET_H)).tz_localize(None)


def pvgis_yield(
    path: Path, target: pd.DatetimeIndex, file: str, field: str, module: str = "mono"
) -> np.ndarray:
    """kW per kWp for each hour of ``target`` from a PVGIS file: hourly data with PV power
    (``P`` W ÷ the file's nominal kWp), or hourly radiation / TMY (pvlib's PV model of
    :func:`ems.profiles.pv.pv_specific_yield` on its irradiance and temperature)."""
    from pvlib.iotools import read_pvgis_hourly, read_pvgis_tmy

    if not path.is_file():
        raise ConfigError(file, field, f"file not found: {path}")
    head = path.read_text(encoding="utf-8", errors="replace")[:4000]
    try:
        if "month,year" in head or "time(UTC)" in head:
            data, meta = read_pvgis_tmy(str(path), pvgis_format="csv", map_variables=True)
            kw = _yield_from_weather(data, meta, module)
        else:
            data, meta = read_pvgis_hourly(str(path), pvgis_format="csv", map_variables=True)
            if "P" in data.columns:
                kw = data["P"] / 1000.0 / _nominal_kwp(meta)
            else:
                kw = _yield_from_weather(data, meta, module)
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(
            file, field, f"{path.name}: not a PVGIS hourly or TMY csv ({exc})"
        ) from None
    # PVGIS stamps hours at hh:10 (SARAH) — the hour they belong to
    local = _to_local_standard(pd.DatetimeIndex(kw.index)).floor("h")
    return _place(pd.Series(kw.to_numpy(), index=local), target, file, field).clip(min=0.0)


def _nominal_kwp(meta: dict) -> float:
    for key, value in meta.get("inputs", {}).items():
        k = str(key).lower()
        if ("nominal power" in k or "peak power" in k) and isinstance(value, str):
            try:
                return float(value.split()[0])
            except ValueError:
                continue
    return 1.0


def _yield_from_weather(data: pd.DataFrame, meta: dict, module: str) -> pd.Series:
    import pvlib

    from ems.profiles.pv import pv_specific_yield

    lat = float(meta["inputs"]["latitude"])
    lon = float(meta["inputs"]["longitude"])
    idx = pd.DatetimeIndex(data.index)
    sol = pvlib.solarposition.get_solarposition(idx, lat, lon)
    ghi = data["ghi"] if "ghi" in data else data["poa_global"]
    dni = data.get("dni")
    dhi = data.get("dhi")
    if dni is None or dhi is None:  # radiation only as global: Erbs split
        parts = pvlib.irradiance.erbs(ghi, sol["apparent_zenith"], idx)
        dni, dhi = parts["dni"], parts["dhi"]
    weather = pd.DataFrame(
        {
            "ghi": ghi,
            "dni": dni,
            "dhi": dhi,
            "t_amb_c": data["temp_air"],
            "solar_zenith": sol["apparent_zenith"],
            "solar_azimuth": sol["azimuth"],
            "dni_extra": pvlib.irradiance.get_extra_radiation(idx),
        },
        index=idx,
    )
    return pv_specific_yield(weather, module=module)


def gme_prices(
    path: Path, zone: str, target: pd.DatetimeIndex, file: str, field: str
) -> np.ndarray:
    """€/MWh for each hour of ``target`` from a GME zonal-price file (hourly or 15-minute, long or
    wide by zone), parsed by the accounting ledger's own price reader."""
    if not path.is_file():
        raise ConfigError(file, field, f"file not found: {path}")
    res = parse_csv(path.read_text(encoding="utf-8-sig", errors="replace"), path.name)
    if res.kind != "price":
        raise ConfigError(file, field, f"{path.name}: not a zonal-price file")
    if res.errors and not res.prices:
        raise ConfigError(file, field, str(res.errors[0]))
    prices = {h: float(p) for (z, h), p in hourly_prices(res.prices).items() if z == zone.upper()}
    if not prices:
        zones = sorted({p.zone for p in res.prices})
        raise ConfigError(file, field, f"{path.name}: no prices for zone {zone!r} (has {zones})")
    hours = sorted(prices)
    index = pd.DatetimeIndex([datetime.fromtimestamp(h, UTC) for h in hours])
    series = pd.Series([prices[h] for h in hours], index=_to_local_standard(index))
    return _place(series, target, file, field)


def apply_inputs(s: object, hourly: pd.DataFrame) -> None:
    """Overwrite (or add) the hourly columns the scenario's ``time.pvgis`` and
    ``time.gme_prices`` entries name."""
    t = s.time  # type: ignore[attr-defined]
    file = s.source_file  # type: ignore[attr-defined]
    target = pd.DatetimeIndex(hourly.index)
    for i, e in enumerate(t.pvgis):
        hourly[e.column] = pvgis_yield(
            s.path(e.file),
            target,
            file,
            f"time.pvgis[{i}].file",
            e.module,  # type: ignore[attr-defined]
        )
    for i, e in enumerate(t.gme_prices):
        hourly[e.column] = gme_prices(
            s.path(e.file),
            e.zone,
            target,
            file,
            f"time.gme_prices[{i}].file",  # type: ignore[attr-defined]
        )


__all__ = ["DataError", "apply_inputs", "gme_prices", "pvgis_yield"]
