"""``netflix-elt``: run the whole pipeline headless, or open the UI on the same state.

    netflix-elt run        materialize every asset (all ratings months) and print a summary
    netflix-elt prepare    parse the dbt project once into its manifest
    netflix-elt deliver    drop a new month of ratings / a changed movies.csv into the store
    netflix-elt provision  Snowflake provisioning SQL (--dry-run) or apply it
    netflix-elt dev        dagster dev on 127.0.0.1, with DAGSTER_HOME under NETFLIX_ELT_HOME
    netflix-elt dbt-env    the values dbt's profile reads, as shell exports (dbt by hand)

Both use the Dagster instance under ``$NETFLIX_ELT_HOME/dagster_home``, so a headless run
shows up in the UI's run history and asset catalogue.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from netflix_elt.instance import ensure_dagster_home
from netflix_elt.settings import REPO_ROOT, Settings


def _instance(settings: Settings):
    """The persistent instance; runs a killed headless run left STARTED are failed first, so
    their warehouse pool slot does not make this run wait for ever."""
    from netflix_elt.instance import open_instance, recover_dead_local_runs

    instance = open_instance(settings)
    for run_id in recover_dead_local_runs(instance):
        print(f"marked run {run_id} failed: its process is gone (killed?)", file=sys.stderr)
    return instance


def run_all(settings: Settings, instance=None, progress=None) -> dict:
    """Materialize everything in ONE run of the job ``full_pipeline``: all ratings months as a
    partition range, plus every unpartitioned asset and all checks. Returns the summary it
    prints. ``progress``: a text stream that gets a line as each step starts and ends."""
    import uuid

    import dagster as dg

    from netflix_elt.definitions import FULL_PIPELINE_JOB, build_definitions
    from netflix_elt.partitions import ratings_monthly

    defs = build_definitions(settings)
    instance = instance or _instance(settings)
    keys = ratings_monthly.get_partition_keys()
    marker = {"netflix_elt/invocation": uuid.uuid4().hex}  # how the progress watcher finds the run
    started = time.monotonic()
    with _StepProgress(instance, marker, progress, started, FULL_PIPELINE_JOB):
        result = defs.resolve_job_def(FULL_PIPELINE_JOB).execute_in_process(
            instance=instance,
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1], **marker},
            raise_on_error=False,
        )
    elapsed = time.monotonic() - started
    checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    warehouse = defs.resources["warehouse"]
    summary = {
        "success": result.success,
        "run_id": result.run_id,
        "seconds": round(elapsed, 1),
        "assets_materialized": len({e.asset_key for e in result.get_asset_materialization_events()}),
        "checks_passed": sum(c.passed for c in checks),
        "checks_failed": sum(not c.passed for c in checks),
        "failed_checks": sorted(_failed_check_line(c) for c in checks if not c.passed),
        "failed_steps": failed_steps,
        "raw_rows": warehouse.row_counts(),
        "warehouse": warehouse.describe(),
        "dashboard": _dashboard_path(result),
        "step_seconds": _step_seconds(result),
    }
    return summary


class _StepProgress:
    """A line per step as it starts and ends, read from the instance's event log (the same
    records the UI shows) by a background thread while the run executes in this process."""

    LABELS = {"STEP_START": "started", "STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED",
              "STEP_SKIPPED": "skipped", "STEP_UP_FOR_RETRY": "retrying"}

    def __init__(self, instance, marker: dict, out, started: float, job: str, poll_s: float = 0.25):
        import threading

        self.instance, self.marker, self.out, self.started, self.poll_s = instance, marker, out, started, poll_s
        self.job = job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="netflix-elt-progress", daemon=True)
        self._cursor = None
        self._run_id = None

    def __enter__(self):
        if self.out is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.out is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._print_new()  # whatever landed after the last poll
        return False

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._print_new()
            except Exception:  # noqa: BLE001 - progress is a nicety: never fail the run over it
                pass

    def _print_new(self) -> None:
        import dagster as dg

        if self._run_id is None:
            records = self.instance.get_run_records(dg.RunsFilter(tags=self.marker), limit=1)
            if not records:
                return
            self._run_id = records[0].dagster_run.run_id
            print(f"run {self._run_id} (job {self.job})", file=self.out, flush=True)
        # Only the step events: the run's thousands of per-partition events are not read.
        step_events = {dg.DagsterEventType(name) for name in self.LABELS}
        conn = self.instance.get_records_for_run(self._run_id, cursor=self._cursor, of_type=step_events)
        self._cursor = conn.cursor
        for record in conn.records:
            event = record.event_log_entry.dagster_event
            label = self.LABELS[event.event_type_value]
            took = getattr(event.event_specific_data, "duration_ms", None)
            suffix = f" in {took / 1000:.1f} s" if took is not None and label != "started" else ""
            elapsed = time.monotonic() - self.started
            print(f"  [{elapsed:6.1f} s] {event.step_key:<22} {label}{suffix}", file=self.out, flush=True)


def run_with_progress(settings: Settings, instance) -> dict:
    """``run_all`` as ``netflix-elt run`` shows it: a line per step on the terminal, and the
    whole Dagster and dbt log (thousands of lines, warnings included) in a file the summary
    names, ``<home>/logs/run-<time>.log``."""
    log_path = settings.home / "logs" / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    print(f"netflix-elt run: every asset of {settings.target!r}; the full log goes to {log_path}", flush=True)
    with _output_to(log_path) as console:
        summary = run_all(settings, instance=instance, progress=console)
    summary["log"] = str(log_path)
    return summary


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (file descriptors 1 and 2: Dagster's console log,
    dbt's output, warnings, anything a library prints) to ``path``; yield a stream to the
    terminal for the progress lines. Restored on the way out, whatever happens."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()


def _failed_check_line(evaluation) -> str:
    """A failed check with its figures: what failed and by how much, not only its name."""
    figures = ", ".join(
        f"{name}={entry.value:,}" if isinstance(entry.value, int) else f"{name}={entry.value}"
        for name, entry in evaluation.metadata.items()
        if isinstance(entry.value, (int, float, str)) and not name.startswith("dagster_dbt/") or name == "dagster_dbt/failed_row_count"
    )
    line = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
    if evaluation.description:
        line += f": {evaluation.description}"
    return f"{line} ({figures})" if figures else line


def _step_seconds(result) -> dict[str, float]:
    """Wall time of each step, from the run's own STEP_SUCCESS/STEP_FAILURE events."""
    seconds = {}
    for event in result.all_events:
        if event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            duration = getattr(event.event_specific_data, "duration_ms", None)
            if duration is not None:
                seconds[event.step_key] = round(duration / 1000, 3)
    return seconds


