"""MQTT connection settings. Secrets come from the environment or a file and are never logged."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from adapters.influx.config import resolve_secret


class MqttSettings(BaseModel):
    """Broker, identity, credentials and TLS of the EMS's MQTT client."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    community: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    client_id: str = Field(
        "", description="stable id for the persistent session; default cer-ems-<community>"
    )
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="MQTT 5 only: how long the broker keeps the session"
    )
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = Field(False, description="skip hostname verification (test setups only)")
    reconnect_min_s: float = Field(1.0, gt=0, le=10)
    reconnect_max_s: float = Field(
        10.0,
        gt=0,
        le=10,
        description="backoff cap: at most this long offline after the broker is back",
    )
    status_interval_s: float = Field(15.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _defaults(self) -> MqttSettings:
        if not self.client_id:
            self.client_id = f"cer-ems-{self.community}"
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self

    def password_value(self) -> str | None:
        return resolve_secret(self.password, self.password_env, self.password_file, "mqtt.password")

    @staticmethod
    def random_client_id(prefix: str) -> str:
        return f"{prefix}-{secrets.token_hex(4)}"
