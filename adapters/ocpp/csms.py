"""OCPP central system (CSMS) for the EMS: charge points connect over WebSocket (1.6J, 2.0.1, 2.1).

- The ``ocpp`` library (mobilityhouse) does the OCPP-J framing, schema validation and routing;
  ``websockets`` does the server, subprotocol negotiation (newest version both sides speak) and TLS.
- Security profiles 1–2: HTTP basic auth per charge point (``<id>:<password>``), over TLS for
  profile 2. An id not in the site configuration is refused before the WebSocket upgrade (404); a
  wrong or missing password gets 401.
- Charger messages (BootNotification, Heartbeat, StatusNotification, Start/StopTransaction,
  MeterValues, TransactionEvent, NotifyEVChargingNeeds) update one :class:`ChargerRecord` per
  charge point, which becomes an ``ev_charger`` state payload (plugged, power, session energy,
  vehicle SoC and limits) handed to ``on_state`` — the same payload and validation as MQTT.
- An ``ev_charger`` setpoint becomes SetChargingProfile (TxProfile while a transaction runs,
  TxDefaultProfile before it) whose ``validTo`` and schedule duration end at the setpoint's
  ``valid_until``: when the EMS goes silent the charger falls back on its own. OCPP 2.1 charge
  points get V2G discharge setpoints as ``operationMode: CentralSetpoint``; 1.6 and 2.0.1 cannot
  discharge, a negative setpoint becomes a 0 W limit.
- A charge point that rejects a profile (status not Accepted, or a CALLERROR) raises an alert and
  ``on_flexibility(key, False, text)``: the plan stops counting on that charger (it is planned as
  one that charges at full power) until a profile is accepted again.
- A reconnecting charge point keeps its record: the running transaction resumes (its MeterValues
  carry the same transaction id) and the current profile is sent again if still valid.

The CSMS runs its own asyncio loop in a thread; the daemon calls :meth:`Csms.apply_setpoint` from
its step thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import itertools
import logging
import math
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as Cp16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v21 import ChargePoint as Cp21
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as result21
from ocpp.v201 import ChargePoint as Cp201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from adapters.ocpp.config import CHARGE_POINT_KIND, SUBPROTOCOLS, ChargePointSettings, OcppSettings

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str, str]
StateSink = Callable[[str, str, str, dict[str, Any]], Any]
FlexSink = Callable[[DeviceKey, bool, str], None]

#: 1.6 connector statuses with a car at the connector.
_PLUGGED_16 = {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}
_W = {"W": 1.0, "kW": 1000.0}
_WH = {"Wh": 1.0, "kWh": 1000.0}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class MeterReading:
    """What one MeterValues sample says (None: not reported or unreadable)."""

    p_w: float | None = None
    energy_wh: float | None = None
    soc_pct: float | None = None
    garbage: int = 0


def parse_meter_values(meter_value: list[Mapping[str, Any]] | None) -> MeterReading:
    """Sampled values of 1.6 (``value`` a string, ``unit``) or 2.x (a number, ``unit_of_measure``)
    → power (import − export, phases summed when no total is given), energy register, SoC."""
    out = MeterReading()
    phases_w: dict[str, float] = {}
    for mv in meter_value or []:
        for sv in mv.get("sampled_value") or []:
            measurand = sv.get("measurand") or "Energy.Active.Import.Register"
            uom = sv.get("unit_of_measure") or {}
            unit = sv.get("unit") or uom.get("unit")
            try:
                value = float(sv.get("value")) * 10.0 ** float(uom.get("multiplier", 0) or 0)
            except (TypeError, ValueError):
                out.garbage += 1
                continue
            if not math.isfinite(value):
                out.garbage += 1
                continue
            if measurand in ("Power.Active.Import", "Power.Active.Export"):
                w = value * _W.get(unit or "W", 1.0)
                w = -w if measurand.endswith("Export") else w
                if sv.get("phase"):
                    phases_w[sv["phase"]] = phases_w.get(sv["phase"], 0.0) + w
                else:
                    out.p_w = (out.p_w or 0.0) + w
            elif measurand == "Energy.Active.Import.Register" and not sv.get("phase"):
                out.energy_wh = value * _WH.get(unit or "Wh", 1.0)
            elif measurand == "SoC":
                out.soc_pct = value
    if out.p_w is None and phases_w:
        out.p_w = sum(phases_w.values())
    return out


@dataclass
class ChargerRecord:
    """What the CSMS knows about one charge point; kept across reconnects."""

    settings: ChargePointSettings
    profile_id: int
    version: str | None = None
    connected: bool = False
    vendor: str | None = None
    model: str | None = None
    plugged: bool = False
    transaction_id: str | None = None
    meter_start_wh: float | None = None
    energy_wh: float | None = None
    p_w: float = 0.0
    soc_pct: float | None = None
    vehicle_p_max_kw: float | None = None
    requested_e_kwh: float | None = None
    departure: datetime | None = None
    setpoint: dict[str, Any] | None = None  # the latest setpoint values (ts, valid_until, p_kw)
    profile_status: str | None = None
    controllable: bool = True
    connects: int = 0
    messages: int = 0

    @property
    def key(self) -> DeviceKey:
        return (self.settings.hub, CHARGE_POINT_KIND, self.settings.device)

    def session_e_kwh(self) -> float | None:
        if self.energy_wh is None or self.meter_start_wh is None:
            return None
        return max(self.energy_wh - self.meter_start_wh, 0.0) / 1000.0

    def payload(self, now: datetime) -> dict[str, Any]:
        """The ``ev_charger`` state payload (docs/mqtt.md) of this charger now."""
        out: dict[str, Any] = {
            "ts": _iso(now),
            "plugged": self.plugged,
            "p_kw": round(self.p_w / 1000.0, 4),
        }
        optional = {
            "session_e_kwh": self.session_e_kwh(),
            "vehicle_soc_pct": self.soc_pct,
            "vehicle_p_max_kw": self.vehicle_p_max_kw,
            "requested_e_kwh": self.requested_e_kwh
            if self.requested_e_kwh is not None or not self.plugged
            else self.settings.default_request_kwh,
            "departure": _iso(self.departure) if self.departure else None,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def take(self, reading: MeterReading) -> None:
        if reading.p_w is not None:
            self.p_w = reading.p_w
        if reading.energy_wh is not None:
            self.energy_wh = reading.energy_wh
            if self.meter_start_wh is None and self.transaction_id is not None:
                self.meter_start_wh = reading.energy_wh
        if reading.soc_pct is not None:
            self.soc_pct = reading.soc_pct


def _schedule_limit(cp: ChargePointSettings, p_kw: float) -> float:
    """Charging limit in the charger's unit (W, or A per phase)."""
    w = max(p_kw, 0.0) * 1000.0
    if cp.max_kw is not None:
        w = min(w, cp.max_kw * 1000.0)
    if cp.rate_unit == "A":
        return round(w / (cp.voltage_v * cp.phases), 1)
    return round(w, 1)


