"""SWEEP.yaml: a base scenario and axes, expanded into variants (each one full design study).

A sweep file names a base scenario and three kinds of axes::

    base: virtual_hp.yaml              # relative to the sweep file
    kpi: annualised_cost_eur_per_y     # tornado and Monte Carlo KPI (a design KPI key)
    grid:                              # Cartesian product of these axes
      - alpha: [0, 0.25, 0.5, 0.75, 1] # weighted objective (28)
      - co2_price_eur_per_t: [0, 100]  # mixed objective (27)
      - field: prices.incentive_eur_per_mwh
        values: [80, 118]
      - field: catalogue.battery_5kwh.capex_eur_per_module
        pct: [-20, 20]                 # ±% of the base value
      - members:                       # hubs leaving or joining
          - {label: all}
          - {label: without hub4, leave: [hub4]}
          - {label: with hub5, join: [{copy: hub3, id: hub5}]}
    sensitivity:                       # one axis at a time around the base (tornado)
      - {field: prices.incentive_eur_per_mwh, pct: [-30, 30]}
    monte_carlo: {samples: 20, seed: 7, level_sigma: 0.15, monthly_sigma: 0.05}

Dotted paths address any scenario field: list items by id, name or type (``hubs[hub1].battery
.max_modules``, ``hubs[hub1].pv[pv_mono].max_kwp``, or ``hubs.hub1.battery.max_modules``, which
needs no quotes in YAML flow style) or by index; ``catalogue.<entry>.<field>``
writes a catalogue override (its base value comes from the scenario's catalogue).

Every variant is a plain scenario mapping (``extends`` resolved, file references absolute) plus
an optional price-path spec; :func:`variant_hash` is the content hash the cache is keyed by.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adapters.config_io import load_catalogue, read_scenario_yaml, read_yaml
from ems.config.schema import DEFAULT_CATALOGUE, Scenario, validation_to_config_error
from ems.errors import ConfigError

#: bump when what a variant computes changes in a way the scenario content does not show
CACHE_VERSION = 1

#: scenario fields that name files (relative to the scenario's folder)
FILE_FIELDS = (("time", "hourly_csv"), ("time", "typical_days_csv"), ("catalogue",))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberChange(_Strict):
    """One option of a members axis: hubs that leave and hubs that join (a full hub spec, or
    ``copy: <hub id>`` plus the fields that differ, ``id`` at least)."""

    label: str
    leave: list[str] = []
    join: list[dict[str, Any]] = []


class Axis(_Strict):
    """One axis: exactly one of ``alpha``, ``co2_price_eur_per_t``, ``field`` (with ``values``
    or ``pct``) or ``members``."""

    alpha: list[float] | None = None
    co2_price_eur_per_t: list[float] | None = None
    field: str | None = None
    values: list[Any] | None = None
    pct: list[float] | None = None
    members: list[MemberChange] | None = None
    label: str | None = Field(None, description="column name in the results (default: derived)")

    @model_validator(mode="after")
    def _one_kind(self) -> Axis:
        kinds = [
            k
            for k in ("alpha", "co2_price_eur_per_t", "field", "members")
            if getattr(self, k) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of alpha, co2_price_eur_per_t, field (with values or pct), members"
            )
        if self.field is not None and (self.values is None) == (self.pct is None):
            raise ValueError(f"{self.field}: give values or pct (not both)")
        if self.field is None and (self.values is not None or self.pct is not None):
            raise ValueError("values and pct go with field")
        if self.alpha and any(not 0 <= a <= 1 for a in self.alpha):
            raise ValueError("alpha: every value must be within [0, 1]")
        if self.co2_price_eur_per_t and any(p < 0 for p in self.co2_price_eur_per_t):
            raise ValueError("co2_price_eur_per_t: prices must be ≥ 0")
        if self.pct and any(p <= -100 for p in self.pct):
            raise ValueError(f"{self.field}: pct must be above -100")
        for kind in kinds:
            if len(getattr(self, kind)) == 0:
                raise ValueError(f"{kind}: empty (give at least one value)")
        return self

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.alpha is not None:
            return "alpha"
        if self.co2_price_eur_per_t is not None:
            return "co2_price_eur_per_t"
        if self.members is not None:
            return "members"
        return f"{self.field}{' %' if self.pct is not None else ''}"


class MonteCarlo(_Strict):
    """Price paths: a lognormal level shock for the year plus a monthly geometric random walk,
    for the purchase and the sale price (correlated); median path = the base prices."""

    samples: int = Field(ge=1, le=100000)
    seed: int = 0
    level_sigma: float = Field(0.15, ge=0, le=2, description="σ of the log annual level")
    monthly_sigma: float = Field(0.05, ge=0, le=1, description="σ of the monthly log step")
    sale_correlation: float = Field(
        0.8, ge=-1, le=1, description="between purchase and sale shocks"
    )


class SweepFile(_Strict):
    name: str | None = None
    base: str
    kpi: str = "annualised_cost_eur_per_y"
    grid: list[Axis] = []
    sensitivity: list[Axis] = []
    monte_carlo: MonteCarlo | None = None

    @model_validator(mode="after")
    def _something(self) -> SweepFile:
        if not (self.grid or self.sensitivity or self.monte_carlo):
            raise ValueError("give at least one of grid, sensitivity, monte_carlo")
        objective_axes = [a for a in self.grid if a.alpha or a.co2_price_eur_per_t]
        if len(objective_axes) > 1:
            raise ValueError("grid: alpha and co2_price_eur_per_t both set the objective")
        names = [a.name for a in self.grid]
        if len(set(names)) != len(names):
            raise ValueError(f"grid: an axis is given twice ({names})")
        return self


@dataclass
class Variant:
    """One expanded variant: the scenario mapping, the axis values that made it, its group
    (``grid``, ``base``, ``sensitivity`` or ``monte_carlo``) and its content hash."""

    index: int
    group: str
    label: str
    axes: dict[str, Any]
    scenario: dict[str, Any]
    price_path: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)  # bundle name → absolute path
    hash: str = ""


@dataclass
class Sweep:
    name: str
    file: Path
    spec: SweepFile
    base_path: Path
    variants: list[Variant]


# --------------------------------------------------------------------------- dotted paths
_PATH = re.compile(r"^[^.\[\]]+(\[[^\]]+\])*(\.[^.\[\]]+(\[[^\]]+\])*)*$")
_SEGMENT = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def _split_path(path: str) -> list[str | tuple[str, str]]:
    """``hubs[hub1].pv[pv_mono].max_kwp`` → ['hubs', ('[', 'hub1'), 'pv', ('[', 'pv_mono'), ...]."""
    if not _PATH.match(path):
        raise ValueError("expected a dotted path such as hubs[hub1].battery.max_modules")
    return [name if name else ("[", key) for name, key in _SEGMENT.findall(path)]


def _list_item(items: list[Any], key: str) -> Any:
    for item in items:
        if isinstance(item, dict) and key in (item.get("id"), item.get("name"), item.get("type")):
            return item
    if key.lstrip("-").isdigit() and -len(items) <= int(key) < len(items):
        return items[int(key)]
    raise KeyError(f"no item {key!r}")


def get_path(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for seg in _split_path(path):
        if isinstance(seg, tuple) or isinstance(node, list):
            if not isinstance(node, list):
                raise KeyError("not a list")
            node = _list_item(node, seg[1] if isinstance(seg, tuple) else seg)
        else:
            if not isinstance(node, dict) or seg not in node:
                raise KeyError(f"no field {seg!r}")
            node = node[seg]
    return node


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set a field, creating missing mappings on the way (a field the base leaves at its
    default); list items must exist."""
    segs = _split_path(path)
    node: Any = raw
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if isinstance(seg, tuple) or isinstance(node, list):
            if not isinstance(node, list):
                raise KeyError("not a list")
            item = _list_item(node, seg[1] if isinstance(seg, tuple) else seg)
            if last:
                node[node.index(item)] = value
            node = item
        else:
            if not isinstance(node, dict):
                raise KeyError(f"{seg!r}: parent is not a mapping")
            if last:
                node[seg] = value
            else:
                if node.get(seg) is None:
                    node[seg] = [] if isinstance(segs[i + 1], tuple) else {}
                node = node[seg]


