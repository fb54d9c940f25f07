"""Configuration files in: scenario and catalogue YAML, SITE.yaml, sizes.yaml, the hourly profile.

The edge of the configuration: this module reads the files (following a scenario's
``extends``), turns a missing file or bad YAML into one :class:`~ems.errors.ConfigError` line
naming file and field, and hands the parsed mappings to the pure validators of the core
(:mod:`ems.config.schema`, :mod:`ems.operation.site`). Design mode (``design.study``), operation
mode (``ems run``) and the benchmarks load their inputs through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from adapters.yaml_load import safe_load
from ems.config.schema import (
    DEFAULT_CATALOGUE,
    Catalogue,
    Scenario,
    check_references,
    merge_extends,
    parse_catalogue,
    parse_scenario,
)
from ems.config.sizes import SizesFile, check_known
from ems.errors import ConfigError
from ems.operation.assembly import (
    OperationSetup,
    operation_setup,
    sale_can_exceed_purchase,
    site_forecaster,
)
from ems.operation.forecast import Forecaster
from ems.operation.site import SiteConfig, parse_site


# --------------------------------------------------------------------------- scenario, catalogue
def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; missing file or bad YAML → ConfigError."""
    if not path.is_file():
        raise ConfigError(str(path), "(file)", "file not found")
    try:
        raw = safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise ConfigError(
            str(path), where, f"invalid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), "(top level)", "expected a mapping of fields")
    return raw


def read_scenario_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A scenario's mapping; ``extends: base.yaml`` merges mappings key by key, lists replaced."""
    raw = read_yaml(path)
    base = raw.get("extends")
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(str(path), "extends", "expected a file path")
    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise ConfigError(str(path), "extends", f"base scenario not found: {base_path}")
    if base_path in seen:
        raise ConfigError(str(path), "extends", f"circular extends via {base_path}")
    merged = merge_extends(read_scenario_yaml(base_path, seen + (path.resolve(),)), raw)
    merged["extends"] = None
    return merged


def load_catalogue(
    path: Path | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    overrides_file: str = "<scenario>",
) -> Catalogue:
    """Load a catalogue YAML (default: the shipped one) and apply per-entry overrides."""
    path = path or DEFAULT_CATALOGUE
    return parse_catalogue(read_yaml(path), str(path), overrides, overrides_file)


def load_scenario(path: str | Path) -> tuple[Scenario, Catalogue]:
    """Load and validate a scenario and its catalogue; check cross references."""
    path = Path(path)
    scenario = parse_scenario(read_scenario_yaml(path), str(path), path.resolve().parent)
    cat_path = scenario.path(scenario.catalogue) if scenario.catalogue else None
    if cat_path is not None and not cat_path.is_file():
        raise ConfigError(str(path), "catalogue", f"file not found: {cat_path}")
    catalogue = load_catalogue(cat_path, scenario.catalogue_overrides, str(path))
    check_references(scenario, catalogue, str(path))
    return scenario, catalogue


# --------------------------------------------------------------------------- operation
def _read_site_yaml(path: Path) -> Any:
    try:
        return safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(str(path), where, f"not valid YAML: {problem}") from None


def load_site(path: str | Path) -> SiteConfig:
    """Read and validate SITE.yaml; raise :class:`ConfigError` naming file and field."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(str(path), "(file)", "file not found")
    site = parse_site(_read_site_yaml(path), str(path), path.resolve())
    for fld in ("scenario", "sizes"):
        if not site.resolve(getattr(site, fld)).exists():
            raise ConfigError(str(path), fld, f"file {site.resolve(getattr(site, fld))} not found")
    return site


def read_site_sizes(
    site: SiteConfig, scenario: Scenario, catalogue: Catalogue
) -> dict[str, dict[str, Any]]:
    """The installed sizes of a site: its sizes.yaml with its ``sizes_override`` merged, each
    entry and quantity checked against the technologies of the scenario (an entry no technology
    reads is an error naming the file and ``hub.entry``, never silently ignored)."""
    path = site.resolve(site.sizes)
    parsed = SizesFile.parse(_read_site_yaml(path), str(path))
    check_known(parsed.hubs, scenario, catalogue, str(path), "hubs")
    site_file = str(site.path_) if site.path_ is not None else "SITE.yaml"
    check_known(site.sizes_override, scenario, catalogue, site_file, "sizes_override")
    return parsed.installed(site.sizes_override)


def read_hourly_profile(site: SiteConfig, scenario: Scenario) -> pd.DataFrame:
    """The scenario's hourly profile year (``time.hourly_csv``), which operation forecasts from."""
    if not scenario.time.hourly_csv:
        raise ConfigError(
            str(site.resolve(site.scenario)),
            "time.hourly_csv",
            "operation needs an hourly profile year",
        )
    from design.data import read_series_csv  # the design's checks: numbers, one row per time

    return read_series_csv(scenario.path(scenario.time.hourly_csv), scenario.time.hourly_csv)


def load_operation(site_path: str | Path) -> tuple[SiteConfig, OperationSetup, Forecaster]:
    """Everything ``ems run`` needs from a SITE.yaml: the site, its technologies with the
    installed sizes fixed, and its forecaster."""
    site = load_site(site_path)
    scenario, catalogue = load_scenario(site.resolve(site.scenario))
    fc = site_forecaster(scenario, read_hourly_profile(site, scenario))
    sizes = read_site_sizes(site, scenario, catalogue)
    setup = operation_setup(site, scenario, catalogue, sale_can_exceed_purchase(fc), sizes=sizes)
    return site, setup, fc
