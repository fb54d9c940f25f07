"""Build the hourly profile year of the Opera Pia case study (SPEC §7, seed chapters 4–6).

Writes ``data/hourly.csv`` (8760 rows, naive local standard time CET = UTC+1, non-leap year
2023) and ``data/annual_totals.csv``, and refreshes the totals table in ``ASSUMPTIONS.md``
between the ``<!-- totals:begin -->`` / ``<!-- totals:end -->`` markers.  Deterministic:
the only randomness is the weather generator's fixed seed.

Run:  python design/cases/opera_pia/build_profiles.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:  # allow running as a plain script from a fresh clone
    sys.path.insert(0, str(ROOT))

from ems.profiles.calendar import hourly_year  # noqa: E402
from ems.profiles.prices import zonal_price  # noqa: E402
from ems.profiles.pv import pv_specific_yield, solar_thermal_output  # noqa: E402
from ems.profiles.shapes import (  # noqa: E402
    cooling_profile,
    dhw_profile,
    electric_profile,
    heating_profile,
)
from ems.profiles.weather import GENOA, synthetic_weather  # noqa: E402

YEAR = 2023
SEED = 2022

#: Annual electricity, MWh/y — seed §6.1.1 (Figure 25 text): "838 MWh", "114 MWh e 277 MWh",
#: "fabbisogno annuale (244 MWh)".
ELEC_MWH = {1: 838.0, 2: 114.0, 3: 244.0, 4: 277.0}
#: Electric shape and base-load fraction per hub (all university buildings; hub 3 = DITEN labs).
ELEC_SHAPE = {1: ("campus", 0.45), 2: ("campus", 0.42), 3: ("campus", 0.50), 4: ("campus", 0.45)}
#: Annual space heating, MWh/y — seed §6.1.1: "fabbisogni termici (rispettivamente 867 MWh e
#: 264 MWh)", "fabbisogno netto (268 MWh)", "carico termico di riscaldamento (261 MWh)".
HEAT_MWH = {1: 867.0, 2: 268.0, 3: 261.0, 4: 264.0}
#: DHW is NOT part of the heating totals.  Seed §6.1: "La domanda di acqua calda sanitaria viene
#: considerata di entità trascurabile a causa della destinazione d'uso degli edifici."  We give a
#: small nominal DHW (1 % of heating: bars' and labs' washrooms) so DHW technologies can be
#: exercised; scenarios that replicate the seed should leave these columns out.
DHW_MWH = {h: round(0.01 * v, 2) for h, v in HEAT_MWH.items()}
#: Cooling demand of hub 3 (building 11A), thermal MWh/y.  Not in the seed's text (Table 1 is an
#: image).  Assumption: 100 MWh_th/y — see ASSUMPTIONS.md.
COOL_HUB3_MWH = 100.0
#: Zonal price levels (time averages), €/MWh — GME monthly PUN, approximate:
#: HP = Q1 2022 (Jan 224.5, Feb 211.7, Mar 308.1 → ≈ 249); LP = H1 2021 (Jan 60.7, Feb 56.6,
#: Mar 60.4, Apr 69.0, May 69.9, Jun 84.8 → ≈ 67).
PRICE_HP_MEAN = 249.0
PRICE_LP_MEAN = 67.0

COLUMNS = [
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
#: Demand columns whose annual sum must equal the target exactly (after CSV rounding).
DECIMALS = 4


def build() -> tuple[pd.DataFrame, dict[str, float]]:
    """Return the hourly DataFrame and the target annual energy (kWh) of each demand column."""
    idx = hourly_year(YEAR)
    w = synthetic_weather(idx, GENOA, seed=SEED)
    cols: dict[str, pd.Series] = {}
    targets: dict[str, float] = {}
    for h in range(1, 5):
        shape, base = ELEC_SHAPE[h]
        cols[f"hub{h}_elec_kw"] = electric_profile(idx, ELEC_MWH[h], shape, base_fraction=base)
        targets[f"hub{h}_elec_kw"] = ELEC_MWH[h] * 1000
    for h in range(1, 5):
        cols[f"hub{h}_heat_kw"] = heating_profile(idx, HEAT_MWH[h], w["t_amb_c"])
        targets[f"hub{h}_heat_kw"] = HEAT_MWH[h] * 1000
    for h in range(1, 5):
        cols[f"hub{h}_dhw_kw"] = dhw_profile(idx, DHW_MWH[h])
        targets[f"hub{h}_dhw_kw"] = DHW_MWH[h] * 1000
    cols["hub3_cool_kw"] = cooling_profile(idx, COOL_HUB3_MWH, w["t_amb_c"])
    targets["hub3_cool_kw"] = COOL_HUB3_MWH * 1000
    cols["pv_mono_kw_per_kwp"] = pv_specific_yield(w, "mono")
    cols["pv_thin_kw_per_kwp"] = pv_specific_yield(w, "thin_film")
    cols["solar_thermal_kw_per_m2"] = solar_thermal_output(w)
    cols["t_amb_c"] = w["t_amb_c"]
    cols["ghi_w_per_m2"] = w["ghi"]
    cols["zonal_price_hp_eur_per_mwh"] = zonal_price(idx, PRICE_HP_MEAN)
    cols["zonal_price_lp_eur_per_mwh"] = zonal_price(idx, PRICE_LP_MEAN)
    df = pd.DataFrame({c: np.asarray(cols[c], dtype=float) for c in COLUMNS}, index=idx)
    df = df.round(DECIMALS)
    # Put the rounding residual of each demand column into its largest hour so the CSV sums to
    # the target exactly (to 10^-DECIMALS).
    for c, tgt in targets.items():
        resid = round(tgt - df[c].sum(), DECIMALS)
        if resid != 0:
            i = int(np.argmax(df[c].to_numpy()))
            df.iloc[i, df.columns.get_loc(c)] = round(
                df.iloc[i, df.columns.get_loc(c)] + resid, DECIMALS
            )
    df.index.name = "timestamp"
    return df, targets


def totals_table(df: pd.DataFrame) -> pd.DataFrame:
    """Annual sums (energy columns, MWh or kWh/kWp, kWh/m²) and means/max of the others."""
    rows = []
    for c in df.columns:
        s = df[c]
        if c.endswith("_kw"):
            rows.append((c, "annual energy", round(s.sum() / 1000, 6), "MWh", round(s.max(), 1)))
        elif c.endswith("_kw_per_kwp"):
            rows.append((c, "specific yield", round(s.sum(), 1), "kWh/kWp", round(s.max(), 3)))
        elif c.endswith("_kw_per_m2"):
            rows.append((c, "annual yield", round(s.sum(), 1), "kWh/m2", round(s.max(), 3)))
        elif c == "ghi_w_per_m2":
            rows.append((c, "annual GHI", round(s.sum() / 1000, 1), "kWh/m2", round(s.max(), 1)))
        else:
            unit = "C" if c == "t_amb_c" else "EUR/MWh"
            rows.append((c, "mean", round(s.mean(), 2), unit, round(s.max(), 1)))
    return pd.DataFrame(rows, columns=["column", "quantity", "value", "unit", "max"])


def _markdown(t: pd.DataFrame) -> str:
    lines = ["| column | quantity | value | unit | hourly max |", "|---|---|---|---|---|"]
    for r in t.itertuples(index=False):
        lines.append(f"| `{r.column}` | {r.quantity} | {r.value:g} | {r.unit} | {r.max:g} |")
    return "\n".join(lines)


def main(out_dir: Path | None = None) -> Path:
    out_dir = Path(out_dir) if out_dir else HERE / "data"
    out_dir.mkdir(parents=True, exist_ok=True)
    df, _ = build()
    path = out_dir / "hourly.csv"
    df.to_csv(
        path, float_format=f"%.{DECIMALS}f", date_format="%Y-%m-%d %H:%M", lineterminator="\n"
    )
    t = totals_table(df)
    t.to_csv(out_dir / "annual_totals.csv", index=False, lineterminator="\n")
    doc = HERE / "ASSUMPTIONS.md"
    if doc.exists():
        text = doc.read_text(encoding="utf-8")
        a, b = "<!-- totals:begin -->", "<!-- totals:end -->"
        if a in text and b in text:
            head, rest = text.split(a, 1)
            _, tail = rest.split(b, 1)
            doc.write_text(f"{head}{a}\n{_markdown(t)}\n{b}{tail}", encoding="utf-8")
    print(_markdown(t))
    return path


if __name__ == "__main__":
    main()