def _catalogue_path(path: str) -> tuple[str, str] | None:
    if not path.startswith("catalogue."):
        return None
    parts = path.split(".")
    if len(parts) != 3:
        raise ValueError("catalogue paths are catalogue.<entry>.<field>")
    return parts[1], parts[2]


# --------------------------------------------------------------------------- loading
def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file and expand it into variants (hashes computed)."""
    path = Path(path)
    raw = read_yaml(path)
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as exc:
        raise validation_to_config_error(str(path), exc, raw) from None
    base_path = (path.parent / spec.base).resolve()
    if not base_path.is_file():
        raise ConfigError(str(path), "base", f"base scenario not found: {base_path}")
    base_raw = read_scenario_yaml(base_path)
    base_raw.pop("extends", None)
    _absolute_files(base_raw, base_path.parent)
    base_scn = _validate(base_raw, str(base_path))
    catalogue = load_catalogue(
        Path(base_scn.catalogue) if base_scn.catalogue else None,
        base_scn.catalogue_overrides,
        str(base_path),
    ).entries
    variants = expand(spec, base_raw, catalogue, str(path))
    for v in variants:
        v.files = collect_files(v.scenario)
        v.hash = variant_hash(v)
    return Sweep(spec.name or path.stem, path, spec, base_path, variants)


def _validate(raw: dict[str, Any], file: str) -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise validation_to_config_error(file, exc, raw) from None


def _absolute_files(raw: dict[str, Any], folder: Path) -> None:
    for fld in FILE_FIELDS:
        node = raw
        for key in fld[:-1]:
            node = node.get(key) or {}
        value = node.get(fld[-1]) if isinstance(node, dict) else None
        if isinstance(value, str) and not Path(value).is_absolute():
            node[fld[-1]] = str((folder / value).resolve())


def collect_files(raw: dict[str, Any]) -> dict[str, str]:
    """The files a scenario reads, by their absolute path (keys are the field paths)."""
    out: dict[str, str] = {}
    for fld in FILE_FIELDS:
        node: Any = raw
        for key in fld:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            out[".".join(fld)] = node
    return out


_FILE_DIGESTS: dict[tuple[str, float, int], str] = {}


def file_digest(path: str) -> str:
    p = Path(path)
    st = p.stat()
    key = (str(p), st.st_mtime, st.st_size)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = hashlib.sha256(p.read_bytes()).hexdigest()
    return _FILE_DIGESTS[key]


_CODE: list[str] = []


def code_fingerprint() -> str:
    """Digest of the model and study code (``ems/`` and ``design/`` sources and data, not the
    sweep machinery): results computed by other code are not reused."""
    if not _CODE:
        root = Path(__file__).resolve().parents[2]
        h = hashlib.sha256()
        for pkg in ("ems", "design"):
            for f in sorted((root / pkg).rglob("*")):
                rel = f.relative_to(root).as_posix()
                if (
                    f.is_file()
                    and f.suffix in (".py", ".yaml", ".csv")
                    and "/cases/" not in rel
                    and not rel.startswith("design/sweep/")
                    and "__pycache__" not in rel
                ):
                    h.update(rel.encode())
                    h.update(f.read_bytes())
        _CODE.append(h.hexdigest()[:16])
    return _CODE[0]


def variant_hash(v: Variant) -> str:
    """Content hash of what a variant computes: the scenario mapping (file references replaced by
    the files' content hashes; solver threads left out: they change the speed, not the problem),
    the price path, the cache version and the code (:func:`code_fingerprint`)."""
    scn = copy.deepcopy(v.scenario)
    for fld, path in v.files.items():
        keys = fld.split(".")
        node = scn
        for k in keys[:-1]:
            node = node[k]
        try:
            node[keys[-1]] = "sha256:" + file_digest(path)
        except OSError:
            node[keys[-1]] = "missing:" + path
    scn.get("solver", {}).pop("threads", None)
    scn.pop("name", None)
    payload = {
        "v": CACHE_VERSION,
        "code": code_fingerprint(),
        "scenario": scn,
        "price_path": v.price_path,
    }
    if not scn.get("catalogue"):
        payload["default_catalogue"] = file_digest(str(DEFAULT_CATALOGUE))
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- expansion
Op = tuple[str, Any, Any]  # ("set", path, value) | ("members", change, None)


def axis_options(
    axis: Axis, base_raw: dict[str, Any], catalogue: dict[str, Any], file: str, where: str
) -> list[tuple[Any, list[Op]]]:
    """The values of one axis, each with the edits it makes to the base scenario."""
    if axis.alpha is not None:
        return [
            (a, [("set", "objective.kind", "weighted"), ("set", "objective.alpha", float(a))])
            for a in axis.alpha
        ]
    if axis.co2_price_eur_per_t is not None:
        return [
            (
                p,
                [
                    ("set", "objective.kind", "mixed"),
                    ("set", "objective.co2_price_eur_per_t", float(p)),
                ],
            )
            for p in axis.co2_price_eur_per_t
        ]
    if axis.members is not None:
        labels = [m.label for m in axis.members]
        if len(set(labels)) != len(labels):
            raise ConfigError(file, f"{where}.members", "labels must be unique")
        for m in axis.members:
            _check_members(m, base_raw, file, f"{where}.members[{m.label}]")
        return [(m.label, [("members", m, None)]) for m in axis.members]
    assert axis.field is not None
    target = _field_target(axis.field, file, where)
    if axis.values is not None:
        return [(v, [("set", target, v)]) for v in axis.values]
    base_value = _base_value(axis.field, base_raw, catalogue, file, where)
    out = []
    for pct in axis.pct or []:
        value = base_value * (1.0 + pct / 100.0)
        if isinstance(base_value, int) and not isinstance(base_value, bool):
            value = int(round(value))
        out.append((pct, [("set", target, value)]))
    return out


def _field_target(path: str, file: str, where: str) -> str:
    try:
        _split_path(path)
        cat = _catalogue_path(path)
    except ValueError as exc:
        raise ConfigError(file, f"{where}.field", f"{path}: {exc}") from None
    return f"catalogue_overrides.{cat[0]}.{cat[1]}" if cat else path


def _base_value(
    path: str, base_raw: dict[str, Any], catalogue: dict[str, Any], file: str, where: str
) -> float:
    cat = _catalogue_path(path)
    try:
        if cat:
            if cat[0] not in catalogue:
                raise KeyError(f"no catalogue entry {cat[0]!r}")
            value = getattr(catalogue[cat[0]], cat[1], None)
            if value is None:
                raise KeyError(f"entry {cat[0]!r} has no field {cat[1]!r}")
        else:
            value = get_path(base_raw, path)
    except KeyError as exc:
        raise ConfigError(
            file,
            f"{where}.field",
            f"{path}: {exc.args[0]} in the base scenario (pct needs a base value)",
        ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(file, f"{where}.field", f"{path}: pct needs a number, base is {value!r}")
    return value


def _check_members(m: MemberChange, base_raw: dict[str, Any], file: str, where: str) -> None:
    ids = [h.get("id") for h in base_raw.get("hubs", [])]
    for hub in m.leave:
        if hub not in ids:
            raise ConfigError(file, f"{where}.leave", f"no hub {hub!r} in the base (have {ids})")
    for j in m.join:
        if "id" not in j:
            raise ConfigError(file, f"{where}.join", "each joining hub needs an id")
        if "copy" in j and j["copy"] not in ids:
            raise ConfigError(file, f"{where}.join[{j['id']}].copy", f"no hub {j['copy']!r}")


def apply_ops(base_raw: dict[str, Any], ops: list[Op]) -> dict[str, Any]:
    raw = copy.deepcopy(base_raw)
    for kind, a, b in ops:
        if kind == "set":
            set_path(raw, a, b)
        else:
            m: MemberChange = a
            hubs = [h for h in raw["hubs"] if h.get("id") not in m.leave]
            by_id = {h["id"]: h for h in base_raw["hubs"]}
            for j in m.join:
                new = copy.deepcopy(by_id[j["copy"]]) if "copy" in j else {}
                new.update({k: copy.deepcopy(v) for k, v in j.items() if k != "copy"})
                hubs.append(new)
            raw["hubs"] = hubs
    return raw


def expand(
    spec: SweepFile, base_raw: dict[str, Any], catalogue: dict[str, Any], file: str
) -> list[Variant]:
    """Grid axes → Cartesian product; sensitivity axes → one at a time around the base (plus the
    base itself); Monte Carlo → ``samples`` price paths on the base. Identical variants (same
    hash) are kept once per group; the runner computes each hash once."""
    variants: list[Variant] = []

    def add(group: str, axes: dict[str, Any], ops: list[Op], path: dict | None = None) -> None:
        scenario = apply_ops(base_raw, ops)
        label = ", ".join(f"{k}={_short(v)}" for k, v in axes.items()) or group
        scenario["name"] = f"{base_raw.get('name', 'scenario')}__v{len(variants)}"
        variants.append(Variant(len(variants), group, label, axes, scenario, path))

    if spec.grid:
        options = [
            axis_options(a, base_raw, catalogue, file, f"grid[{i}]")
            for i, a in enumerate(spec.grid)
        ]
        names = [a.name for a in spec.grid]
        for combo in itertools.product(*options):
            axes = {n: value for n, (value, _ops) in zip(names, combo, strict=True)}
            add("grid", axes, [op for _v, ops in combo for op in ops])
    if spec.sensitivity:
        add("base", {}, [])
        for i, a in enumerate(spec.sensitivity):
            for value, ops in axis_options(a, base_raw, catalogue, file, f"sensitivity[{i}]"):
                add("sensitivity", {a.name: value}, ops)
    if spec.monte_carlo is not None:
        mc = spec.monte_carlo
        for k in range(mc.samples):
            path = {**mc.model_dump(exclude={"samples"}), "sample": k}
            add("monte_carlo", {"mc_sample": k}, [], path)
    for v in variants:
        try:
            Scenario.model_validate(v.scenario)
        except ValidationError as exc:
            # a misspelt path is the sweep file's error; a bad value is the variant's (reported)
            for e in exc.errors():
                if e["type"] == "extra_forbidden":
                    where = validation_to_config_error(file, exc, v.scenario).field
                    raise ConfigError(
                        file, where, f"not a scenario field (variant {v.label})"
                    ) from None
    return variants


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


Kind = Literal["grid", "base", "sensitivity", "monte_carlo"]