def profile_16(rec: ChargerRecord, values: Mapping[str, Any], stack_level: int) -> Any:
    """SetChargingProfile (1.6J) for a setpoint: one period from ``ts`` to ``valid_until``."""
    ts, until = values["ts"], values["valid_until"]
    cp = rec.settings
    profile: dict[str, Any] = {
        "charging_profile_id": rec.profile_id,
        "stack_level": stack_level,
        "charging_profile_purpose": "TxProfile" if rec.transaction_id else "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "valid_from": _iso(ts),
        "valid_to": _iso(until),
        "charging_schedule": {
            "charging_rate_unit": cp.rate_unit,
            "start_schedule": _iso(ts),
            "duration": max(int((until - ts).total_seconds()), 1),
            "charging_schedule_period": [
                {"start_period": 0, "limit": _schedule_limit(cp, float(values["p_kw"]))}
            ],
        },
    }
    if rec.transaction_id is not None:
        try:
            profile["transaction_id"] = int(rec.transaction_id)
        except ValueError:
            profile["charging_profile_purpose"] = "TxDefaultProfile"
    return call16.SetChargingProfile(connector_id=cp.connector_id, cs_charging_profiles=profile)


def profile_2x(
    rec: ChargerRecord, values: Mapping[str, Any], stack_level: int, *, v21: bool
) -> Any:
    """SetChargingProfile (2.0.1 / 2.1); with 2.1 a negative setpoint is a V2G CentralSetpoint."""
    ts, until = values["ts"], values["valid_until"]
    cp = rec.settings
    p_kw = float(values["p_kw"])
    period: dict[str, Any] = {"start_period": 0, "limit": _schedule_limit(cp, p_kw)}
    if v21:
        if p_kw < 0:
            w = p_kw * 1000.0 if cp.rate_unit == "W" else p_kw * 1000.0 / (cp.voltage_v * cp.phases)
            period = {
                "start_period": 0,
                "operation_mode": "CentralSetpoint",
                "setpoint": round(w, 1),
                "discharge_limit": round(w, 1),
            }
        else:
            period["operation_mode"] = "ChargingOnly"
    profile: dict[str, Any] = {
        "id": rec.profile_id,
        "stack_level": stack_level,
        "charging_profile_purpose": "TxProfile" if rec.transaction_id else "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "valid_from": _iso(ts),
        "valid_to": _iso(until),
        "charging_schedule": [
            {
                "id": rec.profile_id,
                "start_schedule": _iso(ts),
                "duration": max(int((until - ts).total_seconds()), 1),
                "charging_rate_unit": cp.rate_unit,
                "charging_schedule_period": [period],
            }
        ],
    }
    if rec.transaction_id is not None:
        profile["transaction_id"] = rec.transaction_id
    module = call21 if v21 else call201
    return module.SetChargingProfile(evse_id=cp.connector_id, charging_profile=profile)


