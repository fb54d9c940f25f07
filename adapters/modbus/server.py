"""A real pymodbus TCP server playing Modbus devices: SunSpec inverters and batteries, meters.

Used by the tests, the ``ems run --simulate --devices`` demo and the benchmark. Each unit id is
one device with a register image (SunSpec chain at 40000 from
:func:`adapters.modbus.sunspec.build_image`, or a meter map's registers). The server's ``action``
hook keeps a live reference to every image so the owner can change values (the plant moves) and
see what a client wrote (setpoints); faults can be injected per unit: an exception code returned
for every request, a delay longer than the client's timeout, or garbage values written directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from adapters.modbus import sunspec
from adapters.modbus.maps import RegisterMap, encode_value
from ems.techs import registry

logging.getLogger("pymodbus").setLevel(logging.WARNING)

SUNSPEC_BASE = 40000


class ModbusDeviceServer:
    """One TCP server, several unit ids; runs its own asyncio loop in a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.images: dict[int, dict[int, int]] = {}  # unit -> {address: value}
        self.live: dict[int, list[int]] = {}  # unit -> the server's register list
        self.size: dict[int, int] = {}
        self.fail: dict[int, ExcCodes] = {}
        self.delay_s: dict[int, float] = {}
        self.writes: dict[int, list[tuple[int, list[int]]]] = {}
        self.on_write: Callable[[int, int, list[int]], None] | None = None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- devices
    def add_registers(self, unit: int, start: int, values: Sequence[int]) -> None:
        img = self.images.setdefault(unit, {})
        for i, v in enumerate(values):
            img[start + i] = int(v) & 0xFFFF

    def add_sunspec(self, unit: int, models: dict[int, dict[str, Any]]) -> None:
        self.add_registers(unit, SUNSPEC_BASE, sunspec.build_image(models))

    def add_meter(self, unit: int, rmap: RegisterMap, values: dict[str, float]) -> None:
        for name, r in rmap.values.items():
            raw = values.get(name, 0.0) / r.scale
            self.add_registers(unit, r.address, encode_value(raw, r.type, r.word_order))
        lo = min(r.address for r in rmap.values.values())
        hi = max(r.address for r in rmap.values.values()) + 2
        for a in range(lo, hi):  # the gaps between values read as 0 (a real meter has them too)
            self.images[unit].setdefault(a, 0)

    # -------------------------------------------------------------- live values
    def set(self, unit: int, address: int, values: Sequence[int]) -> None:
        with self._lock:
            self.add_registers(unit, address, values)
            live = self.live.get(unit)
            if live is not None:
                for i, v in enumerate(values):
                    live[address + i] = int(v) & 0xFFFF

    def get(self, unit: int, address: int, count: int = 1) -> list[int]:
        with self._lock:
            live = self.live.get(unit)
            if live is not None:
                return [live[address + i] for i in range(count)]
            return [self.images[unit].get(address + i, 0) for i in range(count)]

    def sunspec_model(self, unit: int, model_id: int) -> sunspec.Model:
        """The current values of one SunSpec model of a unit (after what clients wrote)."""
        head = self.get(unit, SUNSPEC_BASE, 2)
        assert tuple(head) == sunspec.SUNS
        addr = SUNSPEC_BASE + 2
        while True:
            mid, length = self.get(unit, addr, 2)
            if mid == sunspec.END_ID:
                raise KeyError(model_id)
            if mid == model_id:
                block = sunspec.ModelBlock(mid, addr + 2, length)
                return sunspec.Model(block, self.get(unit, addr + 2, length))
            addr += 2 + length

    def set_point(self, unit: int, model_id: int, name: str, raw: int | None) -> None:
        m = self.sunspec_model(unit, model_id)
        p = m.points[name]
        self.set(unit, m.address(name), sunspec.encode_point(p, raw))

    # -------------------------------------------------------------- server
    async def _action(
        self,
        unit: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        with self._lock:
            if unit not in self.live:
                self.live[unit] = current
                for a, v in self.images[unit].items():
                    current[a - start_address] = v
        delay = self.delay_s.get(unit, 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if unit in self.fail:
            return self.fail[unit]
        if address + count > start_address + len(current) or (
            set_values is None
            and any((address + i) not in self.images[unit] for i in (0, count - 1))
        ):
            return ExcCodes.ILLEGAL_ADDRESS
        if set_values is not None:
            vals = [int(v) for v in set_values]
            self.writes.setdefault(unit, []).append((address, vals))
            if self.on_write is not None:
                self.on_write(unit, address, vals)
        return None

    def _devices(self) -> list[SimDevice]:
        out = []
        for unit, img in self.images.items():
            size = max(img) + 1
            self.size[unit] = size

            async def action(fc, start, address, count, current, set_values, _u=unit):  # noqa: ANN001
                return await self._action(_u, fc, start, address, count, current, set_values)

            out.append(
                SimDevice(
                    unit,
                    simdata=[SimData(0, count=size, values=0, datatype=DataType.REGISTERS)],
                    action=action,
                )
            )
        return out

    def start(self, timeout_s: float = 10.0) -> ModbusDeviceServer:
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:

                async def listen() -> None:
                    self._server = ModbusTcpServer(self._devices(), address=(self.host, self.port))
                    await self._server.serve_forever(background=True)

                loop.run_until_complete(listen())
                self.port = self._server.transport.sockets[0].getsockname()[1]
            except BaseException as exc:  # port taken
                error.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="modbus-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s):
            raise RuntimeError("modbus server did not start")
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._server is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), loop)
        try:
            fut.result(10)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)


