"""A simulated charge point speaking real OCPP (1.6J, 2.0.1 or 2.1) over real WebSockets.

Used by the tests, the ``ems run --simulate --devices`` demo and the benchmark: the ``ocpp``
library's ChargePoint on a ``websockets`` client connection, with basic auth and TLS like a real
charger. It keeps the charging profiles it receives and obeys them like a charger does: the
profile's limit applies between ``validFrom`` and ``validTo``; after ``validTo`` (the EMS went
silent) it falls back to its own maximum. ``accept_profiles=False`` makes it reject them.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v21 import ChargePoint as Cp21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


class _Client16(Cp16):
    sim: SimChargePoint

    @on("SetChargingProfile")
    async def on_profile(self, connector_id: int, cs_charging_profiles: dict) -> Any:
        return result16.SetChargingProfile(status=self.sim.take_profile(cs_charging_profiles))

    @on("ClearChargingProfile")
    async def on_clear(self, **_: Any) -> Any:
        self.sim.profiles.clear()
        return result16.ClearChargingProfile(status="Accepted")


class _Client2x:
    sim: SimChargePoint
    _result: Any

    @on("SetChargingProfile")
    async def on_profile(self, evse_id: int, charging_profile: dict, **_: Any) -> Any:
        return self._result.SetChargingProfile(status=self.sim.take_profile(charging_profile))

    @on("ClearChargingProfile")
    async def on_clear(self, **_: Any) -> Any:
        self.sim.profiles.clear()
        return self._result.ClearChargingProfile(status="Accepted")


class _Client201(_Client2x, Cp201):
    _result = result201


class _Client21(_Client2x, Cp21):
    _result = result21


_CLIENTS = {"ocpp1.6": _Client16, "ocpp2.0.1": _Client201, "ocpp2.1": _Client21}


class SimChargePoint:
    """One charge point. All methods are coroutines on the caller's event loop."""

    def __init__(
        self,
        url: str,
        ident: str,
        *,
        version: str = "ocpp1.6",
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_kw: float = 11.0,
        phases: int = 3,
        voltage_v: float = 230.0,
        accept_profiles: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.url, self.ident, self.version = url.rstrip("/") + "/" + ident, ident, version
        self.password, self.ssl_context = password, ssl_context
        self.max_kw, self.phases, self.voltage_v = max_kw, phases, voltage_v
        self.accept_profiles = accept_profiles
        self.clock = clock
        self.profiles: list[dict[str, Any]] = []
        self.rejected_profiles = 0
        self.profile_arrivals: list[float] = []  # loop time of each accepted profile
        self.transaction_id: str | int | None = None
        self.energy_wh = 0.0
        self.seq = 0
        self.cp: Any = None
        self._task: asyncio.Task | None = None
        self._ws: Any = None

    # -------------------------------------------------------------- profiles
    def take_profile(self, profile: dict[str, Any]) -> str:
        if not self.accept_profiles:
            self.rejected_profiles += 1
            return "Rejected"
        pid = profile.get("charging_profile_id", profile.get("id"))
        self.profiles = [
            p for p in self.profiles if p.get("charging_profile_id", p.get("id")) != pid
        ]
        self.profiles.append(profile)
        self.profile_arrivals.append(asyncio.get_running_loop().time())
        return "Accepted"

    def limit_kw(self, now: datetime | None = None) -> float:
        """The power the charger allows now: the valid profile's limit, else its own maximum."""
        now = now or self.clock()
        best: tuple[int, float] | None = None
        for p in self.profiles:
            start, end = _parse(p.get("valid_from")), _parse(p.get("valid_to"))
            if (start and now < start) or (end and now >= end):
                continue
            sched = p["charging_schedule"]
            sched = sched[0] if isinstance(sched, list) else sched
            period = sched["charging_schedule_period"][0]
            if period.get("setpoint") is not None and period["setpoint"] < 0:
                value = float(period["setpoint"])  # OCPP 2.1 V2X discharge setpoint
            else:
                value = float(period.get("limit", 0.0))
            kw = value / 1000.0
            if sched["charging_rate_unit"] == "A":
                kw = value * self.voltage_v * self.phases / 1000.0
            if best is None or p["stack_level"] >= best[0]:
                best = (p["stack_level"], kw)
        return min(best[1], self.max_kw) if best is not None else self.max_kw

    def profile_valid_to(self) -> datetime | None:
        ends = [_parse(p.get("valid_to")) for p in self.profiles]
        return max((e for e in ends if e is not None), default=None)

    # -------------------------------------------------------------- connection
    async def connect(self, boot: bool = True) -> SimChargePoint:
        headers = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.ident}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._ws = await websockets.connect(
            self.url,
            subprotocols=[self.version],
            additional_headers=headers,
            ssl=self.ssl_context,
            open_timeout=10,
        )
        cls = _CLIENTS[self._ws.subprotocol]
        self.cp = cls(self.ident, self._ws, response_timeout=10)
        self.cp.sim = self
        self._task = asyncio.ensure_future(self.cp.start())
        if boot:
            await self.boot()
        return self

    async def disconnect(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._ws = self._task = None

    @property
    def v16(self) -> bool:
        return self.version == "ocpp1.6"

    def _call(self) -> Any:
        return {"ocpp1.6": call16, "ocpp2.0.1": call201, "ocpp2.1": call21}[self.version]

    async def boot(self) -> Any:
        c = self._call()
        if self.v16:
            return await self.cp.call(
                c.BootNotification(charge_point_vendor="cer-ems-sim", charge_point_model="sim-ac")
            )
        return await self.cp.call(
            c.BootNotification(
                charging_station={"model": "sim-ac", "vendor_name": "cer-ems-sim"},
                reason="PowerUp",
            )
        )

    async def heartbeat(self) -> Any:
        return await self.cp.call(self._call().Heartbeat())

    # -------------------------------------------------------------- session
    async def plug(self, soc_pct: float | None = None, needs: dict[str, Any] | None = None) -> None:
        """Car plugged in: status, then a transaction (1.6 StartTransaction, 2.x TransactionEvent
        Started); ``needs`` (2.x): ``energy_wh``, ``departure`` (datetime), ``max_current_a``."""
        c, now = self._call(), self.clock()
        if self.v16:
            await self.cp.call(
                c.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
            )
            res = await self.cp.call(
                c.StartTransaction(
                    connector_id=1,
                    id_tag="SIMTAG",
                    meter_start=int(self.energy_wh),
                    timestamp=_iso(now),
                )
            )
            self.transaction_id = res.transaction_id
            await self.cp.call(
                c.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
            )
        else:
            await self.cp.call(
                c.StatusNotification(
                    timestamp=_iso(now), connector_status="Occupied", evse_id=1, connector_id=1
                )
            )
            self.transaction_id = uuid.uuid4().hex[:16]
            await self._tx_event("Started", "CablePluggedIn", 0.0, soc_pct)
            if needs:
                await self.notify_needs(**needs)

    async def notify_needs(
        self, energy_wh: float, departure: datetime | None = None, max_current_a: int = 16
    ) -> None:
        needs: dict[str, Any] = {
            "requested_energy_transfer": "AC_three_phase",
            "ac_charging_parameters": {
                "energy_amount": int(energy_wh),
                "ev_min_current": 6,
                "ev_max_current": int(max_current_a),
                "ev_max_voltage": 400,
            },
        }
        if departure is not None:
            needs["departure_time"] = _iso(departure)
        await self.cp.call(self._call().NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))

    async def _tx_event(
        self, event: str, trigger: str, p_w: float, soc_pct: float | None = None
    ) -> None:
        self.seq += 1
        info: dict[str, Any] = {"transaction_id": str(self.transaction_id)}
        if event != "Ended":
            info["charging_state"] = "Charging" if p_w > 0 else "EVConnected"
        else:
            info["stopped_reason"] = "EVDisconnected"
        await self.cp.call(
            self._call().TransactionEvent(
                event_type=event,
                timestamp=_iso(self.clock()),
                trigger_reason=trigger,
                seq_no=self.seq,
                transaction_info=info,
                evse={"id": 1, "connector_id": 1},
                meter_value=self._meter_value(p_w, soc_pct),
            )
        )

    def _meter_value(self, p_w: float, soc_pct: float | None) -> list[dict[str, Any]]:
        ts = _iso(self.clock())
        if self.v16:
            values = [
                {"value": f"{p_w:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
                {
                    "value": f"{self.energy_wh:.1f}",
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "Wh",
                },
            ]
            if soc_pct is not None:
                values.append({"value": f"{soc_pct:.1f}", "measurand": "SoC", "unit": "Percent"})
        else:
            imp = max(p_w, 0.0)
            values = [
                {
                    "value": imp,
                    "measurand": "Power.Active.Import",
                    "unit_of_measure": {"unit": "W"},
                },
                {
                    "value": self.energy_wh,
                    "measurand": "Energy.Active.Import.Register",
                    "unit_of_measure": {"unit": "Wh"},
                },
            ]
            if p_w < 0:
                values.append(
                    {
                        "value": -p_w,
                        "measurand": "Power.Active.Export",
                        "unit_of_measure": {"unit": "W"},
                    }
                )
            if soc_pct is not None:
                values.append(
                    {"value": soc_pct, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}}
                )
        return [{"timestamp": ts, "sampled_value": values}]

    async def meter(
        self, p_w: float, soc_pct: float | None = None, energy_wh: float | None = None
    ) -> None:
        """Send one MeterValues (2.x: TransactionEvent Updated while a transaction runs)."""
        if energy_wh is not None:
            self.energy_wh = energy_wh
        if self.v16:
            kwargs: dict[str, Any] = {
                "connector_id": 1,
                "meter_value": self._meter_value(p_w, soc_pct),
            }
            if self.transaction_id is not None:
                kwargs["transaction_id"] = self.transaction_id
            await self.cp.call(call16.MeterValues(**kwargs))
        elif self.transaction_id is not None:
            await self._tx_event("Updated", "MeterValuePeriodic", p_w, soc_pct)
        else:
            await self.cp.call(
                self._call().MeterValues(evse_id=1, meter_value=self._meter_value(p_w, soc_pct))
            )

    async def raw_meter_values(self, sampled_value: list[dict[str, Any]]) -> None:
        """1.6 MeterValues with arbitrary sampled values (garbage tests); schema-valid strings."""
        await self.cp.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=self.transaction_id,
                meter_value=[{"timestamp": _iso(self.clock()), "sampled_value": sampled_value}],
            )
        )

    async def unplug(self) -> None:
        c, now = self._call(), self.clock()
        if self.v16:
            if self.transaction_id is not None:
                await self.cp.call(
                    c.StopTransaction(
                        meter_stop=int(self.energy_wh),
                        timestamp=_iso(now),
                        transaction_id=int(self.transaction_id),
                    )
                )
            await self.cp.call(
                c.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
        else:
            if self.transaction_id is not None:
                await self._tx_event("Ended", "EVCommunicationLost", 0.0)
            await self.cp.call(
                c.StatusNotification(
                    timestamp=_iso(now), connector_status="Available", evse_id=1, connector_id=1
                )
            )
        self.transaction_id = None
        self.profiles = [
            p for p in self.profiles if p.get("charging_profile_purpose") != "TxProfile"
        ]
