"""Meter register maps in YAML (``adapters/modbus/maps/*.yaml``, or a file given in the site config).

A map names the Modbus function (``input`` = 04, ``holding`` = 03) and, per value the EMS uses,
its register address, type (``int16``, ``uint16``, ``int32``, ``uint32``, ``float32``), word
order (``big``: high word first; ``little``: low word first) and scale to the value's unit.
Values: ``p_w`` (signed, + import), ``import_e_kwh``, ``export_e_kwh``. A map becomes the
``meter`` state payload (``import_p_kw``, ``export_p_kw`` ≥ 0 and the two counters).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.devices.errors import config_error
from ems.errors import ConfigError

MAPS_DIR = Path(__file__).resolve().parent / "maps"
MAX_READ = 125  # registers per read (Modbus limit)
_SIZE = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}


class RegisterDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: int = Field(..., ge=0, le=65535)
    type: Literal["int16", "uint16", "int32", "uint32", "float32"]
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0


class RegisterMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    function: Literal["input", "holding"] = "holding"
    values: dict[Literal["p_w", "import_e_kwh", "export_e_kwh"], RegisterDef]

    def blocks(self) -> list[tuple[int, int]]:
        """(start, count) reads covering every value, each at most 125 registers."""
        spans = sorted((r.address, r.address + _SIZE[r.type]) for r in self.values.values())
        out: list[list[int]] = []
        for lo, hi in spans:
            if out and hi - out[-1][0] <= MAX_READ:
                out[-1][1] = max(out[-1][1], hi)
            else:
                out.append([lo, hi])
        return [(lo, hi - lo) for lo, hi in out]

    def decode(self, regs: Mapping[int, int]) -> dict[str, float]:
        """Values from registers read (address → raw 16-bit value)."""
        out: dict[str, float] = {}
        for name, r in self.values.items():
            words = [regs[r.address + i] for i in range(_SIZE[r.type])]
            out[name] = decode_value(words, r.type, r.word_order) * r.scale
        return out


def decode_value(words: Sequence[int], type_: str, word_order: str = "big") -> float:
    if len(words) == 2 and word_order == "little":
        words = [words[1], words[0]]
    raw = b"".join(int(w).to_bytes(2, "big") for w in words)
    fmt = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}[type_]
    return float(struct.unpack(fmt, raw)[0])


def encode_value(value: float, type_: str, word_order: str = "big") -> list[int]:
    """Registers for a value (the test and demo meters)."""
    fmt = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}[type_]
    raw = struct.pack(fmt, value if type_ == "float32" else int(round(value)))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words[::-1] if word_order == "little" and len(words) == 2 else words


def load_map(name_or_path: str, base: Path | None = None) -> RegisterMap:
    """A shipped map by name (``eastron_sdm630``, ``carlo_gavazzi_em24``) or a YAML file."""
    path = MAPS_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        path = Path(name_or_path)
        if base is not None and not path.is_absolute():
            path = base / path
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        shipped = sorted(p.stem for p in MAPS_DIR.glob("*.yaml"))
        raise ConfigError(
            str(path), "register_map", f"cannot read ({exc.strerror}); shipped maps: {shipped}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "register_map", f"not YAML: {exc}") from None
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        raise config_error(str(path), "register_map", exc) from None


def meter_payload(values: Mapping[str, float]) -> dict[str, float]:
    """``meter`` state fields from map values (non-finite values pass through: the validation
    rejects them as ``non_finite``)."""
    p_w = values["p_w"]
    out = {
        "import_p_kw": p_w / 1000.0 if not math.isfinite(p_w) else max(p_w, 0.0) / 1000.0,
        "export_p_kw": p_w / 1000.0 if not math.isfinite(p_w) else max(-p_w, 0.0) / 1000.0,
    }
    for key in ("import_e_kwh", "export_e_kwh"):
        if key in values:
            out[key] = values[key]
    return out
