"""Benchmarks: the whole pipeline at a chosen scale, against the engine's own floor.

    python benchmarks/run_benchmarks.py                       # ml-25m shape (25,000,095 ratings)
    python benchmarks/run_benchmarks.py --scale 0.003 --sensor-objects 2000   # what CI runs

Prints ONE table:
- end-to-end: every asset materialized on the embedded default (extract to the folder store,
  load, dbt build with tests and snapshots, dashboard), in a separate process, and per stage;
- floor: the same loads and the same transforms as one bare DuckDB script (the very SQL dbt
  compiled, its tests included; no Dagster, no dbt), and the ratio end-to-end / floor;
- incremental: one new month of ratings from the sensor's tick to fresh marts (every mart
  rebuilt and checked), and its ratio to the full run; also to the end of its run (the
  dashboard rebuilt too);
- speed-ups side by side with the plain path: the full run with every speed-up off
  (NETFLIX_ELT_WARM_DBT=0, NETFLIX_ELT_PRIVATE_HOOKS=none) next to the default, and a new
  month under each step of the ladder plain -> + the dagster-dbt hook -> + the warm dbt
  server (public interfaces only) -> + its warm-up -> + its frozen heap -> + the forks' fast
  exit (= the default), each month in its own process as a run worker of `netflix-elt dev`
  would be (the server, when there is one, started and ready before the month arrives);
- sensor tick over a store with N objects (100,000 by default);
- peak memory (RSS summed over the whole process tree) of the end-to-end run.
Targets are printed next to the figures. Nothing here asserts a time: figures, not tests.

The machine's speed drifts from minute to minute (a shared 2-core VM: a full run took 60.7 s
and 67.7 s back to back), so ``--repeat N`` measures the full run, its floor and the months N
times and prints medians; a ratio is the median of each round's own ratio, with its range,
and the peak memory is the highest of the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGETS = {"ratio": 1.5, "peak_gib": 2.0, "incremental_share": 0.10, "sensor_tick_s": 2.0}


# -- measuring ------------------------------------------------------------------------------------

def _tree_rss(root_pid: int) -> dict[str, int]:
    """RSS of a process and all its descendants, read from /proc (no psutil), by part: the
    run's own process, the warm dbt server, the dbt processes it forked, and the rest (dbt
    clients, a cold dbt). Pages a fork shares with the server count in both, as RSS counts
    them: the sum is an upper bound of the memory in use."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * os.sysconf("SC_PAGE_SIZE")
    parts = {"run": 0, "warm dbt server": 0, "dbt (forked)": 0, "other": 0}
    stack = [(root_pid, "run")]
    while stack:
        pid, part = stack.pop()
        parts[part] += rss.get(pid, 0)
        for child in children.get(pid, []):
            if part == "warm dbt server":
                kind = "dbt (forked)"
            else:
                kind = "warm dbt server" if _is_warm_server(child) else "other"
            stack.append((child, kind))
    return parts


def _is_warm_server(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"netflix_elt.warm_dbt.server" in f.read()
    except OSError:
        return False


def run_measured(argv: list[str], env: dict) -> tuple[float, dict[str, int], int]:
    """Run a command; return (wall seconds, tree RSS bytes by part at its peak, exit code)."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak: dict[str, int] = {}
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            parts = _tree_rss(proc.pid)
            if sum(parts.values()) > sum(peak.values()):
                peak = parts
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    stop.set()
    sampler.join()
    elapsed = time.monotonic() - started
    if proc.returncode:
        sys.stderr.write(output[-5000:])
    return elapsed, peak, proc.returncode


# -- the floor ------------------------------------------------------------------------------------

def compile_dbt(home: Path, target_path: Path) -> dict:
    """`dbt compile` against the built warehouse: the exact SQL of every model, seed and test.
    Not timed, and parsed from scratch: a parse saved in the work folder by another checkout
    once compiled that checkout's test configs here."""
    from netflix_elt.settings import Settings

    env = dict(os.environ, **Settings.from_env({"NETFLIX_ELT_HOME": str(home)}).dbt_env())
    dbt = str(Path(sys.executable).with_name("dbt"))
    subprocess.run(
        [dbt, "compile", "--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"),
         "--target-path", str(target_path), "--no-partial-parse", "--quiet"],
        env=env, check=True, cwd=REPO,
    )
    return json.loads((target_path / "manifest.json").read_text())