# ---------------------------------------------------------------- simulated SunSpec devices
#: The SunSpec device of each device role (:attr:`ems.techs.base.Technology.device_role`) the
#: bridge reads as an inverter (DERTyp of model 120: 4 PV, 82 PV + storage); meters are register
#: maps, not SunSpec.
SUNSPEC_DER_TYPE: dict[str, int] = {"pv_inverter": 4, "storage_inverter": 82}


def sunspec_device_models(
    key: tuple[str, str, str], rated_w: float
) -> dict[int, dict[str, Any]] | None:
    """The SunSpec models a simulated device of this (hub, kind, id) exposes, as the bridge
    reads them (:mod:`adapters.modbus.bridge`): nameplate, inverter, ratings, and the PV limit
    (123) or the storage controls (124); None when the kind is not a SunSpec device."""
    der = SUNSPEC_DER_TYPE.get(str(registry.device_role(key[1])))
    if der is None:
        return None
    models: dict[int, dict[str, Any]] = {
        1: {"Mn": "cer-ems-sim", "Md": f"sim-{key[1]}", "SN": f"{key[0]}-{key[2]}"},
        103: {"W": 0, "W_SF": 1, "WH": 0, "WH_SF": 0, "St": 4},  # 10 W steps
        120: {"DERTyp": der, "WRtg": round(rated_w / 10), "WRtg_SF": 1},
    }
    if der == SUNSPEC_DER_TYPE["pv_inverter"]:
        models[123] = {"WMaxLimPct": 10000, "WMaxLimPct_SF": -2, "WMaxLim_Ena": 0}
    else:
        models[124] = {
            "WChaMax": round(rated_w / 10), "WChaMax_SF": 1, "ChaState": 5000,
            "ChaState_SF": -2, "StorCtl_Mod": 0, "InWRte": 10000, "OutWRte": 10000,
            "InOutWRte_SF": -2, "InOutWRte_RvrtTms": 0,
        }  # fmt: skip
    return models


def sunspec_state_points(
    models: dict[int, Any], payload: dict[str, Any]
) -> list[tuple[int, str, int]]:
    """The register values (model, point, raw) that show a device's EMS state payload: inverter
    power in 10 W steps (SunSpec W: + into the grid, so a storage's charging ``p_kw`` is
    negative W), and a storage's state of charge (0.01 %)."""
    storage = 124 in models
    w = float(payload["p_kw"]) * 1000.0 * (-1.0 if storage else 1.0)
    out = [(103, "W", int(round(w / 10)) & 0xFFFF)]
    if storage:
        out.append((124, "ChaState", int(round(float(payload["soc_pct"]) * 100))))
    return out
