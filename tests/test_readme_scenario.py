"""The README's annotated scenario validates as written (a user copies it): only the files it
names (``extends:``, ``catalogue:``) are left out, since they are the user's own."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ems.config.schema import parse_scenario

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_scenario_example_validates():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"### Scenario format.*?```yaml\n(.*?)```", text, re.S)
    assert block, "README has no scenario example"
    raw = yaml.safe_load(block.group(1))
    raw.pop("extends")
    raw.pop("catalogue")
    scenario = parse_scenario(raw, "README.md", README.parent)
    assert scenario.community == "virtual" and [h.id for h in scenario.hubs] == ["hub1"]
    assert scenario.incentive is not None and scenario.incentive.region == "Liguria"