# ---------------------------------------------------------------------- OCPP 1.6J handlers
class _Csms16(Cp16):
    csms: Csms
    rec: ChargerRecord

    @on("BootNotification")
    async def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        self.rec.vendor, self.rec.model = charge_point_vendor, charge_point_model
        return result16.BootNotification(
            current_time=_iso(self.csms.clock()),
            interval=self.csms.settings.heartbeat_interval_s,
            status="Accepted",
        )

    @on("Heartbeat")
    async def on_heartbeat(self) -> Any:
        self.csms.emit(self.rec)  # an idle charger's state stays fresh
        return result16.Heartbeat(current_time=_iso(self.csms.clock()))

    @on("Authorize")
    async def on_authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": "Accepted"})

    @on("StatusNotification")
    async def on_status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
        if connector_id == self.rec.settings.connector_id:
            self.rec.plugged = status in _PLUGGED_16
            if not self.rec.plugged:
                self.rec.p_w = 0.0
            self.csms.emit(self.rec)
        return result16.StatusNotification()

    @on("StartTransaction")
    async def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        rec = self.rec
        rec.transaction_id = str(self.csms.next_transaction_id())
        rec.meter_start_wh = float(meter_start)
        rec.energy_wh = float(meter_start)
        rec.plugged = True
        self.csms.emit(rec)
        return result16.StartTransaction(
            transaction_id=int(rec.transaction_id), id_tag_info={"status": "Accepted"}
        )

    @after("StartTransaction")
    async def after_start(self, **_: Any) -> None:
        self.csms.resend_soon(self.rec)  # the charger knows the transaction id now

    @on("MeterValues")
    async def on_meter_values(
        self, connector_id: int, meter_value: list, transaction_id: int | None = None, **_: Any
    ) -> Any:
        rec = self.rec
        if transaction_id is not None and rec.transaction_id != str(transaction_id):
            rec.transaction_id = str(transaction_id)  # resumed after a CSMS restart
            rec.plugged = True
        self.csms.take(rec, parse_meter_values(meter_value))
        return result16.MeterValues()

    @on("StopTransaction")
    async def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **_: Any) -> Any:
        rec = self.rec
        rec.energy_wh = float(meter_stop)
        rec.requested_e_kwh = rec.departure = rec.vehicle_p_max_kw = rec.soc_pct = None
        rec.transaction_id = None
        rec.p_w = 0.0
        rec.plugged = False
        self.csms.emit(rec)
        return result16.StopTransaction(id_tag_info={"status": "Accepted"})

    @on("DataTransfer")
    async def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return result16.DataTransfer(status="UnknownVendorId")


