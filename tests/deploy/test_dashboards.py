"""The committed Grafana dashboards are what the builder makes from the registry."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from ems.techs import registry

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT / "deploy" / "grafana" / "build_dashboards.py"


def _builder():
    spec = importlib.util.spec_from_file_location("build_dashboards", BUILDER)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_dashboards_equal_the_builders_output():
    built = _builder().boards()
    committed = {p.name: p.read_text() for p in (BUILDER.parent / "dashboards").glob("*.json")}
    assert sorted(built) == sorted(committed)
    for name, text in built.items():
        assert committed[name] == text, f"{name}: run python {BUILDER.relative_to(ROOT)}"


def test_every_declared_panel_and_device_kind_is_on_the_hub_board():
    """Each technology's declared hub panels appear with their series, and every controllable
    kind with a power setpoint is on the board (its own panel or the shared one)."""
    hub = json.loads(_builder().boards()["hub-detail.json"])
    queries = {p["title"]: [t["query"] for t in p["targets"]] for p in hub["panels"]}
    for r in registry.REGISTRY:
        for p in r.tech.panels:
            if p.board == "hub":
                assert p.title in queries
                kind = f"\"kind\" = '{r.device_kind}'"
                assert sum(kind in q for q in queries[p.title]) >= len(p.series), p.title
    board = "\n".join(q for qs in queries.values() for q in qs)
    for kind in registry.controllable_device_kinds():
        if "p_kw" in registry.setpoint_models()[kind].model_fields:
            assert f"'{kind}'" in board, kind
