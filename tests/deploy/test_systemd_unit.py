"""The systemd unit in deploy/ is checked by systemd itself (`systemd-analyze verify`): unknown
keys, bad values or a missing executable are reported. The unit's ExecStart points at the
installed venv (/opt/cer-ems/.venv/bin/ems); here it is pointed at this checkout's `ems`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import in_ci

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy/systemd/cer-ems.service"


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def analyze() -> None:
    if shutil.which("systemd-analyze") is None:
        if in_ci():
            pytest.fail("systemd-analyze not installed (CI=true)")
        pytest.skip("systemd-analyze not installed")


def test_unit_verifies_cleanly(analyze, tmp_path: Path) -> None:
    ems = shutil.which("ems")
    assert ems, "the ems console script is not installed (pip install -e .)"
    text = UNIT.read_text()
    assert "ExecStart=/opt/cer-ems/.venv/bin/ems " in text
    unit = tmp_path / "cer-ems.service"
    unit.write_text(text.replace("/opt/cer-ems/.venv/bin/ems", ems))
    out = _verify(unit)
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    assert (
        settings["Type"] == "notify"
        and settings["Restart"] == "on-failure"
        and int(settings["WatchdogSec"]) > 0
    )


def test_verify_catches_a_typo(analyze, tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is reported."""
    unit = tmp_path / "typo.service"
    unit.write_text(
        UNIT.read_text()
        .replace("WatchdogSec=", "WatchdogSecs=")
        .replace("/opt/cer-ems/.venv/bin/ems", "/bin/true")
    )
    assert "Unknown key" in _verify(unit).stderr
