"""A simulated plant for the case-study site (``ems run --simulate``).

The plant knows no technology kind: every technology of the operation setup brings its own simple
physics (:meth:`ems.techs.base.Technology.plant_device`, a :class:`ems.techs.plant.PlantDevice`
declared in its module) and the plant loops over the devices of each hub through the phases of
:mod:`ems.techs.plant`.

Exogenous inputs of a period are drawn once from a seed (:class:`Exogenous`), per family of
columns the devices declare: electric loads = the site profile × AR(1) noise (σ 6 %, one draw per
hub), PV yields = profile × an AR(1) cloud factor; the devices' events (EV visits day by day, AI
batch jobs); on multi-energy sites (another generator) heating/DHW/cooling demands = profile ×
AR(1) noise (σ 8 %), outdoor temperature = profile + an AR(1) deviation (σ 1.5 K), solar thermal =
profile × a cloud factor. Two policies run on the same draws: the EMS's setpoints (received over
MQTT) and the no-optimisation baseline (every device on its own rule). Energy balances close by
construction at every meter: ``import − export = load + battery + EV + AI + thermal side − PV``
per hub and step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from adapters.sim.thermal_plant import thermal_step
from ems.operation.assembly import OperationSetup
from ems.operation.forecast import Forecaster
from ems.techs.plant import BUS_THERMAL, HubStep, PlantDevice, device_classes, r3, row_quantities

Key = tuple[str, str, str]


def plant_devices(setup: OperationSetup) -> list[PlantDevice]:
    """The simulated devices of every technology of the setup (in the setup's order)."""
    return [d for t in setup.techs if (d := t.plant_device()) is not None]


def _exo(devices: list[PlantDevice], family: str) -> list[tuple[str, str]]:
    """(profile column, key) of one family of drawn columns, each key once, in device order."""
    out = {k: c for d in devices for f, c, k in d.exo_columns() if f == family}
    return list(out.items())


@dataclass
class Exogenous:
    times: pd.DatetimeIndex
    columns: dict[str, np.ndarray]  # drawn series by key (load:<hub>, yield/thermal columns…)
    events: dict[str, list[Any]]  # device name -> its drawn events
    price_buy: np.ndarray
    price_sell: np.ndarray

    @classmethod
    def draw(
        cls,
        setup: OperationSetup,
        fc: Forecaster,
        start: pd.Timestamp,
        steps: int,
        dt_h: float,
        seed: int = 1,
        tz: str = "Europe/Rome",
    ) -> Exogenous:
        rng = np.random.default_rng(seed)
        times = pd.date_range(start, periods=steps, freq=pd.Timedelta(hours=dt_h))
        devices = plant_devices(setup)
        ar1 = _ar1(rng, steps)
        cols: dict[str, np.ndarray] = {}
        for key, c in _exo(devices, "load"):
            cols[key] = np.clip(fc.profile.at(c, times) * (1 + ar1(0.06)), 0, None)
        cloud = np.clip(1.0 + ar1(0.18, 0.85), 0.25, 1.15)
        for key, c in sorted(_exo(devices, "yield")):
            cols[key] = np.clip(fc.profile.at(c, times) * cloud, 0, 1.1)
        events: dict[str, list[Any]] = {d.name: [] for d in devices}
        local0 = start.tz_convert(tz).normalize()
        for day in range(int(math.ceil(steps * dt_h / 24)) + 1):
            d0 = local0 + pd.Timedelta(days=day)
            for d in devices:
                events[d.name] += d.draw_day(rng, d0, setup.scenario)
        for d in devices:
            events[d.name] += d.draw_events(rng, start, times)
        if setup.has_thermal():
            cols.update(_draw_thermal(devices, fc, times, seed))
        return cls(times, cols, events, fc.price_buy(times, tz), fc.price_sell(times))


def _ar1(rng: np.random.Generator, n: int) -> Any:
    def ar1(sd: float, rho: float = 0.9) -> np.ndarray:
        x = np.zeros(n)
        e = rng.normal(0, sd * math.sqrt(1 - rho**2), n)
        for i in range(n):
            x[i] = (rho * x[i - 1] if i else rng.normal(0, sd)) + e[i]
        return x

    return ar1


def _draw_thermal(
    devices: list[PlantDevice], fc: Any, times: pd.DatetimeIndex, seed: int
) -> dict[str, np.ndarray]:
    """Thermal demands, outdoor temperature and solar-thermal output of a simulated period."""
    rng = np.random.default_rng(seed + 7919)
    n = len(times)
    ar1 = _ar1(rng, n)
    cols: dict[str, np.ndarray] = {}
    for key, c in _exo(devices, "thermal"):
        cols[key] = np.clip(fc.profile.at(c, times) * (1 + ar1(0.08)), 0, None)
    for key, c in sorted(_exo(devices, "temperature")):
        prof = fc.profile.at(c, times) if c in fc.profile.columns() else np.full(n, 15.0)
        cols[key] = prof + ar1(1.5, 0.95)
    cloud = np.clip(1.0 + ar1(0.18, 0.85), 0.25, 1.15)
    for key, c in sorted(_exo(devices, "solar")):
        cols[key] = np.clip(fc.profile.at(c, times) * cloud, 0, 1.2)
    return cols


@dataclass
class PlantSim:
    """Physical state of the simulated plant and one policy's record."""

    setup: OperationSetup
    exo: Exogenous
    dt_h: float
    rows: list[dict[str, float]] = field(default_factory=list)
    i: int = 0
    t_amb_c: float | None = None  # the weather station's last reading

    def __post_init__(self) -> None:
        self.devices = plant_devices(self.setup)
        for d in self.devices:
            d.take_events(self.exo.events.get(d.name, []))
        self.thermal = self.setup.has_thermal()
        self.temperature_columns = sorted(k for k, _c in _exo(self.devices, "temperature"))

    @property
    def now(self) -> pd.Timestamp:
        return self.exo.times[0] + pd.Timedelta(hours=self.i * self.dt_h)

    def device(self, name: str) -> Any:
        """The simulated device of the technology called ``name``."""
        return next(d for d in self.devices if d.name == name)

    def of_hub(self, hub: str) -> list[PlantDevice]:
        return [d for d in self.devices if d.hub == hub]

    def col(self, key: str, i: int, default: float = 0.0) -> float:
        arr = self.exo.columns.get(key)
        return default if arr is None else float(arr[min(i, len(arr) - 1)])

    # ------------------------------------------------------------------ arrivals
    def begin_step(self) -> None:
        """Arrivals and departures at the start of the current step."""
        now = self.now
        for d in self.devices:
            d.arrivals(now, now + pd.Timedelta(hours=self.dt_h), self.i == 0)

    # ------------------------------------------------------------------ telemetry
    def telemetry(self) -> list[tuple[Key, dict[str, Any]]]:
        ts = self.now.isoformat()
        i = min(self.i, len(self.exo.times) - 1)
        out = [m for d in self.devices for m in d.telemetry(ts, i, self.col)]
        temps = self.temperature_columns
        if self.thermal and temps and self.setup.hubs:
            t_now = self.t_amb_c
            if t_now is None:
                t_now = self.col(temps[0], max(i - 1, 0), 15.0)
            out.append(((self.setup.hubs[0], "weather", "main"), {"ts": ts, "t_amb_c": r3(t_now)}))
        return out

    def job_announcements(self) -> list[tuple[Key, dict[str, Any]]]:
        """What the devices' schedulers publish on their ``job`` topic (AI clusters)."""
        ts = self.now.isoformat()
        return [m for d in self.devices for m in d.announcements(ts)]

    # ------------------------------------------------------------------ physics
    def _setpoint_getter(self, setpoints: dict[Key, dict[str, Any]] | None) -> Any:
        now = self.now

        def setpoint(key: Key, name: str) -> Any:
            """A setpoint value still valid now (``None``: missing, expired, or the baseline)."""
            if setpoints is None:
                return None
            v = setpoints.get(key)
            if not v or pd.Timestamp(v["valid_until"]) <= now:
                return None
            return v.get(name)

        return setpoint

    def advance(self, setpoints: dict[Key, dict[str, Any]] | None) -> dict[str, float]:
        """Run one step with the EMS's setpoints (``None``: the no-optimisation baseline).
        Expired or missing setpoints → the device's own safe mode."""
        i, row = self.i, {"i": self.i}
        sp = self._setpoint_getter(setpoints)
        hs = {
            hub: HubStep(
                hub,
                i,
                self.now,
                self.dt_h,
                sp,
                setpoints is None,
                lambda key, default=0.0: self.col(key, i, default),
                row=row,
            )
            for hub in self.setup.hubs
        }
        if self.thermal:
            self.t_amb_c = thermal_step(self, hs)
        surplus = 0.0
        for hub in self.setup.hubs:
            surplus += self._electric(hs[hub])
        row["surplus_kw"] = max(surplus, 0.0)
        row["price_buy"] = float(self.exo.price_buy[i])
        row["price_sell"] = float(self.exo.price_sell[i])
        self.rows.append(row)
        self.i += 1
        return row

    def _electric(self, h: HubStep) -> float:
        """The hub's electric bus: loads and generation, then storage on the net load, then the
        POD. Returns the hub's PV surplus before clipping at 0."""
        devs = self.of_hub(h.hub)
        for d in devs:
            d.el_step(h)
        if self.thermal:
            h.sums.add("bus", BUS_THERMAL, h.th_el)
        other = h.sums.total("bus")
        storage = 0.0
        for d in devs:
            storage = storage + d.balance(h, other)
        for d in devs:
            d.after_balance(h)
        net = other + storage
        for d in devs:
            net = d.meter(h, net)
        h.net_kw = net
        for q in row_quantities(thermal=False):
            h.row[f"{h.hub}.{q}"] = h.rows.total(q)
        raw = h.sums.total("surplus")
        h.surplus_kw = max(raw, 0.0)
        h.row[f"{h.hub}.surplus_kw"] = h.surplus_kw
        for d in devs:
            d.finish(h)
        return raw

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "i": self.i,
            "rows": self.rows,
            "t_amb_c": self.t_amb_c,
            "devices": {d.name: d.to_dict() for d in self.devices},
        }

    def load_dict(self, d: dict[str, Any]) -> None:
        self.i, self.rows, self.t_amb_c = d["i"], d["rows"], d.get("t_amb_c")
        saved = d.get("devices", {})
        for dev in self.devices:
            if dev.name in saved:
                dev.load_dict(saved[dev.name])


def kpis(sim: PlantSim, incentive_eur_per_mwh: float) -> dict[str, float]:
    """Day KPIs of one policy from its executed steps (each kind adds its own)."""
    df = pd.DataFrame(sim.rows)
    if df.empty:
        return {}
    out: dict[str, Any] = {"incentive_eur_per_mwh": incentive_eur_per_mwh}
    for cls in sorted(device_classes(), key=lambda c: c.kpis_order):
        if not cls.thermal:
            devs = [d for d in sim.devices if type(d) is cls]
            cls.kpis(devs, df, sim.dt_h, sim.setup.hubs, out)
    return out
