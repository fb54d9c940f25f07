"""Regenerate the sample meter and price files of June 2024 (deterministic, synthetic data).

    python examples/accounting/make_sample.py

- ``meters_2024-06.csv``: hourly, long layout, explicit UTC offsets, all PODs but pv-hub1; the
  meter of member "bianchi" has a 6-hour gap on 18 June (shown in the statement, not zero-filled);
- ``pv-hub1_2024-06_15min.csv``: 15-minute data of pv-hub1, Italian ``;`` layout with decimal comma;
- ``prices_NORD_2024-06.csv``: hourly NORD zonal prices (synthetic, shaped like 2024 prices);
- ``meters_2024-06_correction.csv``: a late correction of two hours of the foundation's meter.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")
HERE = Path(__file__).parent
rnd = random.Random(2024)

start = datetime(2024, 6, 1, tzinfo=ROME)
hours = [start + timedelta(hours=i) for i in range(30 * 24)]  # no DST change in June
sky = {d: rnd.uniform(0.35, 1.0) for d in range(1, 31)}


def pv(kw: float, t: datetime) -> float:
    x = (t.hour + 0.5 - 5.5) / 15.0  # sun from 05:30 to 20:30
    return (
        0.0
        if not 0 < x < 1
        else kw * 0.78 * math.sin(math.pi * x) ** 1.6 * sky[t.day] * rnd.uniform(0.9, 1.0)
    )


def load(kind: str, t: datetime) -> float:
    wd, h = t.weekday() < 5, t.hour
    if kind == "foundation":
        return rnd.uniform(22, 30) if 7 <= h < 20 else rnd.uniform(12, 16)
    if kind == "public":
        return rnd.uniform(14, 20) if wd and 8 <= h < 18 else rnd.uniform(2, 4)
    if kind == "company":
        return rnd.uniform(8, 14) if 7 <= h < 23 else rnd.uniform(1.5, 2.5)
    return rnd.uniform(0.6, 1.4) if h in (7, 8, 12, 13, 19, 20, 21, 22) else rnd.uniform(0.15, 0.4)


gap = {datetime(2024, 6, 18, h, tzinfo=ROME) for h in range(9, 15)}
rows = ["pod,direction,timestamp,kwh"]
for t in hours:
    ts = t.isoformat()
    rows.append(f"IT001E10000003,injected,{ts},{pv(45, t):.3f}")
    rows.append(f"IT001E10000009,injected,{ts},{pv(20, t):.3f}")
    for pod, kind in (
        ("IT001E20000001", "foundation"),
        ("IT001E20000002", "public"),
        ("IT001E20000003", "company"),
        ("IT001E20000004", "house"),
        ("IT001E20000005", "house"),
    ):
        if pod == "IT001E20000005" and t in gap:
            continue
        rows.append(f"{pod},withdrawn,{ts},{load(kind, t):.3f}")
(HERE / "meters_2024-06.csv").write_text("\n".join(rows) + "\n")

q = ["POD;Data;Quarto;Energia kWh;Verso"]
for t in hours:
    e = pv(150, t) / 4
    for k in range(4):
        idx = t.hour * 4 + k + 1
        q.append(
            f"IT001E10000001;{t:%d/%m/%Y};{idx};{e * rnd.uniform(0.97, 1.03):.3f}".replace(".", ",")
            + ";immessa"
        )
(HERE / "pv-hub1_2024-06_15min.csv").write_text("\n".join(q) + "\n")

p = ["timestamp,zone,price_eur_per_mwh"]
for t in hours:
    base = 105 + 25 * math.cos((t.hour - 20) / 24 * 2 * math.pi) - (18 if t.weekday() >= 5 else 0)
    p.append(f"{t.isoformat()},NORD,{base + rnd.uniform(-8, 8):.2f}")
(HERE / "prices_NORD_2024-06.csv").write_text("\n".join(p) + "\n")

c = ["pod,direction,timestamp,kwh"]
for h in (11, 12):
    c.append(f"IT001E20000001,withdrawn,{datetime(2024, 6, 12, h, tzinfo=ROME).isoformat()},41.250")
(HERE / "meters_2024-06_correction.csv").write_text("\n".join(c) + "\n")
