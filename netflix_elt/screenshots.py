"""``netflix-elt screenshots``: the README's pictures, made by the project itself.

Given a NETFLIX_ELT_HOME that ``netflix-elt run`` has fully materialized, this

1. opens ``$NETFLIX_ELT_HOME/dashboard/index.html`` in headless Chromium and saves the top of
   it (headline and first charts) as ``dashboard.png``;
2. starts ``dagster-webserver`` on a free loopback port over the same Dagster instance
   (``$NETFLIX_ELT_HOME/dagster_home``), opens the global asset lineage (every group, from the
   S3 deliveries to the dashboard), waits until the React app has drawn the graph, saves it as
   ``asset-graph.png`` and stops the webserver.

Both go to ``<repo>/docs`` unless ``--out DIR`` says otherwise. Chromium is the Debian
package (see ``netflix_elt.browser``); no browser download, nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from netflix_elt.settings import REPO_ROOT, Settings

DEFAULT_OUT = REPO_ROOT / "docs"
WIDTH = 1400
DASHBOARD_HEIGHT = 1800

# "Global asset lineage" in Dagster 1.13's UI (the Lineage entry of the left navigation): the
# whole asset graph of the deployment, every group. (``/assets`` is the catalogue table.)
LINEAGE_PATH = "/asset-groups"
# The asset groups the picture must show, upstream first.
GROUPS = ("s3", "raw", "staging", "core", "marts", "snapshots", "dashboards")


class ScreenshotError(RuntimeError):
    pass


@dataclass
class Shot:
    name: str
    path: Path
    seconds: float
    size: int
    detail: object = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise ScreenshotError(f"the webserver exited with {proc.returncode} before answering {url}\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    raise ScreenshotError(f"{url} did not answer within {timeout:.0f} s ({last})")


@contextmanager
def dagster_webserver(settings: Settings, port: int | None = None, timeout: float = 180) -> Iterator[str]:
    """``dagster-webserver`` over this home's Dagster instance, on 127.0.0.1; yields its base URL.

    Runs in its own process group so stopping it also stops the code server it spawns.
    """
    from netflix_elt.cli import ensure_dagster_home

    port = port or free_port()
    env = dict(os.environ, DAGSTER_HOME=str(ensure_dagster_home(settings)))
    settings.export_for_dbt(env)
    exe = Path(sys.executable).with_name("dagster-webserver")
    argv = [str(exe) if exe.exists() else "dagster-webserver",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO_ROOT / "workspace.yaml")]
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="netflix-elt-webserver-") as tmp:
        log = Path(tmp) / "webserver.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            wait_for_http(f"{base}/server_info", timeout, proc, log)
            yield base
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen, grace: float = 15) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the group of the process we started (start_new_session)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def shoot_dashboard(html: Path, out: Path, width: int = WIDTH, max_height: int | None = DASHBOARD_HEIGHT,
                    timeout: float = 60) -> Shot:
    """Screenshot the dashboard page once every Plotly chart has drawn its SVG."""
    from netflix_elt.browser import render_page

    html = Path(html)
    if not html.is_file():
        raise ScreenshotError(f"no dashboard at {html}: run `netflix-elt run` first")
    started = time.monotonic()
    report = render_page(
        html.resolve().as_uri(),
        screenshot=out,
        probe="document.querySelectorAll('.plot-container svg.main-svg').length",
        # every chart card has a drawn plot (pages without chart cards: the document alone)
        ready="""Array.from(document.querySelectorAll('[data-chart]')).every(card =>
                 card.querySelectorAll('.plot-container svg.main-svg').length > 0)""",
        width=width,
        height=min(max_height or 1000, 1000),
        max_height=max_height,
        # end the picture below the last chart card that fits whole, not through the middle of one
        clip_height=None if max_height is None else f"""(() => {{
            const bottoms = Array.from(document.querySelectorAll('[data-chart]'))
                .map(card => card.getBoundingClientRect().bottom + window.scrollY)
                .filter(bottom => bottom + 16 <= {max_height});
            return bottoms.length ? Math.ceil(Math.max(...bottoms) + 16) : {max_height};
        }})()""",
        timeout=timeout,
    )
    if not report.ready:
        raise ScreenshotError(f"the dashboard did not finish drawing within {timeout:.0f} s (probe: {report.probe})")
    return Shot("dashboard", out, time.monotonic() - started, out.stat().st_size, report.probe)


def asset_groups(base_url: str, timeout: float = 120) -> dict[str, int]:
    """Asset count per group, asked of the running webserver over GraphQL (once its code location has loaded)."""
    query = json.dumps({"query": "{ assetNodes { assetKey { path } groupName } }"}).encode()
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(base_url.rstrip("/") + "/graphql", data=query,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                nodes = (json.load(resp).get("data") or {}).get("assetNodes") or []
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if time.monotonic() > deadline:
                raise ScreenshotError(f"{base_url}/graphql did not list the assets: {exc}") from exc
            nodes = []
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(1)
    groups: dict[str, int] = {}
    for node in nodes:
        groups[node["groupName"]] = groups.get(node["groupName"], 0) + 1
    return groups


# A fresh browser profile: no "Join the Dagster community" dialog (the UI's own "seen" flag),
# left navigation collapsed, the default left-to-right layout.
_UI_PREFERENCES = """try {
    localStorage.setItem('communityNux', JSON.stringify('1'));
    localStorage.setItem('dagster-nav-collapsed', 'true');
    localStorage.setItem('asset-graph-direction', JSON.stringify('horizontal'));
} catch (e) {}"""

# What the graph looks like right now: asset nodes and group boxes drawn (the UI draws only what
# is in view), and where the zoomed-to-fit graph sits on the page.
_GRAPH_STATE = """(() => {
    const objects = Array.from(document.querySelectorAll('svg foreignObject'));
    const assets = objects.filter(e => !e.classList.contains('group') && e.textContent.trim());
    const groups = objects.filter(e => e.classList.contains('group')).map(e => e.textContent.trim());
    const svg = objects.length ? objects[0].ownerSVGElement : null;
    let viewport = svg;  // the graph pane: the first ancestor that clips the (zoomable) svg
    while (viewport && viewport.parentElement && getComputedStyle(viewport).overflow !== 'hidden') viewport = viewport.parentElement;
    const graph = svg ? svg.getBoundingClientRect() : null;
    const pane = viewport ? viewport.getBoundingClientRect() : null;
    const boxes = assets.map(e => e.getBoundingClientRect());
    return {
        href: location.href,
        assets: assets.length,
        groups: groups,
        collapsed: document.querySelectorAll('[class*=CollapsedGroupNode_collapsedGroupNodeBox]').length,
        // nodes still without a status colour (the UI fetches the assets' live data in batches)
        unknown: assets.filter(e => /--minimal-bg:\s*var\(--color-background-light\)/.test(e.innerHTML)).length,
        sidebar: Boolean(document.querySelector('input[placeholder^="Jump to"]')),
        graph: graph && {top: graph.top, height: graph.height, left: graph.left, width: graph.width},
        pane: pane && {top: pane.top, height: pane.height, left: pane.left, width: pane.width},
        nodes: boxes.length ? {top: Math.min(...boxes.map(b => b.top)), bottom: Math.max(...boxes.map(b => b.bottom))} : null,
        dialog: Boolean(document.querySelector('[role=dialog]')),
    };
})()"""

# Big graphs open with every group collapsed, the asset-group sidebar open, zoomed to fit the
# pane's width. Hide the sidebar, then expand all groups (the UI's Alt+E): the layout changes, so
# the UI zooms the expanded graph to fit the now full-width pane. Resolves once all assets are drawn.
_EXPAND_FULL_WIDTH = """(async () => {
    const state = () => %(state)s;
    const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
    const until = async (test, ms) => { const end = Date.now() + ms; while (!test() && Date.now() < end) await sleep(100); return test(); };
    const altE = () => window.dispatchEvent(new KeyboardEvent('keydown', {code: 'KeyE', key: 'e', altKey: true, bubbles: true}));
    const jump = document.querySelector('input[placeholder^="Jump to"]');
    const row = jump && jump.closest('div[style*="grid"]');
    const hide = (row && row.querySelector('button'))
        || Array.from(document.querySelectorAll('button')).find(b => b.innerHTML.includes('panel_show_right'));
    if (hide) { hide.click(); await until(() => !state().sidebar, 5000); }
    if (state().collapsed === 0) { altE(); await until(() => state().collapsed > 0, 10000); }  // small graphs open expanded
    altE();
    await until(() => state().collapsed === 0 && state().assets >= %(total)d, 20000);
    await until(() => state().unknown === 0, 30000);  // then their status colours (or give up: never materialized)
    await sleep(500);
    return state();
})()"""


def shoot_asset_graph(base_url: str, out: Path, width: int = WIDTH, timeout: float = 120,
                      max_height: int = 4000) -> Shot:
    """Screenshot the global asset lineage, all groups expanded, once every asset node is drawn.

    Two page loads: the UI zooms the graph to fit the pane's *width*, so a first load in a tall
    viewport measures how tall the fitted graph is, and the second uses a viewport just tall
    enough to show all of it.
    """
    from netflix_elt.browser import render_page

    started = time.monotonic()
    groups = asset_groups(base_url)
    if not groups:
        raise ScreenshotError(f"{base_url} serves no assets (did the code location load?)")
    missing = [g for g in GROUPS if g not in groups]
    if missing:
        raise ScreenshotError(f"asset groups {missing} are not in the deployment (it has {sorted(groups)})")
    total = sum(groups.values())
    url = base_url.rstrip("/") + LINEAGE_PATH
    common = dict(
        width=width, timeout=timeout, init_script=_UI_PREFERENCES, settle=1.0, probe=_GRAPH_STATE,
        ready=f"(() => {{ const s = {_GRAPH_STATE}; return s.groups.length + s.assets > 0 && s.graph !== null && !s.dialog; }})()",
        before_screenshot=_EXPAND_FULL_WIDTH % {"state": _GRAPH_STATE, "total": total},
    )

    def complete(state: dict | None, height: int) -> bool:
        return bool(state and state["assets"] >= total and state["collapsed"] == 0 and state["nodes"]
                    and state["nodes"]["top"] >= 0 and state["nodes"]["bottom"] <= height)

    # 1. measure, in a viewport tall enough for any graph of this width
    first = render_page(url, height=max_height, **common)
    if not first.ready or not complete(first.probe, max_height):
        raise ScreenshotError(f"the asset graph did not show all {total} assets in {len(groups)} groups "
                              f"within {timeout:.0f} s (probe: {first.probe})")
    graph, pane = first.probe["graph"], first.probe["pane"]
    # the graph is centred in its pane, under the pane's floating search bar (~50 px): leave room
    margin = 70
    height = max(800, min(int(pane["top"] + graph["height"] + 2 * margin), max_height))

    # 2. shoot
    second = render_page(url, screenshot=out, height=height, max_height=height, **common)
    if not second.ready or not complete(second.probe, height):
        raise ScreenshotError(f"the asset graph did not show all {total} assets in {len(groups)} groups "
                              f"in a {width}x{height} viewport within {timeout:.0f} s (probe: {second.probe})")
    if second.probe["unknown"]:
        print(f"note: {second.probe['unknown']} of {total} assets show no status in the graph "
              "(never materialized? run `netflix-elt run` first)", file=sys.stderr)
    return Shot("asset graph", out, time.monotonic() - started, out.stat().st_size,
                {"url": url, "viewport": [width, height], "assets": total, "groups": groups})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netflix-elt screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--port", type=int, default=None, help="webserver port (default: a free one)")
    parser.add_argument("--only", choices=("dashboard", "asset-graph"), help="make just one of the two")
    args = parser.parse_args(argv)
    from netflix_elt.browser import BrowserError

    settings = Settings.from_env()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    shots: list[Shot] = []
    try:
        if args.only in (None, "dashboard"):
            shots.append(shoot_dashboard(settings.dashboard_dir / "index.html", out / "dashboard.png"))
        if args.only in (None, "asset-graph"):
            with dagster_webserver(settings, port=args.port) as base:
                shots.append(shoot_asset_graph(base, out / "asset-graph.png"))
    except (ScreenshotError, BrowserError) as exc:
        print(f"netflix-elt screenshots: {exc}", file=sys.stderr)
        return 1
    for shot in shots:
        print(f"{shot.name}: {shot.path} ({shot.size / 1024:.0f} KiB, {shot.seconds:.1f} s)")
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
