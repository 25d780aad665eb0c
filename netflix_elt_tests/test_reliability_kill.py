"""Atomic loads: a run killed with SIGKILL in the middle of a large month leaves the warehouse
consistent, and the next run completes with exact counts.

The run is a real process (``dg.materialize`` on the home's persistent instance, pools and all);
the loader does one DuckDB transaction per batch of objects, so the kill leaves the old state: no rows,
rejects or ledger entry of the half-loaded month. The killed run left its pool slot claimed and
its status STARTED; ``recover_dead_local_runs`` (what an operator or the CLI runs) marks it
failed and frees the slot, so the next run does not wait for ever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from netflix_elt.instance import WAREHOUSE_POOL, open_instance, recover_dead_local_runs
from netflix_elt.layout import object_key
from netflix_elt.movielens import dataset
from netflix_elt.resources.factory import build_object_store, build_warehouse
from netflix_elt.settings import REPO_ROOT
from netflix_elt_tests.reliability import elt_environment, step_windows

SMALL_MONTH, BIG_MONTH = "2000-07", "2000-08"
BIG_ROWS = 4_000_000
BAD_ROWS = 25  # rating 7.0: breaks the half-star rule, must land in raw._load_rejects

RUN_SCRIPT = """
import sys
from pathlib import Path
import dagster as dg
from netflix_elt.settings import SHIPPED_DATA, Settings
from netflix_elt.instance import open_instance
from netflix_elt.definitions import build_definitions

settings = Settings(home=Path(sys.argv[1]), source=SHIPPED_DATA, synthetic_genome_tags=8)
defs = build_definitions(settings)
ratings = dg.AssetKey(["raw", "ratings"])
selection = dg.AssetSelection.keys(ratings).without_checks() | dg.AssetSelection.checks(dg.AssetCheckKey(ratings, "rows_reconcile"))
result = dg.materialize(defs.assets, resources=defs.resources, instance=open_instance(settings),
                        selection=selection, partition_key=sys.argv[2], raise_on_error=False)
checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
print("RESULT", result.success, all(c.passed for c in checks) and len(checks) == 1, flush=True)
"""


def write_month(path: Path, month_start_epoch: int, rows: int, bad_rows: int = 0) -> Path:
    """A big month of ratings: distinct (user, movie) pairs, valid ratings, a few rule breakers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(
            f"""copy (select 500000 + i // 1000 as userId, i % 1000 + 1 as movieId,
                             case when i < {bad_rows} then 7.0 else 0.5 + (i % 10) * 0.5 end as rating,
                             {month_start_epoch} + i % 2500000 as timestamp
                      from range({rows}) t(i)) to '{path}' (format csv, header true)"""
        )
    return path


def start_run(settings, month: str) -> subprocess.Popen:
    env = dict(os.environ, **elt_environment(settings))
    return subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(settings.home), month], cwd=str(REPO_ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def warehouse_state(settings) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        per_month = dict(con.execute("select _source_object, count(*) from raw.ratings group by 1").fetchall())
        ledger = con.execute("select object_key, rows_in_file, rows_loaded, rows_rejected from raw._load_ledger where dataset = 'ratings' order by 1").fetchall()
        rejects = dict(con.execute("select object_key, count(*) from raw._load_rejects where dataset = 'ratings' group by 1").fetchall())
    return {"rows": per_month, "ledger": ledger, "rejects": rejects}


def wait_for_step_start(instance, step_key: str, proc: subprocess.Popen, timeout: float = 120) -> tuple[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records
            for r in records:
                if r.event_log_entry.step_key == step_key:
                    return run.run_id, r.event_log_entry.timestamp
        time.sleep(0.05)
    raise AssertionError(f"{step_key} never started")


def test_a_run_killed_mid_load_leaves_table_rejects_and_ledger_consistent_and_the_next_run_is_exact(local_settings):
    settings = local_settings
    store = build_object_store(settings)
    ds = dataset("ratings")
    small = write_month(settings.home / "upload" / "small.csv", 962409600, 3_000)  # 2000-07-01
    store.put_file(small, object_key(ds, SMALL_MONTH))

    instance = open_instance(settings)  # the home's persistent instance, with the pools
    first = start_run(settings, SMALL_MONTH)
    out, err = first.communicate(timeout=180)
    assert "RESULT True True" in out, err[-3000:]
    before = warehouse_state(settings)
    assert before["rows"] == {object_key(ds, SMALL_MONTH): 3_000}

    big = write_month(settings.home / "upload" / "big.csv", 965088000, BIG_ROWS, BAD_ROWS)  # 2000-08-01
    store.put_file(big, object_key(ds, BIG_MONTH))

    victim = start_run(settings, BIG_MONTH)
    run_id, step_started = wait_for_step_start(instance, "raw__ratings", victim)
    time.sleep(max(0.0, step_started + 1.5 - time.time()))  # well inside a load that takes several seconds
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_after = time.time() - step_started
    assert victim.returncode == -signal.SIGKILL
    assert "raw__ratings" not in {k for k, (s, e) in step_windows(instance, run_id).items() if e != float("inf")}, "the load had already finished"

    # The half-done load left nothing behind: table, rejects and ledger are the state before.
    assert warehouse_state(settings) == before
    reconcile = build_warehouse(settings).reconcile(ds)
    assert reconcile["passed"], reconcile

    # The dead run held the warehouse pool; recovery marks it failed and frees the slot.
    assert run_id in instance.event_log_storage.get_concurrency_run_ids()
    assert recover_dead_local_runs(instance) == [run_id]
    assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    assert not instance.event_log_storage.get_concurrency_run_ids()
    assert instance.event_log_storage.get_pool_limits()[0].name == WAREHOUSE_POOL

    started = time.monotonic()
    rerun = start_run(settings, BIG_MONTH)
    out, err = rerun.communicate(timeout=300)
    rerun_seconds = time.monotonic() - started
    assert "RESULT True True" in out, err[-3000:]
    after = warehouse_state(settings)
    assert after["rows"] == {object_key(ds, SMALL_MONTH): 3_000, object_key(ds, BIG_MONTH): BIG_ROWS - BAD_ROWS}
    assert after["rejects"] == {object_key(ds, BIG_MONTH): BAD_ROWS}
    assert after["ledger"] == [
        (object_key(ds, SMALL_MONTH), 3_000, 3_000, 0),
        (object_key(ds, BIG_MONTH), BIG_ROWS, BIG_ROWS - BAD_ROWS, BAD_ROWS),
    ]
    assert build_warehouse(settings).reconcile(ds)["passed"]
    print(f"\nkilled {killed_after:.1f} s into the load of {BIG_ROWS:,} rows; the re-run took {rerun_seconds:.1f} s")