def _dashboard_path(result) -> str | None:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == "dashboard":
            return event.materialization.metadata["path"].value
    return None


def print_summary(summary: dict, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("")
    p(f"netflix-elt run {'SUCCEEDED' if summary['success'] else 'FAILED'} in {summary['seconds']} s (run {summary['run_id']})")
    p(f"  assets materialized: {summary['assets_materialized']}")
    p(f"  checks: {summary['checks_passed']} passed, {summary['checks_failed']} failed")
    for name in summary["failed_checks"]:
        p(f"    failed check: {name}")
    for step in summary["failed_steps"]:
        p(f"    failed step: {step}")
    p("  rows per raw table:")
    for table, rows in summary["raw_rows"].items():
        p(f"    raw.{table:<14} {rows:>12,}")
    p(f"  warehouse: {summary['warehouse']}")
    if summary.get("dashboard"):
        p(f"  dashboard: {summary['dashboard']}")
    if summary.get("log"):
        p(f"  full log: {summary['log']}")
    for label, value in summary.get("extra", {}).items():
        p(f"  {label}: {value}")


def cmd_run(args, settings: Settings) -> NoReturn:
    with _start_warm_dbt(settings):  # stopped on the way out: success, failure or Ctrl-C
        instance = _instance(settings)
        summary = run_with_progress(settings, instance)
        print_summary(summary)
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
        instance.dispose()  # the event log's pooled SQLite connections close (and checkpoint) here
    _exit_now(0 if summary["success"] else 1)


def _start_warm_dbt(settings: Settings):
    """A warm dbt server owned by this command (netflix_elt/warm_dbt), for a ``with`` block:
    started before this process imports Dagster (dbt imports on the other core meanwhile,
    ~2.5 s), named in this process's environment for the run's dbt resource and any child
    process, stopped at the end of the block. If this process is killed instead, the server
    follows it. With NETFLIX_ELT_WARM_DBT=0, or off POSIX, dbt runs cold."""
    import contextlib

    from netflix_elt import warm_dbt
    from netflix_elt.settings import DBT_PROJECT_DIR

    if not (settings.warm_dbt and warm_dbt.supported()):
        return contextlib.nullcontext()
    return warm_dbt.owned_server(DBT_PROJECT_DIR, settings.home, target=settings.target)


def _exit_now(code: int) -> NoReturn:
    """Leave without tearing the interpreter down. After a run Python spends ~0.7 s freeing
    Dagster's, dbt's and DuckDB's objects one by one at exit; by now every file and connection
    is closed, and the OS frees the process's memory at once."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def cmd_dev(args, settings: Settings) -> int:
    env = dict(os.environ, DAGSTER_HOME=str(ensure_dagster_home(settings)))
    # The code server and dbt run from this venv's bin folder, activated or not.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    settings.export_for_dbt(env)
    dagster = Path(sys.executable).with_name("dagster")
    argv = [str(dagster), "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", str(REPO_ROOT / "workspace.yaml")]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (DAGSTER_HOME={env['DAGSTER_HOME']})", flush=True)
    # dagster dev runs as this command's child, so this command's warm dbt server (its runs'
    # dbt steps fork from it, found through the environment) lives exactly as long as it.
    with _start_warm_dbt(settings) as server:
        if server is not None:
            env.update(server.env())
        return _run_child(argv, env, cwd=REPO_ROOT)


STOP_GRACE_S = 20.0  # after a forwarded stop signal, how long the child may take to exit


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started (dagster dev's webserver, daemon, code server):
    descendants found through /proc where there is one, else the process alone."""
    import signal

    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    for member in reversed(tree):
        with contextlib.suppress(OSError):
            os.kill(member, signal.SIGKILL)


def _run_child(argv: list[str], env: dict, cwd: Path) -> int:
    """Run a command to its end, forwarding SIGTERM/SIGHUP (and a SIGINT the terminal did not
    already deliver to it) to it; its exit code, 128 + the signal's number if one ended it.
    On Linux it gets SIGTERM if this process is killed."""
    import contextlib
    import signal
    import subprocess

    from netflix_elt.warm_dbt.server import _prctl, die_with_parent

    linux = _prctl() is not None  # looked up before the fork: the child only calls it
    child = subprocess.Popen(argv, env=env, cwd=cwd, preexec_fn=die_with_parent if linux else None)  # noqa: PLW1509

    asked_to_stop: list[float] = []

    def forward(signum, _frame):
        asked_to_stop.append(time.monotonic())
        if signum == signal.SIGINT and _in_terminal_foreground():
            return  # Ctrl-C: the terminal sent it to the whole foreground group, the child too
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    forwarded = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        while True:
            try:
                code = child.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                # dagster dev asked to stop while it is still starting its processes can hang
                # (seen once in CI: not gone 120 s after SIGTERM); a stop is a stop.
                if asked_to_stop and time.monotonic() - asked_to_stop[0] > STOP_GRACE_S:
                    _kill_tree(child.pid)
                    code = child.wait()
                    break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:  # this process is leaving early: do not leave dagster behind
            child.terminate()
            child.wait()
    return code if code >= 0 else 128 - code


def _in_terminal_foreground() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def cmd_prepare(args, settings: Settings) -> int:
    settings.export_for_dbt()
    from netflix_elt.dbt_manifest import dbt_project, prepare

    prepare()
    print(f"dbt manifest ready: {dbt_project.manifest_path}")
    return 0


def cmd_dbt_env(args, settings: Settings) -> int:
    """``eval "$(netflix-elt dbt-env)"`` before running dbt by hand: the same values a run hands
    to dbt (Settings.dbt_env), so the profile resolves as it does in the pipeline."""
    import shlex

    for name, value in {**settings.dbt_env(), "DBT_TARGET": settings.target}.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def cmd_deliver(args, settings: Settings) -> int:
    from netflix_elt.deliveries import deliver_movie_change, deliver_ratings_month
    from netflix_elt.movielens import dataset
    from netflix_elt.resources.factory import build_resources

    resources = build_resources(settings)
    store = resources["object_store"]
    if args.what == "ratings":
        movies = resources["source"].locate(dataset("movies")).path
        obj = deliver_ratings_month(store, movies, args.month, rows=args.rows, seed=args.seed, work_dir=settings.work_dir)
    else:
        obj = deliver_movie_change(store, args.movie_id, args.title)
    print(f"delivered {store.describe(obj.key)} (etag {obj.etag}, {obj.size} bytes)")
    print("With the sensor `new_s3_objects` on (make dev -> Automation), a run loads it within a tick.")
    return 0


def cmd_provision(rest: list[str]) -> int:
    from netflix_elt.snowflake.provision import main as provision_main

    return provision_main(rest)


# Commands with their own argument parsers: everything after the command name is theirs.
DELEGATED = {"provision": cmd_provision}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netflix-elt", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize the whole pipeline and print a summary")
    run.add_argument("--json", help="also write the summary (with per-step seconds) to this file")
    sub.add_parser("prepare", help="parse the dbt project into its manifest (done by make setup)")
    sub.add_parser("dbt-env", help="print the values dbt's profile reads as shell exports (for dbt by hand)")
    dev = sub.add_parser("dev", help="open the Dagster UI (dagster dev) on 127.0.0.1 with the same state")
    dev.add_argument("--port", type=int, default=3000)
    deliver = sub.add_parser("deliver", help="drop a new delivery into the object store (to watch the sensor)")
    what = deliver.add_subparsers(dest="what", required=True)
    ratings = what.add_parser("ratings", help="a month of ratings by new users")
    ratings.add_argument("--month", required=True, help="YYYY-MM")
    ratings.add_argument("--rows", type=int, default=500)
    ratings.add_argument("--seed", type=int, default=7)
    movie = what.add_parser("movie", help="movies.csv again, with one title changed")
    movie.add_argument("--movie-id", type=int, default=1)
    movie.add_argument("--title", default="Toy Story (Director's Cut) (1995)")
    sub.add_parser("provision", help="Snowflake provisioning as code (--dry-run prints the SQL)")
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]](argv[1:])
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    commands = {"run": cmd_run, "dev": cmd_dev, "prepare": cmd_prepare, "deliver": cmd_deliver, "dbt-env": cmd_dbt_env}
    return commands[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
