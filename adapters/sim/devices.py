"""``ems run --simulate --devices``: the demo's plant behind real device protocols.

Its EV chargers become OCPP 2.0.1 charge points (2.1 for V2G points) — the ``ocpp`` library's
client over WebSockets with basic auth (security profile 1 on loopback) — connected to the EMS's
CSMS; its batteries and PV inverters become SunSpec devices (models 1, 103, 120, 123, 124) on a
pymodbus TCP server, polled and written by the EMS's Modbus bridge. Meters, the AI cluster and the
thermal side stay on MQTT (the path gateways use). The plant obeys what reaches the devices: the
charging profile in force at each charge point, the storage controls written into the battery's
registers.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
from datetime import datetime
from typing import Any

import pandas as pd

from adapters.devices.runtime import DeviceBridges
from adapters.modbus.config import ModbusSettings
from adapters.modbus.server import (
    ModbusDeviceServer,
    sunspec_device_models,
    sunspec_state_points,
)
from adapters.ocpp.config import OcppSettings
from adapters.ocpp.simulator import SimChargePoint

Key = tuple[str, str, str]
PHASE_V = 230.0


class SimDevices:
    """The simulated plant's chargers (OCPP) and batteries/PV (Modbus SunSpec)."""

    def __init__(self, runtime: Any, service: Any, clock: Any) -> None:
        self.runtime, self.clock = runtime, clock
        rated = {(h, k, d): r for h, k, d, r in service.devices()}
        setup = service.setup
        # Modbus: one unit id per battery / PV inverter
        self.server = ModbusDeviceServer()
        self.units: dict[Key, int] = {}
        self.wcha_w: dict[Key, float] = {}
        self.models: dict[Key, dict[int, Any]] = {}
        for key, kw in sorted(rated.items()):
            w = max(float(kw or 1.0), 0.1) * 1000.0
            models = sunspec_device_models(key, w)
            if models is None:  # not a SunSpec device of the bridge: stays on MQTT
                continue
            unit = len(self.units) + 1
            self.units[key], self.models[key] = unit, models
            if 124 in models:  # storage: its charge rate is a share of WChaMax
                self.wcha_w[key] = w
            self.server.add_sunspec(unit, models)
        self.server.start()
        modbus = ModbusSettings(
            devices=[
                {"hub": k[0], "kind": k[1], "device": k[2], "host": "127.0.0.1",
                 "port": self.server.port, "unit_id": u, "timeout_s": 2.0}
                for k, u in self.units.items()
            ]
        )  # fmt: skip
        # OCPP: one charge point per EV charger (the points of the technologies whose devices are
        # charge points: Technology.device_role)
        self.points: dict[Key, Any] = {}
        cps = []
        self.passwords: dict[str, str] = {}
        for evp in (t for t in setup.techs if t.device_role == "charge_point"):
            hub = evp.hub
            for c in evp.points:
                ident = f"{hub}-{c.point_id}"
                self.passwords[ident] = secrets.token_urlsafe(12)
                self.points[evp.point_key(c.point_id)] = c
                cps.append(
                    {"id": ident, "hub": hub, "device": c.point_id, "password": self.passwords[ident],
                     "phases": 1, "voltage_v": PHASE_V, "max_kw": c.p_kw}
                )  # fmt: skip
        ocpp = OcppSettings(host="127.0.0.1", port=0, security_profile=1, charge_points=cps)
        self.bridges = DeviceBridges(runtime, ocpp=ocpp, modbus=modbus, autopoll=False).start()
        assert self.bridges.csms is not None or not cps
        self.handled = set(self.units) | set(self.points)
        # the charge points' own event loop
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="sim-chargers", daemon=True
        )
        self._thread.start()
        self.chargers: dict[Key, SimChargePoint] = {}
        self.sessions: dict[Key, float] = {}  # energy register at plug-in (Wh)
        self.departs: dict[Key, Any] = {}  # departure of the car at each charger (session identity)
        if cps:
            url = f"ws://127.0.0.1:{self.bridges.csms.port}{ocpp.path_prefix}"
            self._run(self._connect(url))

    def _run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def _now(self) -> datetime:
        return self.clock().to_pydatetime()

    async def _connect(self, url: str) -> None:
        for key, c in self.points.items():
            ident = f"{key[0]}-{key[2]}"
            cp = SimChargePoint(
                url, ident, version="ocpp2.1" if c.mode == "v2g" else "ocpp2.0.1",
                password=self.passwords[ident], max_kw=c.p_kw, phases=1, voltage_v=PHASE_V,
                clock=self._now,
            )  # fmt: skip
            await cp.connect()
            self.chargers[key] = cp

    # -------------------------------------------------------------- telemetry
    def publish(
        self, telemetry: list[tuple[Key, dict[str, Any]]]
    ) -> list[tuple[Key, dict[str, Any]]]:
        """Put the handled devices' state into their protocol peers, let the bridges read it;
        returns the rest (for MQTT)."""
        rest, ev = [], []
        for key, payload in telemetry:
            if key in self.units:
                self._registers(key, payload)
            elif key in self.chargers:
                ev.append((key, payload))
            else:
                rest.append((key, payload))
        if ev:
            self._run(self._chargers(ev))
        if self.bridges.modbus is not None:
            self.bridges.modbus.poll_now()
        self.bridges.settle()
        return rest

    def _registers(self, key: Key, payload: dict[str, Any]) -> None:
        unit = self.units[key]
        for model, point, raw in sunspec_state_points(self.models[key], payload):
            self.server.set_point(unit, model, point, raw)

    async def _chargers(self, items: list[tuple[Key, dict[str, Any]]]) -> None:
        await asyncio.gather(*(self._charger(key, p) for key, p in items))

    async def _charger(self, key: Key, p: dict[str, Any]) -> None:
        cp = self.chargers[key]
        if (
            p["plugged"]
            and cp.transaction_id is not None
            and p.get("departure") != self.departs.get(key)
        ):
            await cp.unplug()  # one car left and the next plugged in within the step
        if p["plugged"]:
            self.departs[key] = p.get("departure")
        if p["plugged"] and cp.transaction_id is None:
            self.sessions[key] = cp.energy_wh
            amps = math.floor(float(p.get("vehicle_p_max_kw") or cp.max_kw) * 1000 / PHASE_V)
            needs = {
                "energy_wh": float(p.get("requested_e_kwh") or 0.0) * 1000,
                "departure": pd.Timestamp(p["departure"]).floor("us").to_pydatetime()
                if p.get("departure")
                else None,
                "max_current_a": max(amps, 6),
            }
            await cp.plug(needs=needs)
        elif not p["plugged"] and cp.transaction_id is not None:
            await cp.unplug()
        if p["plugged"]:
            got_wh = float(p.get("session_e_kwh") or 0.0) * 1000
            await cp.meter(float(p["p_kw"]) * 1000, energy_wh=self.sessions[key] + got_wh)
        else:
            await cp.heartbeat()

    # -------------------------------------------------------------- setpoints
    def setpoints(self, now: pd.Timestamp) -> dict[Key, dict[str, Any]]:
        """What the devices will do in the coming step: each charger's profile in force, each
        battery's storage controls (as the plant's setpoint dicts)."""
        self.bridges.router.wait(10.0)
        out: dict[Key, dict[str, Any]] = {}
        t = now.to_pydatetime()
        for key, cp in self.chargers.items():
            until = cp.profile_valid_to()
            if until is not None and until > t:
                out[key] = {"p_kw": cp.limit_kw(t), "valid_until": until.isoformat()}
        for key, unit in self.units.items():
            if key not in self.wcha_w:  # storage controls only
                continue
            st = self.server.sunspec_model(unit, 124)
            rvrt = st.raw.get("InOutWRte_RvrtTms") or 0
            if st.raw.get("StorCtl_Mod") == 3 and rvrt > 0:
                pct = st.value("InWRte") or 0.0
                out[key] = {
                    "p_kw": pct / 100.0 * self.wcha_w[key] / 1000.0,
                    "valid_until": (now + pd.Timedelta(seconds=rvrt)).isoformat(),
                }
        return out

    def status(self) -> dict[str, Any]:
        return self.bridges.status()

    def stop(self) -> None:
        async def close() -> None:
            for cp in self.chargers.values():
                await cp.disconnect()

        try:
            self._run(close(), 10.0)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.bridges.stop()
        self.server.stop()