def _topological(nodes: dict) -> list[str]:
    order, seen = [], set()

    def visit(uid):
        if uid in seen or uid not in nodes:
            return
        seen.add(uid)
        for dep in nodes[uid].get("depends_on", {}).get("nodes", []):
            visit(dep)
        order.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return order


def run_floor(source: Path, manifest: dict, work: Path) -> dict[str, float]:
    """The same work as one bare DuckDB script: read_csv into raw tables, then every compiled
    model/seed/snapshot/test in dependency order. The database file is named like the real
    one (`warehouse`) so the compiled, fully qualified names resolve."""
    import duckdb

    from netflix_elt.loading.duckdb_loader import raw_table_ddl
    from netflix_elt.movielens import CSV_READ_OPTIONS, DATASETS
    from netflix_elt.resources.movielens_source import MovieLensSource

    folder = work / "floor"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "warehouse.duckdb"
    db.unlink(missing_ok=True)
    src = MovieLensSource(path=str(source), work_dir=str(work / "floor-src"), synthetic_genome_tags=64)
    times = {}
    con = duckdb.connect(str(db))
    started = time.monotonic()
    con.execute("create schema raw")
    for ds in DATASETS:
        con.execute(raw_table_ddl(ds))
        cols = ", ".join(f"'{c.name}': '{c.reader_type}'" for c in ds.columns)
        names = ", ".join(f'"{c.name}"' for c in ds.columns)
        con.execute(
            f"""insert into raw."{ds.name}" select {names}, 'floor', now()::timestamp
                from read_csv(?, {CSV_READ_OPTIONS}, columns={{{cols}}})""",
            [str(src.locate(ds).path)],
        )
    times["load"] = time.monotonic() - started
    started = time.monotonic()
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed", "snapshot", "test")}
    for uid in _topological(nodes):
        node = nodes[uid]
        kind = node["resource_type"]
        relation = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
        con.execute(f'create schema if not exists "{node["schema"]}"')
        if kind == "seed":
            path = REPO / "dbt_project" / node["original_file_path"]
            con.execute(f"create or replace table {relation} as select * from read_csv(?, header=true)", [str(path)])
        elif kind == "test":
            con.execute(f"select count(*) from ({node['compiled_code']}) t").fetchone()
        elif kind == "snapshot":  # a first snapshot: every row opens a version
            con.execute(
                f"""create or replace table {relation} as select *, gen_random_uuid()::varchar as dbt_scd_id,
                    now()::timestamp as dbt_updated_at, now()::timestamp as dbt_valid_from,
                    cast(null as timestamp) as dbt_valid_to from ({node['compiled_code']}) s"""
            )
        elif node["config"].get("materialized") == "view":
            con.execute(f"create or replace view {relation} as {node['compiled_code']}")
        else:
            con.execute(f"create or replace table {relation} as {node['compiled_code']}")
    times["transform"] = time.monotonic() - started
    con.close()
    return times


# -- incremental and sensor -------------------------------------------------------------------------

