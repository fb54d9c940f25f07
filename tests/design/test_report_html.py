"""report.html is one self-contained file that a real headless Chromium (Debian's `chromium`)
renders: not blank, every image decoded, nothing logged to the console."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from adapters.cli.main import main
from tests.conftest import server_missing
from tests.design.test_cashflow import _scenario
from tests.integration import browser


@pytest.fixture
def report(scenario_factory, tmp_path):
    path = _scenario(scenario_factory, grant={"pct": 40, "town_population": 3_000})
    out = tmp_path / "out"
    assert main(["design", str(path), "--quiet", "--out", str(out)]) == 0
    return out / "report.html"


def test_report_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    # no reference to any other file or to the network: images are data URIs
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page)
    assert page.count('src="data:image/png;base64,') >= 3  # sizes, cash flow, a balance
    for heading in (
        "Sizes",
        "Key figures against the AS-IS case",
        "Cash flows",
        "Incentive per plant",
        "Energy balances",
    ):
        assert f"<h2>{heading}</h2>" in page
    assert "-0<" not in page and "-0.0<" not in page


def test_report_renders_in_headless_chromium(report, tmp_path):
    if browser.chromium_binary() is None:
        server_missing("no chromium (Debian package `chromium`)")
    visit = browser.visit(report.resolve().as_uri(), tmp_path / "chromium-profile")
    assert visit.console == [], visit.console
    assert visit.image_count >= 3 and visit.images_loaded
    assert "PNRR 40 % grant + TIP × (1 − F)" in visit.text
    assert "A_pv_a" in visit.text  # the incentive-per-plant table
    img = Image.open(io.BytesIO(visit.screenshot_png)).convert("RGB")
    assert img.size == (1280, 1600)
    pixels = np.asarray(img.resize((128, 160))).reshape(-1, 3)
    non_white = float((pixels.min(axis=1) < 235).mean())
    assert non_white > 0.05, f"screenshot is nearly blank ({non_white:.1%} non-white)"
    assert len(np.unique(pixels, axis=0)) > 50  # text, tables and a plot, not a flat page


def test_the_browser_check_sees_console_errors(tmp_path):
    # the harness itself: a page with a script error and a missing image must be caught
    if browser.chromium_binary() is None:
        server_missing("no chromium (Debian package `chromium`)")
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><body><p>x</p><img src='missing.png'><script>nope();</script></body></html>"
    )
    visit = browser.visit(bad.as_uri(), tmp_path / "profile")
    sources = {c["origin"] for c in visit.console}
    assert "exception" in sources and "log" in sources, visit.console
    assert not visit.images_loaded
