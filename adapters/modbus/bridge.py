"""Modbus TCP bridge: polls meters, PV inverters and batteries; writes battery power and PV limits.

- One asyncio loop in a thread, one pymodbus ``AsyncModbusTcpClient`` per device, each polled
  every ``poll_interval_s`` (``autopoll=False``: only when :meth:`ModbusBridge.poll_now` is
  called — the demo's accelerated clock).
- SunSpec devices (``pv``, ``battery``) are discovered once per connection (:mod:`.sunspec`);
  meters are read through a YAML register map (:mod:`.maps`).
- Each poll becomes the device's state payload (``docs/mqtt.md``) handed to ``on_state``: the
  same validation and counted reject reasons as MQTT (``out_of_range``, ``above_rated``,
  ``non_finite``, ``missing_field`` for a point the device does not implement …).
- Transport faults are counted per device (``timeout``, ``exception_response``,
  ``connect_failed``, ``not_sunspec``, ``write_failed``, ``writeback_mismatch``); after a
  timeout or a lost connection the client reconnects with exponential back-off
  (``reconnect_min_s`` … ``reconnect_max_s``). A device that stops answering sends no state, so
  the EMS's staleness rule gives it its safe setpoint.
- Setpoints: battery ``p_kw`` → SunSpec 124 (StorCtl_Mod = 3, InWRte = p/WChaMax, OutWRte = −InWRte:
  charge and discharge limits meet at the setpoint) with the revert timer ``InOutWRte_RvrtTms``
  running to ``valid_until``; PV ``p_max_kw`` → SunSpec 123 ``WMaxLimPct`` (of WRtg) with
  ``WMaxLimPct_RvrtTms`` to ``valid_until`` and ``WMaxLim_Ena`` = 1. Each write is read back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from adapters.modbus import sunspec
from adapters.modbus.config import ModbusDeviceSettings, ModbusSettings
from adapters.modbus.maps import RegisterMap, load_map, meter_payload

log = logging.getLogger(__name__)
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # we count and log failures ourselves

StateSink = Callable[[str, str, str, dict[str, Any]], Any]
_INVERTERS = (103, 102, 101)


class ExceptionResponse(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"exception response code {code}")
        self.code = code


class NotSunSpec(Exception):
    pass


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


@dataclass
class DeviceLink:
    settings: ModbusDeviceSettings
    rmap: RegisterMap | None = None
    client: AsyncModbusTcpClient | None = None
    models: dict[int, sunspec.ModelBlock] | None = None
    wrtg_w: float | None = None
    backoff_s: float = 0.0
    next_connect: float = 0.0
    failing: str | None = None
    last_ok: float | None = None
    polls: int = 0
    counters: Counter[str] = field(default_factory=Counter)
    lock: asyncio.Lock | None = None

    @property
    def name(self) -> str:
        return "/".join(self.settings.key)


class ModbusBridge:
    """Poll and control the Modbus devices of a site."""

    def __init__(
        self,
        settings: ModbusSettings,
        on_state: StateSink,
        *,
        on_alert: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        autopoll: bool = True,
        base_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.on_state = on_state
        self.on_alert = on_alert
        self.clock = clock
        self.autopoll = autopoll
        self.links: dict[tuple[str, str, str], DeviceLink] = {}
        for d in settings.devices:
            rmap = load_map(d.register_map, base_dir) if d.register_map else None
            self.links[d.key] = DeviceLink(d, rmap, backoff_s=d.reconnect_min_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task] = []
        self.poll_s: list[float] = []  # duration of each poll (bench)

    # -------------------------------------------------------------- lifecycle
    def start(self) -> ModbusBridge:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            for link in self.links.values():
                link.lock = asyncio.Lock()
                if self.autopoll:
                    self._tasks.append(loop.create_task(self._poll_loop(link)))
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="modbus-bridge", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            for t in self._tasks:
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for link in self.links.values():
                if link.client is not None:
                    link.client.close()
            loop.stop()

        asyncio.run_coroutine_threadsafe(close(), loop)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, coro: Any) -> Future:
        assert self._loop is not None, "start() the bridge first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def poll_now(self, timeout_s: float = 30.0) -> None:
        """Poll every device once now and wait for it (from any thread but the bridge's)."""

        async def all_() -> None:
            await asyncio.gather(*(self._poll(link) for link in self.links.values()))

        self._run(all_()).result(timeout_s)

    # -------------------------------------------------------------- connection
    async def _poll_loop(self, link: DeviceLink) -> None:
        interval = link.settings.poll_interval_s
        loop = asyncio.get_running_loop()
        while True:
            t0 = loop.time()
            await self._poll(link)
            await asyncio.sleep(max(0.0, interval - (loop.time() - t0)))

    async def _connected(self, link: DeviceLink) -> bool:
        if link.client is not None and link.client.connected:
            return True
        loop = asyncio.get_running_loop()
        if loop.time() < link.next_connect:
            return False
        s = link.settings
        if link.client is None:
            link.client = AsyncModbusTcpClient(
                s.host, port=s.port, timeout=s.timeout_s, retries=s.retries, reconnect_delay=0
            )
        try:
            ok = await asyncio.wait_for(link.client.connect(), s.timeout_s + 1.0)
        except (asyncio.TimeoutError, OSError):
            ok = False
        if not ok:
            self._fail(link, "connect_failed", f"cannot connect to {s.host}:{s.port}", backoff=True)
            return False
        link.models = None  # rediscover: the device may have been replaced
        return True

    def _fail(self, link: DeviceLink, reason: str, detail: str, backoff: bool = False) -> None:
        link.counters[reason] += 1
        if backoff:
            if link.client is not None:
                link.client.close()
            link.next_connect = asyncio.get_running_loop().time() + link.backoff_s
            link.backoff_s = min(link.backoff_s * 2, link.settings.reconnect_max_s)
        if link.failing != reason:
            s = link.settings
            text = f"modbus {link.name} ({s.host}:{s.port} unit {s.unit_id}): {reason}: {detail}"
            log.warning(text)
            if self.on_alert is not None:
                self.on_alert(text)
        link.failing = reason

    def _ok(self, link: DeviceLink) -> None:
        if link.failing is not None:
            log.info("modbus %s answers again", link.name)
        link.failing = None
        link.backoff_s = link.settings.reconnect_min_s
        link.last_ok = time.monotonic()

    async def _read(
        self, link: DeviceLink, address: int, count: int, input_: bool = False
    ) -> list[int]:
        assert link.client is not None
        fn = link.client.read_input_registers if input_ else link.client.read_holding_registers
        rr = await fn(address, count=count, device_id=link.settings.unit_id)
        if rr.isError():
            raise ExceptionResponse(getattr(rr, "exception_code", 0))
        return list(rr.registers)

    async def _write(self, link: DeviceLink, address: int, values: list[int]) -> None:
        assert link.client is not None
        rr = await link.client.write_registers(address, values, device_id=link.settings.unit_id)
        if rr.isError():
            raise ExceptionResponse(getattr(rr, "exception_code", 0))

    # -------------------------------------------------------------- SunSpec
    async def _discover(self, link: DeviceLink) -> None:
        s = link.settings
        bases = [s.sunspec_base] if s.sunspec_base is not None else list(sunspec.BASE_ADDRESSES)
        base = None
        for b in bases:
            try:
                if tuple(await self._read(link, b, 2)) == sunspec.SUNS:
                    base = b
                    break
            except ExceptionResponse:
                continue
        if base is None:
            raise NotSunSpec(f"no SunS marker at {bases}")
        models: dict[int, sunspec.ModelBlock] = {}
        addr = base + 2
        for _ in range(100):
            mid, length = await self._read(link, addr, 2)
            if mid == sunspec.END_ID:
                break
            models.setdefault(mid, sunspec.ModelBlock(mid, addr + 2, length))
            addr += 2 + length
        if not any(m in models for m in _INVERTERS):
            raise NotSunSpec(f"no inverter model (101/102/103) among {sorted(models)}")
        if s.role == "storage_inverter" and 124 not in models:
            raise NotSunSpec(f"battery without storage model 124 (models {sorted(models)})")
        link.models = models
        if 120 in models:
            link.wrtg_w = (await self._model(link, 120)).value("WRtg")
        log.info("modbus %s: SunSpec models %s", link.name, sorted(models))

    async def _model(self, link: DeviceLink, model_id: int) -> sunspec.Model:
        assert link.models is not None
        block = link.models[model_id]
        return sunspec.Model(block, await self._read(link, block.address, block.length))

    def _inverter_id(self, link: DeviceLink) -> int:
        assert link.models is not None
        return next(m for m in _INVERTERS if m in link.models)

    # -------------------------------------------------------------- polling
    async def _poll(self, link: DeviceLink) -> None:
        assert link.lock is not None
        async with link.lock:
            t0 = time.perf_counter()
            if not await self._connected(link):
                return
            try:
                payload = await self._read_state(link)
            except ExceptionResponse as exc:
                self._fail(link, "exception_response", str(exc))
                return
            except NotSunSpec as exc:
                self._fail(link, "not_sunspec", str(exc), backoff=True)
                return
            except (ModbusException, asyncio.TimeoutError, OSError) as exc:
                self._fail(link, "timeout", f"{type(exc).__name__}: {exc}", backoff=True)
                return
            self._ok(link)
            link.polls += 1
            self.poll_s.append(time.perf_counter() - t0)
        hub, kind, dev = link.settings.key
        try:
            self.on_state(hub, kind, dev, payload)
        except Exception:
            log.exception("state of %s not taken", link.name)

    async def _read_state(self, link: DeviceLink) -> dict[str, Any]:
        s = link.settings
        out: dict[str, Any] = {"ts": _iso(self.clock())}
        if link.rmap is not None:
            regs: dict[int, int] = {}
            for start, count in link.rmap.blocks():
                vals = await self._read(link, start, count, input_=link.rmap.function == "input")
                regs.update({start + i: v for i, v in enumerate(vals)})
            out.update(meter_payload(link.rmap.decode(regs)))
            return out
        if link.models is None:
            await self._discover(link)
        inv = await self._model(link, self._inverter_id(link))
        w, wh, tmp = inv.value("W"), inv.value("WH"), inv.value("TmpCab")
        if s.role == "pv_inverter":
            if w is not None:
                kw = w / 1000.0
                out["p_kw"] = 0.0 if -0.05 <= kw < 0 else kw  # night-time self-use reads as 0
            if wh is not None:
                out["e_kwh"] = wh / 1000.0
        else:
            st = await self._model(link, 124)
            if w is not None:
                out["p_kw"] = -w / 1000.0  # SunSpec W: + into the grid (discharge)
            soc = st.value("ChaState")
            if soc is not None:
                out["soc_pct"] = soc
            if tmp is not None:
                out["temp_c"] = tmp
        return out

    # -------------------------------------------------------------- setpoints
    def handles(self, hub: str, kind: str, device: str) -> bool:
        link = self.links.get((hub, kind, device))
        return (
            link is not None
            and link.settings.role in ("storage_inverter", "pv_inverter")
            and link.settings.control
        )

    def apply_setpoint(
        self, hub: str, kind: str, device: str, values: Mapping[str, Any]
    ) -> Future | None:
        """Write a battery (``p_kw``) or PV (``p_max_kw``) setpoint; the future gives True when
        the read-back matches."""
        link = self.links.get((hub, kind, device))
        if link is None or not self.handles(hub, kind, device):
            return None
        return self._run(self._apply(link, dict(values)))

    async def _apply(self, link: DeviceLink, values: dict[str, Any]) -> bool:
        assert link.lock is not None
        async with link.lock:
            if not await self._connected(link):
                link.counters["write_failed"] += 1
                return False
            try:
                if link.models is None:
                    await self._discover(link)
                rvrt = int((values["valid_until"] - self.clock()).total_seconds())
                if rvrt <= 0:
                    return False  # expired before it could be written
                rvrt = min(rvrt, 65534)
                if link.settings.role == "storage_inverter":
                    ok = await self._write_battery(link, float(values["p_kw"]), rvrt)
                else:
                    ok = await self._write_pv(link, float(values["p_max_kw"]), rvrt)
            except ExceptionResponse as exc:
                self._fail(link, "write_failed", f"setpoint not written: {exc}")
                return False
            except NotSunSpec as exc:
                self._fail(link, "not_sunspec", str(exc), backoff=True)
                return False
            except (ModbusException, asyncio.TimeoutError, OSError) as exc:
                self._fail(link, "timeout", f"setpoint not written: {exc}", backoff=True)
                return False
            if ok:
                link.counters["writes_ok"] += 1
            else:
                self._fail(link, "writeback_mismatch", f"read-back differs from {values}")
            return ok

    async def _write_battery(self, link: DeviceLink, p_kw: float, rvrt_s: int) -> bool:
        st = await self._model(link, 124)
        wmax = st.value("WChaMax") or (link.settings.rated_kw or 0.0) * 1000.0
        if wmax <= 0:
            raise NotSunSpec("storage model without WChaMax and no rated_kw configured")
        pct = max(-100.0, min(100.0, p_kw * 1000.0 / wmax * 100.0))
        in_raw = st.encode_scaled("InWRte", pct)
        out_raw = st.encode_scaled("OutWRte", -pct)
        await self._write(link, st.address("StorCtl_Mod"), [3])
        await self._write(link, st.address("OutWRte"), [out_raw, in_raw, 0, rvrt_s])
        back = await self._model(link, 124)
        return (
            back.raw.get("StorCtl_Mod") == 3
            and (back.raw.get("InWRte") or 0) & 0xFFFF == in_raw
            and (back.raw.get("OutWRte") or 0) & 0xFFFF == out_raw
        )

    async def _write_pv(self, link: DeviceLink, p_max_kw: float, rvrt_s: int) -> bool:
        assert link.models is not None
        if 123 not in link.models:
            raise NotSunSpec("inverter without immediate controls (model 123)")
        ctl = await self._model(link, 123)
        ref_w = link.wrtg_w or (link.settings.rated_kw or 0.0) * 1000.0
        if ref_w <= 0:
            raise NotSunSpec("no WRtg (model 120) and no rated_kw configured")
        pct = max(0.0, min(100.0, p_max_kw * 1000.0 / ref_w * 100.0))
        raw = ctl.encode_scaled("WMaxLimPct", pct)
        await self._write(link, ctl.address("WMaxLimPct"), [raw, 0, rvrt_s, 0, 1])
        back = await self._model(link, 123)
        return back.raw.get("WMaxLimPct") == raw and back.raw.get("WMaxLim_Ena") == 1

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        total: Counter[str] = Counter()
        for link in self.links.values():
            total.update(link.counters)
        return {
            "devices": len(self.links),
            "answering": sum(1 for k in self.links.values() if k.failing is None and k.polls),
            **{k: int(v) for k, v in sorted(total.items())},
        }
