"""Playwright for Python driving Debian's Chromium (``/usr/bin/chromium``, ``apt-get install
chromium``; ``make test`` installs it when missing). Playwright's own browser downloads are
never used: ``playwright install`` needs the network.

    with open_page(f"{stack.url}/runs/{run_id}") as page:
        page.get_by_text("RUN_SUCCESS").first.wait_for(timeout=120_000)
        screenshot(page, tmp_path / "run.png")

``new_page()`` is the same page before it navigates anywhere (to watch it with ``watch(page)``
from its first request: console errors, uncaught exceptions, network requests). The README's
pictures (``tools/screenshots.py``) use these helpers too: one copy, in the tests package.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


def chromium_path() -> str:
    path = os.environ.get("NETFLIX_ELT_CHROMIUM", CHROMIUM)
    if not Path(path).exists():
        raise FileNotFoundError(f"no Chromium at {path}: `apt-get install -y chromium` (make test does it)")
    return path


@contextmanager
def new_page(timeout_ms: float = 60_000, viewport: dict | None = None, init_script: str | None = None) -> Iterator:
    """A headless Chromium page in a fresh context, not navigated yet. ``init_script`` runs in
    every document before the page's own scripts (e.g. to preset localStorage). Browser,
    context and Playwright's driver are closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=viewport or VIEWPORT)
            if init_script:
                context.add_init_script(init_script)
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            yield page
            context.close()
        finally:
            browser.close()


@contextmanager
def open_page(url: str, timeout_ms: float = 60_000, viewport: dict | None = None,
              init_script: str | None = None) -> Iterator:
    """A headless Chromium page that has loaded ``url`` (DOM content loaded)."""
    with new_page(timeout_ms, viewport, init_script) as page:
        page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
        yield page


@dataclass
class PageLog:
    """What a page did while watched: every console message, the errors among them (console
    errors and uncaught exceptions), every URL it requested."""

    console_messages: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def watch(page) -> PageLog:
    """Record the page's console, uncaught exceptions and requests from now on (call it
    before ``page.goto``)."""
    log = PageLog()

    def on_console(message) -> None:
        text = f"{message.type}: {message.text}"
        log.console_messages.append(text)
        if message.type == "error":
            log.console_errors.append(text)

    def on_error(error) -> None:
        text = f"Uncaught {error}"
        log.console_messages.append(text)
        log.console_errors.append(text)

    page.on("console", on_console)
    page.on("pageerror", on_error)
    page.on("request", lambda request: log.requests.append(request.url))
    return log


def dismiss_dagster_dialogs(page, timeout_ms: float = 5_000) -> None:
    """Close the "Join the Dagster community" dialog a fresh instance shows over every page
    (its "Skip" button, as a user would), if it appears."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=timeout_ms)
    except Exception:  # playwright's TimeoutError: no dialog this time
        return
    skip.click()
    skip.wait_for(state="hidden", timeout=timeout_ms)


def screenshot(page, path: Path, full_page: bool = False) -> Path:
    """Save a PNG of the page; also copy it into ``$NETFLIX_ELT_SCREENSHOT_DIR`` when set."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    extra = os.environ.get("NETFLIX_ELT_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(extra) / path.name)
    return path
