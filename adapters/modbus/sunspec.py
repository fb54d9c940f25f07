"""A small typed SunSpec layer: discovery of the model chain and the models the EMS reads/writes.

SunSpec devices put the marker ``SunS`` (0x5375 0x6E53) at holding register 40000 (or 0 or
50000), followed by a chain of models, each ``ID, L`` then ``L`` registers, ended by ID 0xFFFF.
Discovery walks that chain (:func:`discover`); :class:`Model` decodes a model's block with its
scale factors (``*_SF``, a power of ten) and "not implemented" values (0x8000 for int16, 0xFFFF
for uint16/enum16/bitfield16, 0 for acc32) read as ``None``.

Models used (SunSpec Information Model, the "sunspec" 1.x register models; the same point names
appear in pysunspec2's JSON model definitions):

- 1 common (Mn, Md, SN);
- 101/102/103 single/split/three-phase inverter, integer + SF (W, WH, St, TmpCab …);
- 120 nameplate (WRtg: the reference of the percent controls);
- 123 immediate controls (WMaxLimPct with its revert timer: the PV export/curtailment limit);
- 124 basic storage controls (WChaMax, ChaState, StorCtl_Mod, InWRte/OutWRte with revert timer).

pysunspec2 was not used: it does blocking I/O of its own (no asyncio, one device at a time), and
the EMS needs six models, not the whole information model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

SUNS = (0x5375, 0x6E53)
BASE_ADDRESSES = (40000, 0, 50000)
END_ID = 0xFFFF

PointType = Literal[
    "int16", "uint16", "acc32", "uint32", "sunssf", "enum16", "bitfield16", "string"
]


@dataclass(frozen=True)
class PointDef:
    name: str
    offset: int  # registers after the model's L register
    type: PointType
    sf: str | None = None  # name of the scale-factor point
    size: int = 1  # registers (strings)
    writable: bool = False


def _p(name: str, offset: int, type_: PointType, sf: str | None = None, **kw: object) -> PointDef:
    return PointDef(name, offset, type_, sf, **kw)  # type: ignore[arg-type]


_INVERTER = [
    _p("A", 0, "uint16", "A_SF"),
    _p("A_SF", 4, "sunssf"),
    _p("PhVphA", 8, "uint16", "V_SF"),
    _p("V_SF", 11, "sunssf"),
    _p("W", 12, "int16", "W_SF"),
    _p("W_SF", 13, "sunssf"),
    _p("Hz", 14, "uint16", "Hz_SF"),
    _p("Hz_SF", 15, "sunssf"),
    _p("WH", 22, "acc32", "WH_SF"),
    _p("WH_SF", 24, "sunssf"),
    _p("DCW", 29, "int16", "DCW_SF"),
    _p("DCW_SF", 30, "sunssf"),
    _p("TmpCab", 31, "int16", "Tmp_SF"),
    _p("Tmp_SF", 35, "sunssf"),
    _p("St", 36, "enum16"),
]

MODELS: dict[int, tuple[str, int, list[PointDef]]] = {
    1: (
        "common",
        66,
        [
            _p("Mn", 0, "string", size=16),
            _p("Md", 16, "string", size=16),
            _p("Vr", 40, "string", size=8),
            _p("SN", 48, "string", size=16),
        ],
    ),
    101: ("inverter_1ph", 50, _INVERTER),
    102: ("inverter_split", 50, _INVERTER),
    103: ("inverter_3ph", 50, _INVERTER),
    120: (
        "nameplate",
        26,
        [_p("DERTyp", 0, "enum16"), _p("WRtg", 1, "uint16", "WRtg_SF"), _p("WRtg_SF", 2, "sunssf")],
    ),
    123: (
        "controls",
        24,
        [
            _p("Conn", 2, "enum16", writable=True),
            _p("WMaxLimPct", 3, "uint16", "WMaxLimPct_SF", writable=True),
            _p("WMaxLimPct_WinTms", 4, "uint16", writable=True),
            _p("WMaxLimPct_RvrtTms", 5, "uint16", writable=True),
            _p("WMaxLim_Ena", 7, "enum16", writable=True),
            _p("WMaxLimPct_SF", 21, "sunssf"),
        ],
    ),
    124: (
        "storage",
        24,
        [
            _p("WChaMax", 0, "uint16", "WChaMax_SF"),
            _p("StorCtl_Mod", 3, "bitfield16", writable=True),
            _p("MinRsvPct", 5, "uint16", "MinRsvPct_SF"),
            _p("ChaState", 6, "uint16", "ChaState_SF"),
            _p("ChaSt", 9, "enum16"),
            _p("OutWRte", 10, "int16", "InOutWRte_SF", writable=True),
            _p("InWRte", 11, "int16", "InOutWRte_SF", writable=True),
            _p("InOutWRte_WinTms", 12, "uint16", writable=True),
            _p("InOutWRte_RvrtTms", 13, "uint16", writable=True),
            _p("WChaMax_SF", 16, "sunssf"),
            _p("MinRsvPct_SF", 19, "sunssf"),
            _p("ChaState_SF", 20, "sunssf"),
            _p("InOutWRte_SF", 23, "sunssf"),
        ],
    ),
}

_NOT_IMPL = {"int16": 0x8000, "sunssf": 0x8000, "uint16": 0xFFFF, "enum16": 0xFFFF}
_NOT_IMPL |= {"bitfield16": 0xFFFF}


def _signed(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def decode_point(p: PointDef, regs: Sequence[int]) -> int | str | None:
    """Raw value of one point from the model's registers (offset 0 = first after ``L``)."""
    r = regs[p.offset : p.offset + (p.size if p.type == "string" else 2)]
    if p.type == "string":
        raw = b"".join(v.to_bytes(2, "big") for v in r[: p.size])
        text = raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()
        return text or None
    if p.type in ("acc32", "uint32"):
        value = (r[0] << 16) | r[1]
        return None if value == (0 if p.type == "acc32" else 0xFFFFFFFF) else value
    raw = r[0]
    if raw == _NOT_IMPL.get(p.type):
        return None
    return _signed(raw) if p.type in ("int16", "sunssf") else raw


