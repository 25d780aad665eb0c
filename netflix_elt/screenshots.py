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
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from netflix_elt.settings import REPO_ROOT, Settings

DEFAULT_OUT = REPO_ROOT / "docs"
WIDTH = 1400
DASHBOARD_HEIGHT = 1800
GRAPH_HEIGHT = 1000

# The whole asset graph of the deployment, all groups, as a lineage view (Dagster 1.13's UI).
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
        timeout=timeout,
    )
    if not report.ready:
        raise ScreenshotError(f"the dashboard did not finish drawing within {timeout:.0f} s (probe: {report.probe})")
    return Shot("dashboard", out, time.monotonic() - started, out.stat().st_size, report.probe)


# Node labels of the graph as the UI draws them; how many distinct asset nodes are on screen.
_GRAPH_NODES = "document.querySelectorAll('[data-testid^=\"node-\"], [data-testid=\"asset-node\"]').length"
_GRAPH_PROBE = """(() => {
    const text = document.body.innerText;
    return {
        href: location.href,
        svg: document.querySelectorAll('svg').length,
        nodes: %s,
        groups: %s.filter(g => text.includes(g)),
        loading: Boolean(document.querySelector('[role=progressbar], .bp5-spinner, [class*=Spinner]')),
    };
})()"""


def shoot_asset_graph(base_url: str, out: Path, width: int = WIDTH, height: int = GRAPH_HEIGHT,
                      path: str = LINEAGE_PATH, timeout: float = 180) -> Shot:
    """Screenshot the global asset lineage once the graph has rendered all its groups."""
    import json

    from netflix_elt.browser import render_page

    groups = json.dumps(list(GROUPS))
    probe = _GRAPH_PROBE % (_GRAPH_NODES, groups)
    ready = f"(() => {{ const p = {probe}; return p.nodes > 0 && p.groups.length === {len(GROUPS)} && !p.loading; }})()"
    started = time.monotonic()
    report = render_page(
        base_url.rstrip("/") + path,
        screenshot=out,
        probe=probe,
        ready=ready,
        width=width,
        height=height,
        max_height=height,
        timeout=timeout,
        settle=2.0,  # the graph animates its fit-to-screen
    )
    if not report.ready:
        raise ScreenshotError(f"the asset graph did not render within {timeout:.0f} s (probe: {report.probe})")
    return Shot("asset graph", out, time.monotonic() - started, out.stat().st_size, report.probe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netflix-elt screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--port", type=int, default=None, help="webserver port (default: a free one)")
    parser.add_argument("--only", choices=("dashboard", "asset-graph"), help="make just one of the two")
    args = parser.parse_args(argv)
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
    except ScreenshotError as exc:
        print(f"netflix-elt screenshots: {exc}", file=sys.stderr)
        return 1
    for shot in shots:
        print(f"{shot.name}: {shot.path} ({shot.size / 1024:.0f} KiB, {shot.seconds:.1f} s)")
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
