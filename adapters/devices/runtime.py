"""Attach the site's OCPP charge points and Modbus devices to the daemon's runtime.

``ocpp:`` and ``modbus:`` sections of SITE.yaml (``docs/devices.md``) declare the devices; each
must be a device of the site (``hub/kind/id`` as on MQTT), so its states reach the same plant
state and its setpoints come from the same plan. The MQTT path stays for gateways.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.devices.errors import config_error
from adapters.devices.gateway import DeviceGateway, SetpointRouter, ingest_deliver
from adapters.ocpp.config import CHARGE_POINT_KIND
from ems.errors import ConfigError
from ems.ports.timeseries import Point

log = logging.getLogger(__name__)


def device_settings(site: Any, known: set[tuple[str, str, str]]) -> tuple[Any, Any]:
    """Validated (OcppSettings | None, ModbusSettings | None) of a site; every declared device
    must be one the EMS plans (``known``), else a one-line :class:`ConfigError`."""
    from adapters.modbus.config import ModbusSettings
    from adapters.ocpp.config import OcppSettings

    file = str(site.path_ or "SITE.yaml")
    ocpp = modbus = None
    try:
        if site.ocpp:
            ocpp = OcppSettings.model_validate(site.ocpp)
    except ValidationError as exc:
        raise config_error(file, "ocpp", exc) from None
    try:
        if site.modbus:
            modbus = ModbusSettings.model_validate(site.modbus)
    except ValidationError as exc:
        raise config_error(file, "modbus", exc) from None
    declared = [
        (f"ocpp.charge_points[{cp.id}]", (cp.hub, CHARGE_POINT_KIND, cp.device))
        for cp in (ocpp.charge_points if ocpp else [])
    ]
    declared += [
        (f"modbus.devices[{'/'.join(d.key)}]", d.key) for d in (modbus.devices if modbus else [])
    ]
    for where, key in declared:
        if key not in known:
            same_kind = sorted("/".join(k) for k in known if k[1] == key[1])
            raise ConfigError(
                file,
                where,
                f"{'/'.join(key)} is not a device of this site (its {key[1]}s: {same_kind})",
            )
    return ocpp, modbus


class DeviceBridges:
    """The CSMS and the Modbus bridge of one runtime, with the gateway between them."""

    def __init__(
        self,
        runtime: Any,
        *,
        ocpp: Any = None,
        modbus: Any = None,
        autopoll: bool = True,
        base_dir: Path | None = None,
    ) -> None:
        from adapters.modbus.bridge import ModbusBridge
        from adapters.ocpp.csms import Csms

        self.runtime = runtime
        self.gateway = DeviceGateway(
            runtime.community,
            ingest_deliver(runtime.ingest),
            on_flexibility=self._flexibility,
            on_alert=self._alert,
        )

        def clock() -> Any:
            return runtime.clock().to_pydatetime()

        self.csms = (
            Csms(
                ocpp,
                self.gateway.submit,
                on_flexibility=self.gateway.flexibility,
                on_alert=self.gateway.alert,
                clock=clock,
            )
            if ocpp is not None and ocpp.charge_points
            else None
        )
        self.modbus = (
            ModbusBridge(
                modbus,
                self.gateway.submit,
                on_alert=self.gateway.alert,
                clock=clock,
                autopoll=autopoll,
                base_dir=base_dir,
            )
            if modbus is not None and modbus.devices
            else None
        )
        self.router = SetpointRouter([b for b in (self.csms, self.modbus) if b is not None])
        self.alerts: list[str] = []

    def start(self) -> DeviceBridges:
        if self.csms is not None:
            self.csms.start()
        if self.modbus is not None:
            self.modbus.start()
        self.runtime.setpoint_router = self.router
        self.runtime.device_status = self.status
        self.runtime.stop_hooks.append(self.stop)
        return self

    def stop(self) -> None:
        if self.runtime.setpoint_router is None:
            return  # stopped already
        self.runtime.setpoint_router = None
        self.runtime.device_status = None
        if self.csms is not None:
            self.csms.stop()
        if self.modbus is not None:
            self.modbus.stop()
        self.gateway.close()

    def _flexibility(self, key: tuple[str, str, str], ok: bool, text: str) -> None:
        rt = self.runtime
        with rt.holding_state():
            changed = rt.service.set_flexible(key, ok, text)
        if changed:
            log.warning("%s: %s", "/".join(key), text)
            rt.on_demand.set()  # re-plan without counting on (or again with) this device

    def _alert(self, text: str) -> None:
        self.alerts.append(text)
        rt = self.runtime
        ts = rt.clock()
        try:
            rt.store.write(
                [
                    Point(
                        "alert",
                        int(ts.value),
                        {
                            "community": rt.community,
                            "hub": "ems",
                            "device": "devices",
                            "kind": "alert",
                        },
                        {"text": text},
                    )
                ]
            )
            rt.statedb.commit_step({}, [], None, [(ts.isoformat(), text)])
        except Exception:
            log.exception("device alert not stored: %s", text)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.csms is not None:
            out["ocpp"] = self.csms.status()
        if self.modbus is not None:
            out["modbus"] = self.modbus.status()
        return out

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until what the bridges submitted has reached the runtime (simulated clock)."""
        deadline = time.monotonic() + timeout_s
        self.gateway.flush(max(deadline - time.monotonic(), 0.1))


def status_fields(status: dict[str, Any]) -> dict[str, float]:
    """Numeric fields of the bridges' status for the ``devices`` store point."""
    fields: dict[str, float] = {}
    for proto, st in status.items():
        for k, v in st.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            fields[f"{proto}_{k}"] = float(v)
    return fields
