"""The layer rules of docs/architecture.md, checked on the source (AST, no import).

``ems/`` is the core: it never imports ``design``/``adapters``, never imports a network, database or
file-format library, and never reads or writes a file itself (the adapters hand it parsed data).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: modules the core must not import (outer layers; network, database, file formats, processes)
FORBIDDEN_IMPORTS = {
    "adapters",
    "design",
    "yaml",
    "sqlite3",
    "socket",
    "paho",
    "requests",
    "urllib",
    "http",
    "influxdb_client",
    "amqtt",
    "subprocess",
    "shutil",
}
#: calls that read or write files (builtin ``open``; pandas/numpy/pathlib readers and writers)
FORBIDDEN_CALLS = {
    "open",
    "read_csv",
    "read_parquet",
    "read_json",
    "read_excel",
    "to_csv",
    "to_parquet",
    "loadtxt",
    "savetxt",
    "read_text",
    "read_bytes",
    "write_text",
    "write_bytes",
    "mkdir",
    "unlink",
}


def core_violations(source: str, name: str) -> list[str]:
    """Imports and calls of ``source`` that break the core's rules, one line each, in line order."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, name)):
        mods: list[str] = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods = [node.module]
        for m in mods:
            if m.split(".")[0] in FORBIDDEN_IMPORTS:
                out.append((node.lineno, f"{name}:{node.lineno}: imports {m}"))
        if isinstance(node, ast.Call):
            f = node.func
            called = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if called in FORBIDDEN_CALLS:
                out.append((node.lineno, f"{name}:{node.lineno}: calls {called}()"))
    return [text for _, text in sorted(out)]


def test_core_has_no_io_and_no_outward_imports() -> None:
    problems: list[str] = []
    files = sorted((ROOT / "ems").rglob("*.py"))
    assert len(files) > 20  # the walk found the core
    for path in files:
        problems += core_violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert not problems, "\n".join(problems)


def test_the_checker_catches_each_kind_of_violation() -> None:
    bad = (
        "import yaml\n"
        "from adapters.config_io import load_scenario\n"
        "import pandas as pd\n"
        "df = pd.read_csv('x.csv')\n"
        "text = open('f').read()\n"
        "from pathlib import Path\n"
        "Path('p').write_text('x')\n"
    )
    found = core_violations(bad, "bad.py")
    assert found == [
        "bad.py:1: imports yaml",
        "bad.py:2: imports adapters.config_io",
        "bad.py:4: calls read_csv()",
        "bad.py:5: calls open()",
        "bad.py:7: calls write_text()",
    ]
    assert core_violations("import numpy as np\nx = np.zeros(3)\n", "ok.py") == []
