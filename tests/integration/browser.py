"""A real headless Chromium driven over the DevTools protocol (websocket on loopback): open a
page, collect what its console logs, take a screenshot. No Selenium, no mocks."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from tests.integration.servers import find_binary


def chromium_binary() -> str | None:
    return find_binary("chromium", "/usr/bin/chromium", "/usr/lib/chromium/chromium")


@dataclass
class PageVisit:
    screenshot_png: bytes
    console: list[dict[str, Any]] = field(default_factory=list)  # errors and warnings
    text: str = ""
    images_loaded: bool = False
    image_count: int = 0


def _wait_port_file(profile: Path, proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_file.is_file() and port_file.read_text().strip():
            return int(port_file.read_text().splitlines()[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        time.sleep(0.1)
    raise RuntimeError("chromium did not open its DevTools port")


def visit(url: str, profile: Path, width: int = 1280, height: int = 1600) -> PageVisit:
    """Load ``url`` in a fresh headless Chromium; return console problems and a screenshot."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (Debian package `chromium`)")
    profile.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _wait_port_file(profile, proc, 30.0)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        ws_url = pages[0]["webSocketDebuggerUrl"]
        with connect(ws_url, max_size=None, open_timeout=10) as ws:
            return _drive(ws, url, width, height)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drive(ws: Any, url: str, width: int, height: int) -> PageVisit:
    next_id = iter(range(1, 10_000))
    console: list[dict[str, Any]] = []
    loaded = False

    def call(method: str, **params: Any) -> dict[str, Any]:
        nonlocal loaded
        i = next(next_id)
        ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            _event(msg)

    def _event(msg: dict[str, Any]) -> None:
        nonlocal loaded
        method = msg.get("method", "")
        p = msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            console.append({"origin": "console", "type": p["type"], "args": p.get("args")})
        elif method == "Runtime.exceptionThrown":
            console.append({"origin": "exception", "details": p.get("exceptionDetails")})
        elif method == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
            console.append({"origin": "log", **p["entry"]})
        elif method == "Page.loadEventFired":
            loaded = True

    call("Runtime.enable")
    call("Log.enable")
    call("Page.enable")
    call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    call("Page.navigate", url=url)
    deadline = time.monotonic() + 30
    while not loaded and time.monotonic() < deadline:
        _event(json.loads(ws.recv(timeout=30)))
    if not loaded:
        raise RuntimeError(f"{url} did not finish loading")

    def js(expr: str) -> Any:
        return call("Runtime.evaluate", expression=expr, returnByValue=True)["result"]["value"]

    text = js("document.body.innerText")
    n_img = js("document.images.length")
    ok = js("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    shot = call("Page.captureScreenshot", format="png")
    return PageVisit(base64.b64decode(shot["data"]), console, text, bool(ok), int(n_img))