def run_incremental(home: Path, source: Path, rows: int, seed: int = 7) -> dict[str, float]:
    """A new month dropped into the store: seconds from the sensor's tick to fresh marts (the
    marts rebuilt and their checks evaluated), to the end of the run (the dashboard rebuilt
    too), and of the tick."""
    import dagster as dg

    from netflix_elt.definitions import build_definitions
    from netflix_elt.deliveries import deliver_ratings_month
    from netflix_elt.movielens import dataset
    from netflix_elt.sensors import build_new_objects_sensor, selection_of
    from netflix_elt.settings import Settings

    settings = Settings.from_env({"NETFLIX_ELT_HOME": str(home), "NETFLIX_ELT_SOURCE": str(source)})
    defs = build_definitions(settings)
    store = defs.resources["object_store"]
    movies = defs.resources["source"].locate(dataset("movies")).path
    with dg.build_sensor_context(resources={"object_store": store}, definitions=defs) as ctx:
        cursor = build_new_objects_sensor()(ctx).cursor  # the sensor is on: first tick, nothing new
    month = time.strftime("%Y-%m", time.gmtime())
    deliver_ratings_month(store, movies, month, rows=rows, seed=seed, work_dir=settings.work_dir)
    started, started_wall = time.monotonic(), time.time()
    with dg.build_sensor_context(cursor=cursor, resources={"object_store": store}, definitions=defs) as ctx:
        result = build_new_objects_sensor()(ctx)
    tick = time.monotonic() - started
    (request,) = result.run_requests
    instance = dg.DagsterInstance.ephemeral()
    run = dg.materialize(
        defs.assets, resources=defs.resources, selection=selection_of(request),
        partition_key=request.partition_key, instance=instance, raise_on_error=True,
    )
    whole = time.monotonic() - started
    assert run.success
    # Fresh marts: every mart rebuilt and every check on them evaluated (dbt runs a model's
    # tests after it, so the last mart event is the last of those tests).
    kinds = {dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    marts = [entry.timestamp for entry in instance.all_logs(run.run_id, of_type=kinds) if _asset_key(entry).path[0] == "marts"]
    assert marts, "the month's run materialized no mart"
    return {"to_marts_s": max(marts) - started_wall, "run_s": whole, "tick_s": tick}


def _asset_key(entry):
    event = entry.dagster_event
    return event.asset_key or event.event_specific_data.asset_key  # a check evaluation names its asset


def run_sensor_tick(work: Path, n_objects: int) -> tuple[float, float, int]:
    """A folder store holding n objects, all older than the sensor's cursor, plus one new one:
    seconds for one tick and for a whole sweep (ticks until the listing wraps)."""
    import dagster as dg

    from netflix_elt.resources.object_store import FolderObjectStore
    from netflix_elt.sensors import SensorCursor, build_new_objects_sensor

    root = work / "sensor-store"
    shutil.rmtree(root, ignore_errors=True)  # exactly n objects, whatever an earlier benchmark left
    base = root / "netflix-elt" / "raw" / "ratings"
    per_month = max(1, n_objects // 300)
    made = 0
    for m in range(300):
        month = f"{1996 + m // 12}-{m % 12 + 1:02d}"
        folder = base / f"month={month}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_month):
            if made >= n_objects:
                break
            (folder / f"part-{i:05d}.csv").write_text("userId,movieId,rating,timestamp\n")
            made += 1
    store = FolderObjectStore(root=str(root))
    cursor = SensorCursor(since=time.time() + 1, next_since=time.time() + 1).dumps()
    time.sleep(1.2)
    (base / "month=2019-11").mkdir(parents=True, exist_ok=True)
    (base / "month=2019-11" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1573000000\n")
    from netflix_elt.definitions import defs

    sensor = build_new_objects_sensor()
    started = time.monotonic()
    with dg.build_sensor_context(cursor=cursor, resources={"object_store": store}, definitions=defs) as ctx:
        first = sensor(ctx)
    tick = time.monotonic() - started
    ticks, found, cursor = 1, len(first.run_requests), first.cursor
    while json.loads(cursor)["after"]:
        with dg.build_sensor_context(cursor=cursor, resources={"object_store": store}, definitions=defs) as ctx:
            result = sensor(ctx)
        ticks, found, cursor = ticks + 1, found + len(result.run_requests), result.cursor
    sweep = time.monotonic() - started
    assert found == 1, f"expected the one new object, found {found}"
    return tick, sweep, ticks


# -- the table ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="ml-25m", help="ml-25m | ml-20m | ml-latest-small | fraction of ml-25m")
    parser.add_argument("--work", help="work folder (default: a new temporary folder)")
    parser.add_argument("--sensor-objects", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure the full run, the floor and the months this many times; print medians")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--month-repeat", type=int, default=3,
                        help="months measured per step of the speed-up ladder (median printed)")
    parser.add_argument("--no-plain-full", action="store_true", help="skip the full run with every speed-up off")
    parser.add_argument("--month-child", help=argparse.SUPPRESS)  # internal: one month, in its own process
    args = parser.parse_args(argv)
    if args.month_child:
        return month_child(json.loads(args.month_child))

    from netflix_elt.synthetic import generate

    work = Path(args.work or tempfile.mkdtemp(prefix="netflix-elt-bench-"))
    source = work / "source"
    started = time.monotonic()
    if not (source / "ratings.csv").exists():
        generate(source, scale=args.scale)
    generate_s = time.monotonic() - started

    # Each command owns its warm dbt server (netflix_elt/warm_dbt): none is inherited from the caller.
    for name in ("NETFLIX_ELT_WARM_DBT_SOCKET", "NETFLIX_ELT_WARM_DBT_DIR", "NETFLIX_ELT_PRIVATE_HOOKS"):
        os.environ.pop(name, None)
    rounds = []
    for _ in range(max(1, args.repeat)):
        measured = measure_round(work, source, plain_full=not args.no_plain_full, month_repeat=args.month_repeat)
        if measured is None:
            return 1
        rounds.append(measured)
    figures = {"scale": args.scale, "generate_s": generate_s, "rounds": len(rounds), **median_of(rounds)}
    if len(rounds) > 1:
        figures["each_round"] = rounds
    figures["sensor_tick_s"], figures["sensor_sweep_s"], figures["sensor_ticks"] = run_sensor_tick(work, args.sensor_objects)
    figures["sensor_objects"] = args.sensor_objects

    print_table(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


# The speed-up ladder: each step adds one speed-up to the one before (docs/warm-dbt.md).
LADDER = [
    ("plain (dbt cold, stock dagster-dbt)", {"warm": False, "hooks": "none"}),
    ("+ dagster-dbt hook (no dbt --version, no adapter)", {"warm": False, "hooks": "dagster_dbt"}),
    ("+ warm dbt server (public interfaces only)", {"warm": True, "hooks": "dagster_dbt"}),
    ("+ server warm-up (schemas, saved parse)", {"warm": True, "hooks": "dagster_dbt,warm_up"}),
    ("+ frozen heap (gc.freeze)", {"warm": True, "hooks": "dagster_dbt,warm_up,freeze"}),
    ("+ fast exit of each fork (= default)", {"warm": True, "hooks": "all"}),
]
PLAIN_ENV = {"NETFLIX_ELT_WARM_DBT": "0", "NETFLIX_ELT_PRIVATE_HOOKS": "none"}


def full_run(work: Path, source: Path, extra_env: dict | None = None) -> dict | None:
    """One full run from nothing, in its own process: wall time, peak memory, its summary."""
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)  # always a first run: nothing loaded, nothing cached
    env = dict(os.environ, NETFLIX_ELT_HOME=str(home), NETFLIX_ELT_SOURCE=str(source), PYTHONPATH=str(REPO),
               **(extra_env or {}))
    summary_path = work / "summary.json"
    wall, peak, code = run_measured([sys.executable, "-m", "netflix_elt.cli", "run", "--json", str(summary_path)], env)
    if code:
        print(f"end-to-end run failed (exit {code})", file=sys.stderr)
        return None
    return {"wall": wall, "peak": peak, "summary": json.loads(summary_path.read_text())}


def month_child(config: dict) -> int:
    """One new month in this process, under one step of the ladder; prints its figures."""
    import contextlib

    os.environ["NETFLIX_ELT_WARM_DBT"] = "1" if config["warm"] else "0"
    os.environ["NETFLIX_ELT_PRIVATE_HOOKS"] = config["hooks"]
    from netflix_elt import warm_dbt
    from netflix_elt.settings import DBT_PROJECT_DIR

    home = Path(config["home"])
    with (warm_dbt.owned_server(DBT_PROJECT_DIR, home, target="local") if config["warm"] else contextlib.nullcontext()) as server:
        if server is not None:
            server.wait_ready()  # as in a dev session: the server is up before the month arrives
        figures = run_incremental(home, Path(config["source"]), config["rows"], seed=config["seed"])
    print("FIGURES " + json.dumps(figures), flush=True)
    return 0


def measure_ladder(work: Path, source: Path, rows: int, repeat: int) -> tuple[dict[str, float], float]:
    """A new month (tick to fresh marts) under each step of the ladder: median of ``repeat``;
    and the default's median to the end of its run (dashboard too)."""
    medians, seed, run_s = {}, 100, []
    for label, config in LADDER:
        seconds = []
        for _ in range(max(1, repeat)):
            seed += 1  # another month's bytes each time: the sensor sees a changed delivery
            child = {**config, "home": str(work / "home"), "source": str(source), "rows": rows, "seed": seed}
            out = subprocess.run([sys.executable, __file__, "--month-child", json.dumps(child)], cwd=REPO,
                                 capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
            line = [x for x in out.stdout.splitlines() if x.startswith("FIGURES ")]
            if out.returncode or not line:
                sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
                raise RuntimeError(f"month under {label!r} failed")
            figures = json.loads(line[0].removeprefix("FIGURES "))
            seconds.append(figures["to_marts_s"])
            if (label, config) == LADDER[-1]:
                run_s.append(figures["run_s"])
        medians[label] = statistics.median(seconds)
    return medians, statistics.median(run_s)


def measure_round(work: Path, source: Path, plain_full: bool = True, month_repeat: int = 3) -> dict | None:
    """One full run with every speed-up off (unless ``plain_full`` is False), one with the
    defaults (its floor measured right after it), then a new month in this process (its
    dbt cold: no command owns a server here) and under each step of the speed-up ladder."""
    plain = full_run(work, source, PLAIN_ENV) if plain_full else None
    run = full_run(work, source)
    if run is None or (plain_full and plain is None):
        return None
    wall, peak, summary = run["wall"], run["peak"], run["summary"]
    home = work / "home"
    steps = summary["step_seconds"]
    stage = lambda prefix: sum(v for k, v in steps.items() if k.startswith(prefix))  # noqa: E731
    figures = dict(
        e2e_s=wall, peak_bytes=sum(peak.values()), peak_parts=peak,
        extract_s=stage("s3__"), load_s=stage("raw__"), transform_s=stage("dbt_"),
        dashboard_s=stage("dashboard"), ratings=summary["raw_rows"]["ratings"], overhead_s=wall - sum(steps.values()),
    )

    manifest = compile_dbt(home, work / "floor-target")
    floor = run_floor(source, manifest, work)
    figures.update(floor_load_s=floor["load"], floor_transform_s=floor["transform"], floor_s=sum(floor.values()))

    month_rows = max(100, min(50_000, figures["ratings"] // 300))
    month = run_incremental(home, source, month_rows)
    ladder, default_run_s = measure_ladder(work, source, month_rows, month_repeat)
    default = ladder[LADDER[-1][0]]
    figures.update(
        incremental_s=default, incremental_run_s=default_run_s, incremental_tick_s=month["tick_s"],
        incremental_inprocess_s=month["to_marts_s"], incremental_rows=month_rows,
        ratio=wall / figures["floor_s"], incremental_share=default / wall,
        **{f"ladder:{label}": seconds for label, seconds in ladder.items()},
    )
    if plain is not None:
        figures.update(e2e_plain_s=plain["wall"], transform_plain_s=sum(
            v for k, v in plain["summary"]["step_seconds"].items() if k.startswith("dbt_")))
    return figures


def median_of(rounds: list[dict]) -> dict:
    """Each figure's median over the rounds; a ratio is the median of each round's own ratio
    (its full run against the floor measured right after it), with its range."""
    keys = [key for key, value in rounds[0].items() if isinstance(value, (int, float))]
    figures = {key: statistics.median(r[key] for r in rounds) for key in keys}
    for key in ("ratio", "incremental_share"):
        figures[f"{key}_range"] = (min(r[key] for r in rounds), max(r[key] for r in rounds))
    highest = max(rounds, key=lambda r: r["peak_bytes"])  # a bound: the highest, not the median
    figures["peak_bytes"], figures["peak_parts"] = highest["peak_bytes"], highest["peak_parts"]
    return figures


def plain_rows(f: dict) -> list[tuple[str, str, str, str]]:
    """The full run with every speed-up off next to the default, and the month's ladder: each
    step's time, its gain over the step before and the total gain over the plain path."""
    rows = []
    if "e2e_plain_s" in f:
        rows.append(("  full run: plain / default",
                     f"{f['e2e_plain_s']:.1f} s / {f['e2e_s']:.1f} s (-{f['e2e_plain_s'] - f['e2e_s']:.1f} s)", "", ""))
        rows.append(("    its dbt steps: plain / default",
                     f"{f['transform_plain_s']:.1f} s / {f['transform_s']:.1f} s "
                     f"(-{f['transform_plain_s'] - f['transform_s']:.1f} s)", "", ""))
    plain = previous = None
    for label, _config in LADDER:
        seconds = f.get(f"ladder:{label}")
        if seconds is None:
            continue
        if plain is None:
            plain = previous = seconds
            rows.append((f"  month: {label}", f"{seconds:.2f} s", "", ""))
            continue
        rows.append((f"  month: {label}", f"{seconds:.2f} s (step -{previous - seconds:.2f} s, "
                     f"vs plain -{plain - seconds:.2f} s)", "", ""))
        previous = seconds
    return rows


def print_table(f: dict) -> None:
    ratio, share = f["ratio"], f["incremental_share"]
    spread = lambda key, fmt: (  # noqa: E731
        f" (rounds: {fmt.format(f[key + '_range'][0])}-{fmt.format(f[key + '_range'][1])})" if f["rounds"] > 1 else ""
    )
    gib = f["peak_bytes"] / 2**30
    ok = lambda good: "yes" if good else "NO"  # noqa: E731
    rows = [
        ("scale", f"{f['scale']} ({f['ratings']:,} ratings)", "", ""),
        ("rounds measured (medians below)" if f["rounds"] > 1 else "rounds measured", str(f["rounds"]), "", ""),
        ("end-to-end (every asset)", f"{f['e2e_s']:.1f} s", "", ""),
        ("  extract to the store", f"{f['extract_s']:.1f} s", "", ""),
        ("  load raw tables (+ reconcile)", f"{f['load_s']:.1f} s", "", ""),
        ("  dbt build (tests, snapshots)", f"{f['transform_s']:.1f} s", "", ""),
        ("  dashboard", f"{f['dashboard_s']:.1f} s", "", ""),
        ("  process start, planning, events", f"{f['overhead_s']:.1f} s", "", ""),
        ("floor: bare DuckDB, same SQL", f"{f['floor_s']:.1f} s", "", ""),
        ("  loads / transforms + tests", f"{f['floor_load_s']:.1f} s / {f['floor_transform_s']:.1f} s", "", ""),
        ("end-to-end / floor", f"{ratio:.2f}x" + spread("ratio", "{:.2f}x"), f"<= {TARGETS['ratio']}x", ok(ratio <= TARGETS["ratio"])),
        ("peak RSS, whole process tree", f"{gib:.2f} GiB", f"<= {TARGETS['peak_gib']} GiB", ok(gib <= TARGETS["peak_gib"])),
        ("  at the peak, GiB", ", ".join(f"{part} {n / 2**30:.2f}" for part, n in f["peak_parts"].items()), "", ""),
        (f"incremental month ({f['incremental_rows']:,} rows; a dev session's run)", f"{f['incremental_s']:.1f} s", "", ""),
        ("  share of the full run", f"{share:.1%}" + spread("incremental_share", "{:.1%}"),
         f"<= {TARGETS['incremental_share']:.0%}", ok(share <= TARGETS["incremental_share"])),
        ("  run's end (dashboard too)", f"{f['incremental_run_s']:.1f} s ({f['incremental_run_s'] / f['e2e_s']:.1%})", "", ""),
        ("  in the benchmark's process (no server: dbt cold)", f"{f['incremental_inprocess_s']:.1f} s", "", ""),
        ("speed-ups, each next to the plain path", "", "", ""),
        *plain_rows(f),
        (f"sensor tick, {f['sensor_objects']:,} objects", f"{f['sensor_tick_s']:.2f} s", f"<= {TARGETS['sensor_tick_s']} s",
         ok(f["sensor_tick_s"] <= TARGETS["sensor_tick_s"])),
        ("  full sweep", f"{f['sensor_sweep_s']:.2f} s in {f['sensor_ticks']} ticks", "", ""),
        ("(generating the source)", f"{f['generate_s']:.1f} s", "", ""),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("figure", "value", "target", "met")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for row in rows:
        print(line(row))


if __name__ == "__main__":
    sys.exit(main())
