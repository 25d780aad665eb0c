"""The README's pictures, made from a fresh build (dev tool; not part of the runtime package).

    make screenshots                     # or: .venv/bin/python tools/screenshots.py

1. builds a throwaway home: ``netflix-elt run`` with ``NETFLIX_ELT_HOME`` a temporary folder
   (the shipped data, DuckDB), so the pictures show the code as it is now;
2. starts the UI over that home (``netflix-elt dev`` on a free loopback port, via
   ``netflix_elt_tests.dagster_stack.running_stack``) and checks that the asset graph it
   serves is the code location's (``netflix_elt.definitions.defs``);
3. drives Debian's Chromium (``/usr/bin/chromium``) with Playwright for Python
   (``netflix_elt_tests.playwright_browser``; never ``playwright install``) and saves

   - ``asset-graph.png``: the global asset lineage (``/asset-groups``), every group expanded;
   - ``asset-page.png``: the asset page of ``marts/mart_movie_analysis``;
   - ``run-page.png``: the page of the build's run (its header says *Success*);
   - ``dashboard.png``: the top of ``$NETFLIX_ELT_HOME/dashboard/index.html``;

4. writes ``pictures.json`` next to them: what each picture shows that can go stale; for the
   asset graph, the sorted asset keys and edges it was made from.
   ``netflix_elt_tests/test_pictures.py`` fails when those no longer match the code.

Everything goes to ``<repo>/docs`` unless ``--out DIR``; the home is removed afterwards unless
``--keep-home``. Nothing leaves 127.0.0.1; the stack and the browser are stopped on exit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: `python tools/screenshots.py`
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_OUT = REPO_ROOT / "docs"
RECORD = "pictures.json"
WIDTH = 1400
DASHBOARD_HEIGHT = 1800
PAGE_VIEWPORT = {"width": WIDTH, "height": 1000}

# "Global asset lineage" in Dagster 1.13's UI (the Lineage entry of the left navigation): the
# whole asset graph of the deployment, every group. (``/assets`` is the catalogue table.)
LINEAGE_PATH = "/asset-groups"
# The asset groups the picture must show, upstream first.
GROUPS = ("s3", "raw", "staging", "core", "marts", "snapshots", "dashboards")
# The asset whose page is pictured: a mart, with its checks, columns and lineage.
ASSET_PAGE_KEY = "marts/mart_movie_analysis"


class ScreenshotError(RuntimeError):
    pass


@dataclass
class Shot:
    name: str
    path: Path
    seconds: float
    record: dict


# --- what the pictures show -------------------------------------------------------------------

def asset_graph_record(defs=None) -> dict:
    """The asset graph of the code location as the picture records it: sorted asset keys
    (``a/b`` strings), sorted ``"parent -> child"`` edges, asset count per group."""
    if defs is None:
        from netflix_elt.definitions import defs
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    edges = sorted(f"{parent.to_user_string()} -> {key.to_user_string()}"
                   for key in keys for parent in graph.get(key).parent_keys)
    groups: dict[str, int] = {}
    for key in keys:
        group = graph.get(key).group_name
        groups[group] = groups.get(group, 0) + 1
    return {"asset_keys": [k.to_user_string() for k in keys], "edges": edges, "groups": dict(sorted(groups.items()))}


def served_asset_graph(stack) -> dict:
    """The same record, asked of the running webserver over GraphQL (what the UI draws)."""
    nodes = stack.graphql("{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }",
                          timeout=120)["assetNodes"]
    keys = sorted("/".join(n["assetKey"]["path"]) for n in nodes)
    edges = sorted(f"{'/'.join(d['path'])} -> {'/'.join(n['assetKey']['path'])}" for n in nodes for d in n["dependencyKeys"])
    groups: dict[str, int] = {}
    for n in nodes:
        groups[n["groupName"]] = groups.get(n["groupName"], 0) + 1
    return {"asset_keys": keys, "edges": edges, "groups": dict(sorted(groups.items()))}


# --- the browser ------------------------------------------------------------------------------

# A fresh browser profile: no "Join the Dagster community" dialog (the UI's own "seen" flag),
# left navigation collapsed, the default left-to-right layout. dismiss_dagster_dialogs() still
# closes the dialog should a Dagster release stop reading the flag.
UI_PREFERENCES = """try {
    localStorage.setItem('communityNux', JSON.stringify('1'));
    localStorage.setItem('dagster-nav-collapsed', 'true');
    localStorage.setItem('asset-graph-direction', JSON.stringify('horizontal'));
} catch (e) {}"""

# What the graph looks like right now: asset nodes and group boxes drawn (the UI draws only what
# is in view), and where the zoomed-to-fit graph sits on the page.
GRAPH_STATE = """(() => {
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
        unknown: assets.filter(e => /--minimal-bg:\\s*var\\(--color-background-light\\)/.test(e.innerHTML)).length,
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
EXPAND_FULL_WIDTH = """(async () => {
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

# Every chart card of the dashboard has a drawn plot with all its points.
DASHBOARD_DRAWN = """() => Array.from(document.querySelectorAll('[data-chart]')).every(card =>
    card.querySelectorAll('.plot-container svg.main-svg').length > 0
    && card.querySelectorAll('.plot-container .point').length >= Number(card.dataset.points || 0))"""


def _settle(page, seconds: float = 1.0) -> None:
    page.wait_for_timeout(seconds * 1000)


def shoot_dashboard(html: Path, out: Path, width: int = WIDTH, max_height: int | None = DASHBOARD_HEIGHT,
                    timeout_ms: float = 60_000) -> Shot:
    """The dashboard page once every Plotly chart has drawn, cut below the last chart card that
    fits whole within ``max_height`` CSS pixels."""
    from netflix_elt_tests.playwright_browser import new_page, watch

    html = Path(html)
    if not html.is_file():
        raise ScreenshotError(f"no dashboard at {html}: the home has not been built (`netflix-elt run`)")
    started = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    with new_page(timeout_ms, viewport={"width": width, "height": min(max_height or 1000, 1000)}) as page:
        log = watch(page)
        page.goto(html.resolve().as_uri(), wait_until="load")
        page.wait_for_function(DASHBOARD_DRAWN, timeout=timeout_ms)
        _settle(page, 0.5)
        charts = page.evaluate("Array.from(document.querySelectorAll('[data-chart]')).map(c => c.dataset.chart)")
        full = page.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        if max_height is None:
            height = full
        else:
            height = page.evaluate(f"""(() => {{
                const bottoms = Array.from(document.querySelectorAll('[data-chart]'))
                    .map(card => card.getBoundingClientRect().bottom + window.scrollY)
                    .filter(bottom => bottom + 16 <= {max_height});
                return bottoms.length ? Math.ceil(Math.max(...bottoms) + 16) : {max_height};
            }})()""")
            height = min(height, full)
        page.screenshot(path=str(out), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height})
    if log.console_errors:
        raise ScreenshotError(f"the dashboard logged errors: {log.console_errors}")
    return Shot("dashboard", out, time.monotonic() - started,
                {"shows": "the top of the dashboard ($NETFLIX_ELT_HOME/dashboard/index.html): headline and the charts that fit",
                 "charts": charts})


def shoot_asset_graph(base_url: str, out: Path, served: dict, width: int = WIDTH,
                      timeout_ms: float = 120_000, max_height: int = 4000) -> Shot:
    """The global asset lineage, all groups expanded, once every asset node is drawn.

    Two page loads: the UI zooms the graph to fit the pane's *width*, so a first load in a tall
    viewport measures how tall the fitted graph is, and the second uses a viewport just tall
    enough to show all of it.
    """
    from netflix_elt_tests.playwright_browser import dismiss_dagster_dialogs, new_page

    started = time.monotonic()
    groups = served["groups"]
    missing = [g for g in GROUPS if g not in groups]
    if missing:
        raise ScreenshotError(f"asset groups {missing} are not in the deployment (it has {sorted(groups)})")
    total = len(served["asset_keys"])
    url = base_url.rstrip("/") + LINEAGE_PATH

    def load(height: int, shoot: bool) -> dict:
        with new_page(timeout_ms, viewport={"width": width, "height": height}, init_script=UI_PREFERENCES) as page:
            page.goto(url, wait_until="domcontentloaded")
            # a function, not an expression string: the UI's Content-Security-Policy forbids eval
            page.wait_for_function(f"() => {{ const s = {GRAPH_STATE}; return s.groups.length + s.assets > 0 && s.graph !== null; }}",
                                   timeout=timeout_ms)
            dismiss_dagster_dialogs(page, timeout_ms=1_000)
            state = page.evaluate(EXPAND_FULL_WIDTH % {"state": GRAPH_STATE, "total": total})
            _settle(page)
            state = page.evaluate(GRAPH_STATE)
            if shoot:
                page.screenshot(path=str(out))
            return state

    def complete(state: dict, height: int) -> bool:
        return bool(state["assets"] >= total and state["collapsed"] == 0 and state["nodes"] and not state["dialog"]
                    and state["nodes"]["top"] >= 0 and state["nodes"]["bottom"] <= height)

    first = load(max_height, shoot=False)  # 1. measure, in a viewport tall enough for any graph of this width
    if not complete(first, max_height):
        raise ScreenshotError(f"the asset graph did not show all {total} assets in {len(groups)} groups (state: {first})")
    # the graph is centred in its pane, under the pane's floating search bar (~50 px): leave room
    margin = 70
    height = max(800, min(int(first["pane"]["top"] + first["graph"]["height"] + 2 * margin), max_height))
    second = load(height, shoot=True)  # 2. shoot
    if not complete(second, height):
        raise ScreenshotError(f"the asset graph did not show all {total} assets in a {width}x{height} viewport (state: {second})")
    if second["unknown"]:
        raise ScreenshotError(f"{second['unknown']} of {total} assets show no materialization status in the graph")
    return Shot("asset graph", out, time.monotonic() - started,
                {"shows": f"the global asset lineage ({LINEAGE_PATH}), every group expanded", "url_path": LINEAGE_PATH,
                 "viewport": [width, height], **served})


def shoot_asset_page(base_url: str, out: Path, key: str = ASSET_PAGE_KEY, timeout_ms: float = 120_000) -> Shot:
    """The asset page of ``key`` (its overview tab), once its latest materialization is shown."""
    from netflix_elt_tests.playwright_browser import dismiss_dagster_dialogs, open_page

    started = time.monotonic()
    path = f"/assets/{key}"
    with open_page(base_url.rstrip("/") + path, timeout_ms, PAGE_VIEWPORT, init_script=UI_PREFERENCES) as page:
        page.get_by_text(key.split("/")[-1]).first.wait_for(timeout=timeout_ms)
        dismiss_dagster_dialogs(page, timeout_ms=1_000)
        page.get_by_text("Latest materialization").first.wait_for(timeout=timeout_ms)
        page.get_by_text("Columns").first.wait_for(timeout=timeout_ms)
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
        _settle(page, 1.5)
        if page.locator("[role=dialog]").count():
            raise ScreenshotError(f"a dialog is open over {path}")
        page.screenshot(path=str(out))
    return Shot("asset page", out, time.monotonic() - started,
                {"shows": f"the asset page of {key} (overview tab)", "url_path": path, "asset_key": key})


def shoot_run_page(base_url: str, out: Path, run_id: str, timeout_ms: float = 120_000) -> Shot:
    """The page of run ``run_id``: its step timeline and event log, once its header says Success.
    (Not the log's RUN_SUCCESS line: the log is a virtual list that may open above its end.)"""
    from netflix_elt_tests.playwright_browser import dismiss_dagster_dialogs, open_page

    started = time.monotonic()
    path = f"/runs/{run_id}"
    with open_page(base_url.rstrip("/") + path, timeout_ms, PAGE_VIEWPORT, init_script=UI_PREFERENCES) as page:
        page.get_by_text(run_id[:8]).first.wait_for(timeout=timeout_ms)
        dismiss_dagster_dialogs(page, timeout_ms=1_000)
        page.get_by_text("Success", exact=True).first.wait_for(timeout=timeout_ms)
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
        _settle(page, 1.5)
        page.screenshot(path=str(out))
    return Shot("run page", out, time.monotonic() - started,
                {"shows": "the run page of the fresh build's `netflix-elt run` (one run: every asset, all months)",
                 "url_path": "/runs/<run id>", "status": "SUCCESS"})


# --- the whole thing --------------------------------------------------------------------------

def build_home(home: Path, log=sys.stdout) -> dict:
    """``netflix-elt run`` over a fresh ``home``; returns its JSON summary."""
    from netflix_elt_tests.dagster_stack import netflix_elt

    summary_file = home / "run-summary.json"
    started = time.monotonic()
    print(f"building a fresh home in {home} (netflix-elt run) ...", file=log, flush=True)
    netflix_elt(home, "run", "--json", str(summary_file), timeout=1800)
    summary = json.loads(summary_file.read_text())
    if not summary["success"]:
        raise ScreenshotError(f"netflix-elt run failed: {summary['failed_steps']}")
    print(f"  built in {time.monotonic() - started:.0f} s (run {summary['run_id']})", file=log, flush=True)
    return summary


def make_pictures(out: Path, home: Path, only: set[str] | None = None, log=sys.stdout) -> list[Shot]:
    from dagster import __version__ as dagster_version

    from netflix_elt_tests.dagster_stack import running_stack

    wanted = lambda name: only is None or name in only  # noqa: E731
    out.mkdir(parents=True, exist_ok=True)
    summary = build_home(home, log)
    expected = asset_graph_record()
    shots: list[Shot] = []
    print("starting the UI (netflix-elt dev) ...", file=log, flush=True)
    with running_stack(home) as stack:
        served = served_asset_graph(stack)
        if served != expected:
            raise ScreenshotError("the webserver serves another asset graph than netflix_elt.definitions.defs:\n"
                                  f"  served only: {sorted(set(served['asset_keys']) - set(expected['asset_keys']))}\n"
                                  f"  code only: {sorted(set(expected['asset_keys']) - set(served['asset_keys']))}")
        if wanted("asset-graph"):
            shots.append(shoot_asset_graph(stack.url, out / "asset-graph.png", served))
        if wanted("asset-page"):
            shots.append(shoot_asset_page(stack.url, out / "asset-page.png"))
        if wanted("run-page"):
            shots.append(shoot_run_page(stack.url, out / "run-page.png", summary["run_id"]))
    if wanted("dashboard"):
        shots.append(shoot_dashboard(home / "dashboard" / "index.html", out / "dashboard.png"))

    record_path = out / RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    record.update({
        "made_by": "tools/screenshots.py (make screenshots) from a fresh `netflix-elt run` home; "
                   "netflix_elt_tests/test_pictures.py checks asset-graph.png's keys and edges against the code",
        "dagster": dagster_version,
    })
    pictures = record.setdefault("pictures", {})
    for shot in shots:
        pictures[shot.path.name] = shot.record
    record["pictures"] = dict(sorted(pictures.items()))
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/screenshots.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--only", action="append", choices=("asset-graph", "asset-page", "run-page", "dashboard"),
                        help="make just these pictures (repeatable); pictures.json keeps the others' entries")
    parser.add_argument("--keep-home", action="store_true", help="keep the throwaway home (its path is printed)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="netflix-elt-screenshots-"))
    try:
        shots = make_pictures(args.out, home, set(args.only) if args.only else None)
    except Exception as exc:  # noqa: BLE001 - one line for the user, the home kept for diagnosis
        print(f"tools/screenshots.py: {type(exc).__name__}: {exc}\n(home kept at {home})", file=sys.stderr)
        return 1
    for shot in shots:
        print(f"{shot.name}: {shot.path} ({shot.path.stat().st_size / 1024:.0f} KiB, {shot.seconds:.1f} s)")
    print(f"{args.out / RECORD}")
    if args.keep_home:
        print(f"home kept at {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    print(f"done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
