"""Drive a real headless Chromium over the DevTools protocol (no Playwright, no browser download).

``find_chromium()`` returns the Debian ``chromium`` binary, installing the package with apt
when it is missing (tests run as root in CI). ``render_page()`` opens a URL (a local file or a
local server) in a fresh profile with the network features off, waits until the page's JS
settles, records console errors and uncaught exceptions, evaluates a probe expression, and
saves a screenshot (the full page, or the top ``max_height`` pixels of it).

Used by the dashboard test and by ``netflix-elt screenshots``; needs ``websockets``.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

__all__ = ["BrowserError", "PageReport", "find_chromium", "render_page"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    pass


def find_chromium(install: bool = True) -> str:
    """Path of a Chromium binary; ``apt-get install -y chromium`` first if none is found."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    if not install:
        raise BrowserError("no Chromium found (set CHROMIUM or install Debian's chromium package)")
    if not shutil.which("apt-get"):
        raise BrowserError("no Chromium found and no apt-get to install it with")
    env_noninteractive = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env_noninteractive, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], check=True,
                   env=env_noninteractive, capture_output=True)
    found = shutil.which("chromium")
    if not found:
        raise BrowserError("apt-get installed chromium but no chromium binary is on PATH")
    return found


@dataclass
class PageReport:
    url: str
    console_errors: list[str] = field(default_factory=list)  # console.error / Log errors / uncaught exceptions
    console_messages: list[str] = field(default_factory=list)  # everything logged, for diagnosis
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    probe: Any = None  # the value of the probe expression once the page settled
    ready: bool = False  # whether the ready expression became true before the timeout
    screenshot: Path | None = None


class _DevTools:
    def __init__(self, ws_url: str):
        self.ws = connect(ws_url, max_size=None, open_timeout=20)
        self.ids = itertools.count(1)
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds: float) -> None:
        """Collect events for a while."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                return
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        self.ws.close()


def _wait_for_port(profile: Path, proc: subprocess.Popen, timeout: float = 30) -> int:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrowserError(f"chromium exited with {proc.returncode}: {proc.stderr.read().decode(errors='replace')[-2000:]}")
        if port_file.exists():
            text = port_file.read_text().split()
            if text:
                return int(text[0])
        time.sleep(0.1)
    raise BrowserError("chromium did not open its DevTools port")


def _format_console(event: dict) -> tuple[str, str]:
    method, p = event["method"], event["params"]
    if method == "Runtime.consoleAPICalled":
        text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
        return p.get("type", "log"), text
    if method == "Runtime.exceptionThrown":
        d = p["exceptionDetails"]
        return "error", "Uncaught " + d.get("exception", {}).get("description", d.get("text", ""))
    if method == "Log.entryAdded":
        e = p["entry"]
        return e.get("level", "info"), f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip()
    return "", ""


def render_page(
    url: str,
    screenshot: Path | None = None,
    probe: str = "document.readyState",
    ready: str = "document.readyState === 'complete'",
    width: int = 1400,
    height: int = 1000,
    timeout: float = 60,
    settle: float = 1.0,
    chromium: str | None = None,
    max_height: int | None = None,
    before_screenshot: str | None = None,
    init_script: str | None = None,
    clip_height: str | None = None,
) -> PageReport:
    """Load ``url`` in headless Chromium; wait until ``ready`` is true (or ``timeout``), then ``settle`` seconds more.

    The screenshot is the full page (not just the viewport), cut to ``max_height`` CSS pixels
    when given. ``before_screenshot`` is a JS expression evaluated once the page is ready
    (before the settle time), e.g. to click a button; the probe runs after it. ``init_script``
    runs in every new document before the page's own scripts (e.g. to preset localStorage).
    ``clip_height`` is a JS expression giving the screenshot's height in CSS pixels (e.g. to end
    it at a section boundary); ``max_height`` still caps it.
    A single-page app may rewrite the URL on load: any document other than about:blank counts.
    """
    chromium = chromium or find_chromium()
    report = PageReport(url=url)
    # Chromium's helper processes may still write to the profile for a moment after the browser
    # exits; cleanup errors must not turn a finished page into a failure (see _remove_profile).
    with tempfile.TemporaryDirectory(prefix="chromium-profile-", ignore_cleanup_errors=True) as tmp:
        profile = Path(tmp)
        proc = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            port = _wait_for_port(profile, proc)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
                pages = [t for t in json.load(resp) if t.get("type") == "page"]
            if not pages:
                raise BrowserError("chromium has no page target")
            dt = _DevTools(pages[0]["webSocketDebuggerUrl"])
            try:
                for domain in ("Runtime", "Log", "Page", "Network"):
                    dt.send(f"{domain}.enable")
                dt.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
                if init_script:
                    dt.send("Page.addScriptToEvaluateOnNewDocument", {"source": init_script})
                nav = dt.send("Page.navigate", {"url": url})
                if nav.get("errorText"):
                    raise BrowserError(f"cannot open {url}: {nav['errorText']}")
                deadline = time.monotonic() + timeout
                # only the new document counts: not about:blank, which is still there right after navigate
                loaded = "location.href !== 'about:blank' && document.readyState === 'complete'"
                while True:
                    try:
                        if dt.evaluate(f"({loaded}) && Boolean({ready})"):
                            report.ready = True
                            break
                    except BrowserError:
                        pass  # the new document may not exist yet
                    if time.monotonic() > deadline:
                        break  # the caller sees report.ready is False, with the probe to say why
                    dt.pump(0.2)
                if before_screenshot and report.ready:
                    dt.evaluate(before_screenshot)
                dt.pump(settle)
                report.probe = dt.evaluate(probe)
                if screenshot is not None:
                    metrics = dt.send("Page.getLayoutMetrics")
                    size = metrics.get("cssContentSize") or metrics["contentSize"]
                    shot_height = size["height"]
                    if clip_height:
                        shot_height = min(shot_height, max(1, int(dt.evaluate(clip_height) or shot_height)))
                    if max_height is not None:
                        shot_height = min(shot_height, max_height)
                    shot = dt.send("Page.captureScreenshot", {
                        "format": "png", "captureBeyondViewport": True,
                        "clip": {"x": 0, "y": 0, "width": width, "height": shot_height, "scale": 1},
                    }, timeout=60)
                    screenshot = Path(screenshot)
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                    report.screenshot = screenshot
                dt.pump(0.2)
            finally:
                dt.close()
            for event in dt.events:
                if event["method"] == "Network.requestWillBeSent":
                    report.requests.append(event["params"]["request"]["url"])
                    continue
                level, text = _format_console(event)
                if not level:
                    continue
                report.console_messages.append(f"[{level}] {text}")
                if level in ("error", "assert") or event["method"] == "Runtime.exceptionThrown":
                    report.console_errors.append(text)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _remove_profile(profile)
    return report


def _remove_profile(profile: Path, attempts: int = 10) -> None:
    """Delete the profile folder, retrying while Chromium's helpers finish writing to it."""
    for _ in range(attempts):
        shutil.rmtree(profile, ignore_errors=True)
        if not profile.exists():
            return
        time.sleep(0.2)
