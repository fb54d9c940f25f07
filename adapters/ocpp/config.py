"""CSMS settings: listening socket, TLS, and the charge points allowed to connect.

Secrets (basic-auth passwords) come inline, from an environment variable or from a file, and are
never logged. A charge point's OCPP identity (the last path segment of its URL) is mapped onto the
EMS device ``<hub>/ev_charger/<device>`` whose setpoints it receives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from adapters.influx.config import resolve_secret
from ems.techs import registry

#: Subprotocols the CSMS speaks, preferred first (websockets picks the first one the server lists
#: that the charge point also offers).
SUBPROTOCOLS: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")
_ID = r"^[A-Za-z0-9_.\-:*]{1,48}$"  # OCPP identity: printable, no '/' (OCPP 2.0.1 part 4 §3.1)
_DEV = r"^[A-Za-z0-9_.\-]{1,64}$"
#: The MQTT device kind of the EV chargers (the technology whose devices are charge points).
CHARGE_POINT_KIND: str = registry.device_kinds_with_role("charge_point")[0]


class ChargePointSettings(BaseModel):
    """One charge point the CSMS accepts."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., pattern=_ID, description="OCPP identity (last segment of the URL)")
    hub: str = Field(..., pattern=_DEV)
    device: str = Field(..., pattern=_DEV, description="EMS device id of kind ev_charger")
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    connector_id: int = Field(1, ge=1, le=16, description="connector (1.6) / EVSE (2.x) to control")
    rate_unit: Literal["W", "A"] = Field(
        "W", description="charging-schedule unit the charger takes"
    )
    phases: int = Field(3, ge=1, le=3, description="phases used to convert W to A")
    voltage_v: float = Field(230.0, gt=100, le=500, description="phase voltage for W to A")
    max_kw: float | None = Field(None, gt=0, le=1000, description="the charger's own limit")
    default_request_kwh: float | None = Field(
        None,
        gt=0,
        le=200,
        description="energy a plugged car is assumed to want when the charger cannot say "
        "(OCPP 1.6, no ISO 15118); None: the plan charges it only at its own full-power fallback",
    )

    def password_value(self) -> str | None:
        return resolve_secret(
            self.password, self.password_env, self.password_file, f"ocpp.{self.id}.password"
        )


class OcppSettings(BaseModel):
    """The CSMS of ``ems run``: where it listens, its TLS certificate, who may connect."""

    model_config = ConfigDict(extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(9000, ge=0, le=65535, description="0: a free port (tests)")
    path_prefix: str = Field("/ocpp", description="charge points connect to <prefix>/<id>")
    cert_file: Path | None = Field(None, description="TLS certificate (security profile 2)")
    key_file: Path | None = None
    security_profile: Literal[0, 1, 2] = Field(
        2,
        description="0 no auth (loopback tests only), 1 basic auth over ws://, 2 basic auth over TLS",
    )
    heartbeat_interval_s: int = Field(300, ge=10, le=86_400)
    response_timeout_s: float = Field(10.0, gt=0, le=120)
    stack_level: int = Field(1, ge=0, le=99, description="stack level of the EMS's profiles")
    charge_points: list[ChargePointSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> OcppSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.security_profile == 2 and self.cert_file is None:
            raise ValueError("security_profile 2 needs cert_file and key_file (TLS)")
        seen: set[str] = set()
        for cp in self.charge_points:
            if cp.id in seen:
                raise ValueError(f"charge point id {cp.id!r} is declared twice")
            seen.add(cp.id)
            if self.security_profile >= 1 and not (
                cp.password or cp.password_env or cp.password_file
            ):
                raise ValueError(
                    f"charge point {cp.id!r}: security profile {self.security_profile} needs a password"
                )
        return self