# ---------------------------------------------------------------------- OCPP 2.0.1 / 2.1 handlers
class _Handlers2x:
    """Handlers shared by 2.0.1 and 2.1 (same messages; results from the version's module)."""

    csms: Csms
    rec: ChargerRecord
    _result: Any

    @on("BootNotification")
    async def on_boot(self, charging_station: dict, reason: str, **_: Any) -> Any:
        self.rec.vendor = charging_station.get("vendor_name")
        self.rec.model = charging_station.get("model")
        return self._result.BootNotification(
            current_time=_iso(self.csms.clock()),
            interval=self.csms.settings.heartbeat_interval_s,
            status="Accepted",
        )

    @on("Heartbeat")
    async def on_heartbeat(self, **_: Any) -> Any:
        self.csms.emit(self.rec)  # an idle charger's state stays fresh
        return self._result.Heartbeat(current_time=_iso(self.csms.clock()))

    @on("Authorize")
    async def on_authorize(self, id_token: dict, **_: Any) -> Any:
        return self._result.Authorize(id_token_info={"status": "Accepted"})

    @on("StatusNotification")
    async def on_status(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **_: Any
    ) -> Any:
        if evse_id == self.rec.settings.connector_id:
            self.rec.plugged = connector_status == "Occupied"
            if not self.rec.plugged:
                self.rec.p_w = 0.0
            self.csms.emit(self.rec)
        return self._result.StatusNotification()

    @on("TransactionEvent")
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict,
        meter_value: list | None = None,
        id_token: dict | None = None,
        **_: Any,
    ) -> Any:
        rec = self.rec
        tx = str(transaction_info.get("transaction_id"))
        state = transaction_info.get("charging_state")
        if event_type == "Ended":
            rec.take(parse_meter_values(meter_value))
            rec.requested_e_kwh = rec.departure = rec.vehicle_p_max_kw = rec.soc_pct = None
            rec.transaction_id = None
            rec.plugged = False
            rec.p_w = 0.0
            self.csms.emit(rec)
        else:
            if rec.transaction_id != tx:
                rec.transaction_id = tx
                rec.meter_start_wh = None
            if state is not None:
                rec.plugged = state != "Idle"
            else:
                rec.plugged = True
            self.csms.take(rec, parse_meter_values(meter_value))
        if id_token is not None:
            return self._result.TransactionEvent(id_token_info={"status": "Accepted"})
        return self._result.TransactionEvent()

    @after("TransactionEvent")
    async def after_transaction_event(self, event_type: str, **_: Any) -> None:
        if event_type == "Started":
            self.csms.resend_soon(self.rec)

    @on("MeterValues")
    async def on_meter_values(self, evse_id: int, meter_value: list, **_: Any) -> Any:
        if evse_id == self.rec.settings.connector_id:
            self.csms.take(self.rec, parse_meter_values(meter_value))
        return self._result.MeterValues()

    @on("NotifyEVChargingNeeds")
    async def on_charging_needs(self, charging_needs: dict, evse_id: int, **_: Any) -> Any:
        """ISO 15118 needs: requested energy, departure and the car's power limit."""
        rec = self.rec
        ac = charging_needs.get("ac_charging_parameters") or {}
        dc = charging_needs.get("dc_charging_parameters") or {}
        energy = ac.get("energy_amount") or dc.get("energy_amount")
        if energy is not None:
            rec.requested_e_kwh = float(energy) / 1000.0
        if dc.get("ev_max_power") is not None:
            rec.vehicle_p_max_kw = float(dc["ev_max_power"]) / 1000.0
        elif ac.get("ev_max_current") is not None:  # amps per phase at the phase voltage
            cp = rec.settings
            rec.vehicle_p_max_kw = float(ac["ev_max_current"]) * cp.voltage_v * cp.phases / 1000
        if dc.get("state_of_charge") is not None:
            rec.soc_pct = float(dc["state_of_charge"])
        if charging_needs.get("departure_time"):
            try:
                rec.departure = datetime.fromisoformat(
                    str(charging_needs["departure_time"]).replace("Z", "+00:00")
                )
            except ValueError:
                log.warning("ocpp %s: unreadable departure_time", rec.settings.id)
        self.csms.emit(rec)
        return self._result.NotifyEVChargingNeeds(status="Accepted")


class _Csms201(_Handlers2x, Cp201):
    _result = result201


class _Csms21(_Handlers2x, Cp21):
    _result = result21


_HANDLERS = {"ocpp1.6": _Csms16, "ocpp2.0.1": _Csms201, "ocpp2.1": _Csms21}


