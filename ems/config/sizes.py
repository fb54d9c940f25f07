"""The sizes file (``sizes.yaml``): one typed model, written by design mode and read by operation.

``hubs.<hub>.<entry>`` holds one technology's installed sizes, keyed as the technology writes them
(:meth:`ems.techs.base.Technology.size_entry`: ``pv_mono: {kwp}``, ``battery: {modules, kwh}``,
``chargers: {<type>: n}``, ``ice_200: {n_units, kwe}``, ``puffer: {pick_100kwh, kwh}``,
``dh: {y_dh}``…) and read back by the same technology as its fixed sizes in operation. Values are
finite, non-negative numbers; ``vehicle_charger`` (which charger types each vehicle used in the
design) is informative. An entry or quantity that no technology of the hub reads is an error
(:func:`check_known`: each technology declares its entries, ``Technology.size_keys``), never
silently ignored. No file access here: :mod:`adapters.config_io` reads and writes the file.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ems.errors import ConfigError

#: Entries that are informative only (not sizes).
INFORMATIVE = ("vehicle_charger",)

Entry = dict[str, Any]


def check_size_entries(hubs: dict[str, dict[str, Any]]) -> None:
    """Every entry is a mapping of finite, non-negative numbers (sizes.yaml and a SITE.yaml's
    ``sizes_override``); ValueError ``hub.entry.quantity: problem`` otherwise."""
    for hub, entries in hubs.items():
        for key, entry in (entries or {}).items():
            if key in INFORMATIVE:
                continue
            if not isinstance(entry, dict):
                raise ValueError(f"{hub}.{key}: {entry!r} is not a mapping of sizes")
            for q, v in entry.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ValueError(f"{hub}.{key}.{q}: {v!r} is not a number")
                if not math.isfinite(float(v)) or float(v) < 0:
                    raise ValueError(f"{hub}.{key}.{q}: {v!r} is not a size (finite, ≥ 0)")


def known_entries(scenario: Any, catalogue: Any) -> dict[str, dict[str, tuple[str, ...] | None]]:
    """hub -> entry -> its quantities, as the technologies of the scenario declare them
    (``Technology.size_keys``; ``None``: informative)."""
    from ems.techs.registry import REGISTRY

    out: dict[str, dict[str, tuple[str, ...] | None]] = {}
    for hub in scenario.hubs:
        entries = out.setdefault(hub.id, {})
        for reg in REGISTRY:
            entries.update(reg.tech.size_keys(hub, catalogue))
    return out


def check_known(
    hubs: dict[str, dict[str, Any]], scenario: Any, catalogue: Any, file: str, field: str
) -> None:
    """Every hub, entry and quantity of ``hubs`` (a sizes.yaml's, or a SITE.yaml's
    ``sizes_override``, under ``field``) is one a technology of the scenario reads: one
    :class:`ConfigError` naming the first that is not."""
    known = known_entries(scenario, catalogue)
    for hub, entries in hubs.items():
        if hub not in known:
            hint = f"(its hubs: {', '.join(known)})"
            raise ConfigError(
                file, f"{field}.{hub}", f"not a hub of scenario {scenario.name} {hint}"
            )
        for key, entry in (entries or {}).items():
            if key not in known[hub]:
                have = ", ".join(known[hub]) or "none"
                raise ConfigError(
                    file,
                    f"{field}.{hub}.{key}",
                    f"no technology {key!r} at {hub} in scenario {scenario.name} (its entries: {have})",
                )
            quantities = known[hub][key]
            if quantities is None or not isinstance(entry, dict):
                continue
            for q in entry:
                if q not in quantities:
                    raise ConfigError(
                        file,
                        f"{field}.{hub}.{key}.{q}",
                        f"unknown quantity of {key} (known: {', '.join(quantities)})",
                    )


class SizesFile(BaseModel):
    """``sizes.yaml``: the scenario it was designed for and the installed sizes per hub."""

    model_config = ConfigDict(extra="forbid")

    scenario: str | None = Field(None, description="name of the scenario of the design")
    hubs: dict[str, dict[str, Entry]] = Field(description="hub -> entry -> quantity -> value")

    @field_validator("hubs", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {h: (v or {}) for h, v in value.items()}
        return value

    @field_validator("hubs")
    @classmethod
    def _sizes_are_numbers(cls, hubs: dict[str, dict[str, Entry]]) -> dict[str, dict[str, Entry]]:
        check_size_entries(hubs)
        return hubs

    # ---- design writes
    @classmethod
    def from_techs(cls, techs: list[Any], scenario: str | None = None) -> SizesFile:
        """The installed sizes of a solved design, each technology writing its own entries."""
        hubs: dict[str, dict[str, Entry]] = {}
        for t in techs:
            hubs.setdefault(t.hub, {}).update(t.size_entry())
        return cls(
            scenario=scenario, hubs={h: v for h, v in hubs.items() if v and h != "community"}
        )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    # ---- operation reads
    @classmethod
    def parse(cls, raw: Any, file: str) -> SizesFile:
        """Validate a parsed sizes.yaml; one ConfigError naming the field on bad input."""
        if not isinstance(raw, dict) or not isinstance(raw.get("hubs"), dict):
            raise ConfigError(
                file, "hubs", "missing: expected the sizes.yaml written by `ems design`"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            field = ".".join(str(x) for x in err.get("loc", ())) or "(top level)"
            if ": " in msg and field == "hubs":
                where, _, msg = msg.partition(": ")
                field = f"hubs.{where}"
            raise ConfigError(file, field, msg) from None

    def installed(self, override: dict[str, dict[str, Any]] | None = None) -> dict[str, Entry]:
        """Sizes per hub with a site's per-hub overrides merged (entry by entry)."""
        out = {
            h: {k: dict(v) if isinstance(v, dict) else v for k, v in e.items()}
            for h, e in self.hubs.items()
        }
        for hub, over in (override or {}).items():
            merged = out.setdefault(hub, {})
            for k, v in over.items():
                merged[k] = (
                    {**merged.get(k, {}), **v}
                    if isinstance(v, dict) and isinstance(merged.get(k), dict)
                    else v
                )
        return out
