"""Scenario and catalogue schema (pydantic) and their loaders."""

from ems.config.schema import Catalogue, Scenario, load_catalogue, load_scenario

__all__ = ["Catalogue", "Scenario", "load_catalogue", "load_scenario"]