# ---------------------------------------------------------------------- the server
@dataclass
class CsmsCounters:
    connections: int = 0
    refused_unknown: int = 0
    refused_auth: int = 0
    profiles_sent: int = 0
    profiles_accepted: int = 0
    profiles_rejected: int = 0
    profiles_failed: int = 0
    meter_garbage: int = 0
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class Csms:
    """The EMS's OCPP central system: run :meth:`start` once, feed it setpoints."""

    def __init__(
        self,
        settings: OcppSettings,
        on_state: StateSink,
        *,
        on_flexibility: FlexSink | None = None,
        on_alert: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self.on_state = on_state
        self.on_flexibility = on_flexibility
        self.on_alert = on_alert
        self.clock = clock
        self.records: dict[str, ChargerRecord] = {
            cp.id: ChargerRecord(cp, profile_id=1000 + i)
            for i, cp in enumerate(settings.charge_points)
        }
        self.by_device = {(r.settings.hub, r.settings.device): r for r in self.records.values()}
        self.passwords = {cp.id: cp.password_value() for cp in settings.charge_points}
        self.counters = CsmsCounters()
        self.alerts: list[str] = []
        self._tx = itertools.count(int(time.time()) % 1_000_000 * 100)
        self._conns: dict[str, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = settings.port

    # -------------------------------------------------------------- lifecycle
    def start(self, timeout_s: float = 10.0) -> Csms:
        self._thread = threading.Thread(target=self._run, name="ocpp-csms", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the OCPP CSMS did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        s = self.settings
        tls = None
        if s.cert_file is not None:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            tls.load_cert_chain(str(s.cert_file), str(s.key_file))
        try:
            self._server = await serve(
                self._handle,
                s.host,
                s.port,
                subprotocols=list(SUBPROTOCOLS),
                process_request=self._check_request,
                ssl=tls,
                ping_interval=60,
                ping_timeout=60,
                max_size=1 << 20,
            )
            self.port = self._server.sockets[0].getsockname()[1]
            log.info(
                "OCPP CSMS on %s://%s:%d%s/<id> (%s), %d charge points",
                "wss" if tls else "ws",
                s.host,
                self.port,
                s.path_prefix,
                ", ".join(SUBPROTOCOLS),
                len(self.records),
            )
        except BaseException as exc:  # port taken, bad certificate: reported by start()
            self._error = exc
            asyncio.get_running_loop().stop()
        finally:
            self._ready.set()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        if self._thread is not None:
            self._thread.join(10)

    # -------------------------------------------------------------- connection
    def _identity(self, path: str) -> str | None:
        prefix = self.settings.path_prefix.rstrip("/")
        if not path.startswith(prefix + "/"):
            return None
        ident = path[len(prefix) + 1 :].split("?", 1)[0]
        return ident if ident and "/" not in ident else None

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        ident = self._identity(request.path)
        if ident is None or ident not in self.records:
            self.counters.refused_unknown += 1
            log.warning("OCPP connection refused: unknown charge point id in %r", request.path)
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown charge point\n")
        if self.settings.security_profile == 0:
            return None
        expected = self.passwords.get(ident) or ""
        given = _basic_auth(request.headers.get("Authorization"))
        if given is None or not (
            hmac.compare_digest(given[0], ident) and hmac.compare_digest(given[1], expected)
        ):
            self.counters.refused_auth += 1
            log.warning("OCPP connection refused: charge point %s failed basic auth", ident)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "authentication required\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="cer-ems"'
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        ident = self._identity(connection.request.path) if connection.request else None
        rec = self.records.get(ident or "")
        handler_cls = _HANDLERS.get(connection.subprotocol or "")
        if rec is None or handler_cls is None:
            await connection.close(1002, "no OCPP subprotocol")
            return
        old = self._conns.get(rec.settings.id)
        if old is not None:  # the charger reconnected before the old socket timed out
            await old._connection.close(1000, "replaced by a new connection")
        cp = handler_cls(
            rec.settings.id, connection, response_timeout=self.settings.response_timeout_s
        )
        cp.csms, cp.rec = self, rec
        self._conns[rec.settings.id] = cp
        rec.version, rec.connected = connection.subprotocol, True
        rec.connects += 1
        self.counters.connections += 1
        log.info("charge point %s connected (%s)", rec.settings.id, rec.version)
        if rec.connects > 1:
            self.resend_soon(rec)  # resume: the profile still in force goes out again
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        finally:
            if self._conns.get(rec.settings.id) is cp:
                del self._conns[rec.settings.id]
                rec.connected = False
                log.info("charge point %s disconnected", rec.settings.id)

    # -------------------------------------------------------------- state
    def next_transaction_id(self) -> int:
        return next(self._tx)

    def take(self, rec: ChargerRecord, reading: MeterReading) -> None:
        self.counters.meter_garbage += reading.garbage
        rec.take(reading)
        self.emit(rec)

    def emit(self, rec: ChargerRecord) -> None:
        rec.messages += 1
        hub, kind, dev = rec.key
        try:
            self.on_state(hub, kind, dev, rec.payload(self.clock()))
        except Exception:
            log.exception("state of charge point %s not taken", rec.settings.id)

    # -------------------------------------------------------------- setpoints
    def handles(self, hub: str, kind: str, device: str) -> bool:
        return kind == CHARGE_POINT_KIND and (hub, device) in self.by_device

    def apply_setpoint(
        self, hub: str, kind: str, device: str, values: Mapping[str, Any]
    ) -> Future | None:
        """Take an ``ev_charger`` setpoint (``ts``, ``valid_until`` datetimes, ``p_kw``); returns
        the future of its delivery (None when no profile is sent now)."""
        rec = self.by_device.get((hub, device))
        if rec is None or kind != CHARGE_POINT_KIND or self._loop is None:
            return None
        rec.setpoint = {**values, "_received": time.perf_counter()}
        return asyncio.run_coroutine_threadsafe(self._deliver(rec), self._loop)

    def resend_soon(self, rec: ChargerRecord) -> None:
        """After the current message is answered, send the setpoint in force (if any)."""
        if rec.setpoint is not None:
            rec.setpoint["_received"] = time.perf_counter()
            asyncio.ensure_future(self._deliver(rec))

    async def _deliver(self, rec: ChargerRecord) -> str | None:
        values = rec.setpoint
        cp = self._conns.get(rec.settings.id)
        if values is None or cp is None:
            return None  # sent when it connects, if still valid
        if values["valid_until"] <= self.clock():
            return None
        if not rec.plugged and rec.transaction_id is None:
            return None  # nothing to control; the plug-in triggers a new step
        if rec.version == "ocpp1.6":
            request = profile_16(rec, values, self.settings.stack_level)
        else:
            request = profile_2x(
                rec, values, self.settings.stack_level, v21=rec.version == "ocpp2.1"
            )
        if float(values["p_kw"]) < 0 and rec.version != "ocpp2.1":
            log.info("charge point %s (%s) cannot discharge: limit 0", rec.settings.id, rec.version)
        self.counters.profiles_sent += 1
        try:
            response = await cp.call(request, suppress=False)
            status = str(getattr(response, "status", "Rejected"))
        except asyncio.TimeoutError:
            self.counters.profiles_failed += 1
            self._alert(rec, f"no answer to SetChargingProfile within {cp._response_timeout} s")
            return None
        except ConnectionClosed:
            self.counters.profiles_failed += 1
            return None  # resent on reconnect
        except Exception as exc:  # a CALLERROR (NotSupported, FormationViolation, …)
            status = f"CallError {type(exc).__name__}"
        rec.profile_status = status
        if status == "Accepted":
            self.counters.profiles_accepted += 1
            self.counters.latencies_s.append(time.perf_counter() - values["_received"])
            if not rec.controllable:
                rec.controllable = True
                self._flex(rec, True, f"charge point {rec.settings.id} accepts profiles again")
        else:
            self.counters.profiles_rejected += 1
            text = (
                f"charge point {rec.settings.id} ({'/'.join(rec.key)}) rejected the charging "
                f"profile ({status}); the plan no longer counts on its flexibility"
            )
            self._alert(rec, text)
            if rec.controllable:
                rec.controllable = False
                self._flex(rec, False, text)
        return status

    def _alert(self, rec: ChargerRecord, text: str) -> None:
        log.warning("ocpp %s: %s", rec.settings.id, text)
        self.alerts.append(text)
        if self.on_alert is not None:
            self.on_alert(text)

    def _flex(self, rec: ChargerRecord, ok: bool, text: str) -> None:
        if self.on_flexibility is not None:
            try:
                self.on_flexibility(rec.key, ok, text)
            except Exception:
                log.exception("flexibility change of %s not taken", rec.settings.id)

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        c = self.counters
        lat = sorted(c.latencies_s)
        return {
            "connected": sum(r.connected for r in self.records.values()),
            "configured": len(self.records),
            "refused_unknown": c.refused_unknown,
            "refused_auth": c.refused_auth,
            "profiles_sent": c.profiles_sent,
            "profiles_accepted": c.profiles_accepted,
            "profiles_rejected": c.profiles_rejected,
            "profiles_failed": c.profiles_failed,
            "uncontrollable": sorted(
                r.settings.id for r in self.records.values() if not r.controllable
            ),
            "profile_latency_p95_s": lat[int(0.95 * (len(lat) - 1))] if lat else None,
        }


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password
