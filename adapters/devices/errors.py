"""One-line configuration errors for the device sections."""

from __future__ import annotations

from pydantic import ValidationError

from ems.errors import ConfigError


def config_error(file: str, prefix: str, exc: ValidationError) -> ConfigError:
    """The first pydantic error as ``file: <prefix>.<field>: <problem>``."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(x) for x in err["loc"])
    field = f"{prefix}.{loc}" if loc else prefix
    return ConfigError(file, field, err["msg"])
