"""Scenario and catalogue schema (pydantic) and their validators; the files are read by
:mod:`adapters.config_io`."""

from ems.config.schema import Catalogue, Scenario, parse_catalogue, parse_scenario

__all__ = ["Catalogue", "Scenario", "parse_catalogue", "parse_scenario"]