def encode_point(p: PointDef, value: int | str | None) -> list[int]:
    """Registers for one raw value (None: "not implemented")."""
    if p.type == "string":
        data = str(value or "").encode("ascii")[: 2 * p.size].ljust(2 * p.size, b"\0")
        return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if p.type in ("acc32", "uint32"):
        v = (0 if p.type == "acc32" else 0xFFFFFFFF) if value is None else int(value)
        return [(v >> 16) & 0xFFFF, v & 0xFFFF]
    if value is None:
        return [_NOT_IMPL[p.type]]
    return [int(value) & 0xFFFF]


@dataclass(frozen=True)
class ModelBlock:
    """One model found by discovery: its id and where its points start (after ``ID, L``)."""

    model_id: int
    address: int  # register of the first point
    length: int

    @property
    def name(self) -> str:
        return MODELS.get(self.model_id, (f"model_{self.model_id}", 0, []))[0]


class Model:
    """Decoded values of one model block: raw values, scaled values, register addresses."""

    def __init__(self, block: ModelBlock, regs: Sequence[int]) -> None:
        self.block = block
        self.points = {p.name: p for p in MODELS.get(block.model_id, ("", 0, []))[2]}
        self.raw: dict[str, int | str | None] = {
            name: decode_point(p, regs) for name, p in self.points.items() if p.offset < len(regs)
        }

    def value(self, name: str) -> float | None:
        """Scaled value (``raw × 10^SF``), None when not implemented or its SF is missing."""
        p = self.points[name]
        raw = self.raw.get(name)
        if raw is None or isinstance(raw, str):
            return None
        if p.sf is None:
            return float(raw)
        sf = self.raw.get(p.sf)
        if sf is None or not isinstance(sf, int) or not -10 <= sf <= 10:
            return None
        return float(raw) * 10.0**sf

    def address(self, name: str) -> int:
        return self.block.address + self.points[name].offset

    def encode_scaled(self, name: str, value: float) -> int:
        """Raw register value for a scaled value (rounded; clipped to the point's type)."""
        p = self.points[name]
        sf = self.raw.get(p.sf) if p.sf else 0
        raw = round(value / 10.0 ** int(sf or 0))
        lo, hi = (-32767, 32767) if p.type == "int16" else (0, 65534)
        return min(max(raw, lo), hi) & 0xFFFF


def parse_chain(base: int, regs: Sequence[int]) -> list[ModelBlock]:
    """Model blocks of a SunSpec chain read from ``base`` (``regs`` starts with the marker)."""
    if tuple(regs[:2]) != SUNS:
        raise ValueError(f"no SunS marker at {base}")
    out: list[ModelBlock] = []
    i = 2
    while i + 1 < len(regs):
        model_id, length = regs[i], regs[i + 1]
        if model_id == END_ID:
            return out
        out.append(ModelBlock(model_id, base + i + 2, length))
        i += 2 + length
    raise ValueError("SunSpec chain runs past what was read (no end model)")


def build_image(models: Mapping[int, Mapping[str, int | str | None]]) -> list[int]:
    """Registers from 40000 of a SunSpec device with the given models and raw point values
    (tests, the demo's simulated inverter/battery)."""
    regs = list(SUNS)
    for model_id, values in models.items():
        _name, length, points = MODELS[model_id]
        block = [0] * length
        for p in points:
            if p.type != "string" and p.type not in ("acc32",):
                block[p.offset] = _NOT_IMPL.get(p.type, 0)
        for name, value in values.items():
            p = next(q for q in points if q.name == name)
            enc = encode_point(p, value)
            block[p.offset : p.offset + len(enc)] = enc
        regs += [model_id, length, *block]
    return regs + [END_ID, 0]
