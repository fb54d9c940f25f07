"""Modbus TCP devices of a site: where they are, what they are, how they are polled."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ems.techs import registry

_DEV = r"^[A-Za-z0-9_.\-]{1,64}$"
#: Device roles (:attr:`ems.techs.base.Technology.device_role`) the Modbus bridge speaks.
MODBUS_ROLES = ("meter", "pv_inverter", "storage_inverter")


class ModbusDeviceSettings(BaseModel):
    """One device on Modbus TCP (an RS485 line behind a TCP gateway: one entry per unit id)."""

    model_config = ConfigDict(extra="forbid")

    hub: str = Field(..., pattern=_DEV)
    kind: str = Field(..., description="MQTT device kind of a meter, PV or storage technology")
    device: str = Field(..., pattern=_DEV, description="EMS device id (main, pv_mono, bess, …)")
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    register_map: str | None = Field(
        None,
        description="meters: a shipped map (eastron_sdm630, carlo_gavazzi_em24) or a YAML file",
    )
    sunspec_base: int | None = Field(
        None, description="SunSpec marker address; None: look at 40000, 0, 50000"
    )
    rated_kw: float | None = Field(
        None, gt=0, le=10_000, description="reference for % controls when model 120 is absent"
    )
    poll_interval_s: float = Field(5.0, ge=0.2, le=3600)
    timeout_s: float = Field(2.0, gt=0, le=60)
    retries: int = Field(1, ge=0, le=10, description="retries of one request before it fails")
    reconnect_min_s: float = Field(1.0, gt=0, le=600)
    reconnect_max_s: float = Field(60.0, gt=0, le=3600)
    control: bool = Field(True, description="write setpoints (battery power, PV limit)")

    @field_validator("kind")
    @classmethod
    def _modbus_kind(cls, kind: str) -> str:
        if registry.device_role(kind) not in MODBUS_ROLES:
            kinds = [k for r in MODBUS_ROLES for k in registry.device_kinds_with_role(r)]
            raise ValueError(f"{kind!r} is not a Modbus device kind ({', '.join(kinds)})")
        return kind

    @property
    def role(self) -> str:
        """``meter`` (a register map), ``pv_inverter`` or ``storage_inverter`` (SunSpec)."""
        return str(registry.device_role(self.kind))

    @model_validator(mode="after")
    def _consistent(self) -> ModbusDeviceSettings:
        if self.role == "meter" and not self.register_map:
            raise ValueError(f"meter {self.device!r}: register_map is required")
        if self.role != "meter" and self.register_map:
            raise ValueError(f"{self.kind} {self.device!r}: SunSpec devices take no register_map")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.hub, self.kind, self.device)


class ModbusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[ModbusDeviceSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ModbusSettings:
        seen: set[tuple[str, str, str]] = set()
        for d in self.devices:
            if d.key in seen:
                raise ValueError(f"device {'/'.join(d.key)} is declared twice")
            seen.add(d.key)
        return self
