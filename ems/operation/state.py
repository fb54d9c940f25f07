"""Estimated plant state from telemetry, its history for forecasts, and the hourly shared-energy
log. Pure and JSON-serialisable (:meth:`PlantState.to_dict`), so the daemon persists it after
every step and a restart resumes where it stopped.

Hourly shared energy (SPEC §6 through :mod:`ems.accounting.rules`): meter energy counters are read
at every hour boundary — interpolated linearly between the samples around it, so a daemon that
was down across a boundary still closes that hour — and each closed hour logs Σ import, Σ export,
shared = min(Σ export, Σ import) in integer Wh and its TIP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from ems.accounting.rules import PZ_REFERENCE_EUR_PER_MWH, power_band, tip_eur
from ems.techs.base import DeviceKey
from ems.techs.registry import REGISTRY, device_registrations

#: Device kinds of the hubs' PODs: their import/export counters close the shared-energy hours.
_COUNTER_KINDS = frozenset(r.device_kind for r in device_registrations() if r.tech.grid_connection)


def _k(key: DeviceKey) -> str:
    return "/".join(key)


def _unk(s: str) -> DeviceKey:
    a, b, c = s.split("/")
    return (a, b, c)


@dataclass
class PlantState:
    latest: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # "hub/kind/id" -> payload (JSON) with ts
    load_history: dict[str, dict[str, float]] = field(default_factory=dict)  # hub -> {iso ts: kW}
    pv_history: dict[str, dict[str, float]] = field(
        default_factory=dict
    )  # yield column -> {iso ts: kW/kWp}
    counters: dict[str, list[float]] = field(
        default_factory=dict
    )  # hub -> [epoch s, import kWh, export kWh]
    boundaries: dict[str, dict[str, list[float]]] = field(
        default_factory=dict
    )  # hub -> {hour epoch: [imp, exp]}
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # hour epoch -> closed hour row
    last_step: str | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    # "hub/kind/id" -> what the device's technology keeps between its messages (JSON; an AI
    # cluster's announced and closed jobs): Technology.take_message / observe / tidy_state
    books: dict[str, dict[str, Any]] = field(default_factory=dict)
    inflexible: dict[str, str] = field(
        default_factory=dict
    )  # "hub/kind/id" -> why the device refuses setpoints (the plan does not count on it)

    # ------------------------------------------------------------------ ingest
    def ingest(self, key: DeviceKey, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Store a validated payload (JSON-able dict with ISO ``ts``); returns newly closed hours."""
        hub, kind, _dev = key
        prev = self.latest.get(_k(key))
        if prev is not None and pd.Timestamp(prev["ts"]) > pd.Timestamp(payload["ts"]):
            return []  # out of order: keep the newer one
        self.latest[_k(key)] = payload
        if (
            kind in _COUNTER_KINDS
            and payload.get("import_e_kwh") is not None
            and payload.get("export_e_kwh") is not None
        ):
            return self._counter(
                hub,
                pd.Timestamp(payload["ts"]).timestamp(),
                float(payload["import_e_kwh"]),
                float(payload["export_e_kwh"]),
            )
        return []

    def _counter(self, hub: str, t: float, imp: float, exp: float) -> list[dict[str, Any]]:
        prev = self.counters.get(hub)
        self.counters[hub] = [t, imp, exp]
        if prev is None and t % 3600 == 0:  # first sample exactly on an hour boundary
            self.boundaries.setdefault(hub, {})[str(int(t))] = [imp, exp]
            return []
        if prev is None or t <= prev[0]:
            return []
        t0, i0, e0 = prev
        if (
            imp < i0 or exp < e0
        ):  # meter reset/replacement: the hour is left to accounting's correction
            return []
        b = self.boundaries.setdefault(hub, {})
        h = math.floor(t0 / 3600) * 3600 + 3600
        while h <= t:
            f = (h - t0) / (t - t0)
            b[str(int(h))] = [i0 + f * (imp - i0), e0 + f * (exp - e0)]
            h += 3600
        return self._close_hours()

    def _close_hours(self) -> list[dict[str, Any]]:
        hubs = list(self.boundaries)
        if not hubs:
            return []
        common = set.intersection(*(set(self.boundaries[h]) for h in hubs))
        closed = []
        for hs in sorted(common, key=int):
            start = str(int(hs) - 3600)
            if start in self.ledger or not all(start in self.boundaries[h] for h in hubs):
                continue
            imp = {h: self.boundaries[h][hs][0] - self.boundaries[h][start][0] for h in hubs}
            exp = {h: self.boundaries[h][hs][1] - self.boundaries[h][start][1] for h in hubs}
            imp_wh, exp_wh = round(1000 * sum(imp.values())), round(1000 * sum(exp.values()))
            row = {
                "hour_utc": int(start),
                "import_wh": imp_wh,
                "export_wh": exp_wh,
                "shared_wh": min(imp_wh, exp_wh),
                "by_hub": {h: [round(1000 * imp[h]), round(1000 * exp[h])] for h in hubs},
            }
            self.ledger[start] = row
            closed.append(row)
        # keep boundaries of the last day only
        cutoff = max((int(x) for x in common), default=0) - 86400
        for h in hubs:
            self.boundaries[h] = {k: v for k, v in self.boundaries[h].items() if int(k) >= cutoff}
        return closed

    # ------------------------------------------------------------------ estimates
    def age_s(self, key: DeviceKey, now: pd.Timestamp) -> float | None:
        p = self.latest.get(_k(key))
        return None if p is None else (now - pd.Timestamp(p["ts"])).total_seconds()

    def value(self, key: DeviceKey, name: str, default: float = 0.0) -> float:
        p = self.latest.get(_k(key))
        v = None if p is None else p.get(name)
        return default if v is None else float(v)

    def record_history(
        self,
        at: pd.Timestamp,
        loads: dict[str, float | None],
        yields: dict[str, float | None],
        keep_days: float = 35,
    ) -> None:
        iso = at.isoformat()
        for hub, v in loads.items():
            if v is not None:
                self.load_history.setdefault(hub, {})[iso] = round(v, 3)
        for col, v in yields.items():
            if v is not None:
                self.pv_history.setdefault(col, {})[iso] = round(v, 5)
        cut = (at - pd.Timedelta(days=keep_days)).isoformat()
        for store in (self.load_history, self.pv_history):
            for k, hist in store.items():
                if len(hist) > 96 * keep_days + 8:
                    store[k] = {t: v for t, v in hist.items() if t >= cut}

    @staticmethod
    def series(hist: dict[str, float] | None) -> pd.Series:
        if not hist:
            return pd.Series(dtype=float)
        s = pd.Series(hist, dtype=float)
        s.index = pd.to_datetime(s.index, utc=True)
        return s.sort_index()

    def pz_feed(self) -> pd.Series | None:
        """The latest day-ahead zonal price curve (device ``market/price/pz``) on the UTC
        quarter-hour grid (€/MWh), or None."""
        p = self.latest.get("market/price/pz")
        if not p:
            return None
        step = pd.Timedelta(minutes=int(p.get("step_min", 60)))
        start = pd.Timestamp(p["start"]).tz_convert("UTC")
        hourly = pd.Series(
            [float(v) for v in p["pz_eur_per_mwh"]],
            index=pd.date_range(start, periods=len(p["pz_eur_per_mwh"]), freq=step),
        )
        grid = pd.date_range(
            start.floor("15min"), start + step * len(hourly), freq="15min", inclusive="left"
        )
        return hourly.reindex(grid, method="ffill")

    def book(self, key: DeviceKey) -> dict[str, Any]:
        """The durable book of one device (created empty): its technology's to keep."""
        return self.books.setdefault(_k(key), {})

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "latest": self.latest,
            "load_history": self.load_history,
            "pv_history": self.pv_history,
            "counters": self.counters,
            "boundaries": self.boundaries,
            "ledger": self.ledger,
            "last_step": self.last_step,
            "alerts": self.alerts[-50:],
            "rejected": self.rejected,
            "books": self.books,
            "inflexible": self.inflexible,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PlantState:
        """The state :meth:`to_dict` wrote, also from an older release (each technology moves
        what it kept at the top level into its devices' books: ``upgrade_persisted``)."""
        d = dict(d)
        for reg in REGISTRY:
            reg.tech.upgrade_persisted(d)
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def tip_of_hour(
    shared_wh: int, pz_eur_per_mwh: float, plant_kw: float, fc_eur_per_mwh: float = 10.0
) -> float:
    """TIP (€) of an hour's shared energy with the accounting rules (power band, Pz, FC north)."""
    base, cap = power_band(Decimal(str(plant_kw)))
    rate = min(
        cap, base + max(Decimal(0), PZ_REFERENCE_EUR_PER_MWH - Decimal(str(pz_eur_per_mwh)))
    ) + Decimal(str(fc_eur_per_mwh))
    return float(tip_eur(int(shared_wh), rate, Decimal(0)))


__all__ = ["PlantState", "tip_of_hour", "DeviceKey"]
_ = _unk
