"""InfluxDB connection settings (from the site config); secrets from environment or file, never logged."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ems.errors import ConfigError


def resolve_secret(
    value: SecretStr | None, env: str | None, file: Path | None, what: str
) -> str | None:
    """A secret given inline, by environment variable name, or by file (first line, stripped)."""
    if value is not None:
        return value.get_secret_value()
    if env:
        secret = os.environ.get(env)
        if secret is None:
            raise ConfigError("config", what, f"environment variable {env} is not set")
        return secret
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                "config", what, f"cannot read secret file {file}: {exc.strerror}"
            ) from exc
    return None


class InfluxSettings(BaseModel):
    """Where history goes. ``version: 1`` → v1 ``/write`` (database, user/password);
    ``version: 2`` → influxdb-client (org, bucket, token; 2.x and 3.x). Reads always use InfluxQL
    over ``/query`` (for 2.x the bucket needs a DBRP mapping to ``database``)."""

    model_config = ConfigDict(extra="forbid")

    url: str = "http://127.0.0.1:8086"
    version: Literal[1, 2] = 1
    database: str = "ems"
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = None
    password_file: Path | None = None
    org: str | None = None
    bucket: str | None = None
    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None
    create_database: bool = Field(
        True, description="1.x: CREATE DATABASE at start (needs admin rights)"
    )
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    timeout_s: float = Field(10.0, gt=0, le=300)
    ca_file: Path | None = Field(
        None, description="CA bundle for an https:// URL (default: system CAs)"
    )
    verify_tls: bool = Field(
        True, description="verify the server certificate (disable only for tests)"
    )
    buffer_path: Path = Field(
        Path("var/influx-buffer.sqlite"), description="disk buffer used while the server is down"
    )

    @model_validator(mode="after")
    def _v2_needs_org_bucket(self) -> InfluxSettings:
        if self.version == 2 and not (self.org and self.bucket):
            raise ValueError("version 2 needs org and bucket")
        return self

    def password_value(self) -> str | None:
        return resolve_secret(
            self.password, self.password_env, self.password_file, "influx.password"
        )

    def token_value(self) -> str | None:
        return resolve_secret(self.token, self.token_env, self.token_file, "influx.token")
