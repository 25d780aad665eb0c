"""The Dagster instance of a ``NETFLIX_ELT_HOME``: its ``dagster.yaml``, and the one-writer rule.

DuckDB allows ONE process at a time to open a database file for writing (and no reader in
another process while it does), and Dagster runs each run in its own process. So every op
that opens the warehouse file (raw loads, the four ``@dbt_assets``, the ``rows_reconcile``
checks, the dashboard) declares ``pool="duckdb_warehouse"`` and this instance gives every
pool a limit of 1 at *op* granularity: a step waits for the pool's slot inside its run (the
in-process executor claims it from the instance's storage), runs, and frees it as soon as it
finishes. Runs therefore never fail on the file lock, whoever launched them (the sensor, a
backfill, the UI, ``netflix-elt run``), and each holds the lock only for the steps that touch
the file: extracts, object-store work and waiting runs hold nothing.

Why pools and not only the run queue: a run-level tag limit serialises whole runs (a run that
spends a minute extracting would hold the warehouse all that time) and only applies to runs
that go through the queue, while ``netflix-elt run`` executes in the calling process. Op
pools are enforced by the executor itself, so they hold for every run on this instance.

Why not a retry on "could not set lock": retries turn contention into failed attempts,
arbitrary sleeps and noisy logs; a pool turns it into an orderly wait.
"""

from __future__ import annotations

import os
from pathlib import Path

from netflix_elt.processes import pid_alive
from netflix_elt.settings import Settings

WAREHOUSE_POOL = "duckdb_warehouse"

INSTANCE_YAML = f"""\
# The Dagster instance of this NETFLIX_ELT_HOME (written by netflix-elt; edit freely, it is
# not overwritten once it exists).
#
# Storage: SQLite files under this folder (runs, event logs, schedules/sensor cursors), so run
# history, asset status and sensor cursors survive `netflix-elt dev` restarts.
#
# Production: point the instance at Postgres instead (pip install dagster-postgres), so the
# webserver, the daemon and run workers on several hosts share one database:
#
#   storage:
#     postgres:
#       postgres_db:
#         hostname: {{env: DAGSTER_PG_HOST}}
#         username: {{env: DAGSTER_PG_USER}}
#         password: {{env: DAGSTER_PG_PASSWORD}}
#         db_name: dagster
#         port: 5432
#
# The pools below work unchanged on Postgres (slots live in the event log database). With
# NETFLIX_ELT_TARGET=prod the warehouse is Snowflake, which takes concurrent writers; the pool
# limit can then be raised (`dagster instance concurrency set {WAREHOUSE_POOL} 4`) or the pool
# left at 1 for the simplest ordering guarantees.

telemetry:
  enabled: false

# The daemon evaluates each asset's FreshnessPolicy (netflix_elt/asset_labels.py: a month's
# ratings by 06:00 UTC on the 2nd, what is built from them by 08:00), so the UI shows a stale
# asset as failing its freshness, not only as old.
freshness:
  enabled: true

# Dagster's default SQLite storage, spelled out so the event log can be the batching subclass
# (netflix_elt/event_log.py): a run over all ratings months writes ~2,300 per-partition asset
# events, and stored one by one they cost ~25 s of every full run.
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config:
    base_dir: "{{home}}/history"
event_log_storage:
  module: netflix_elt.event_log
  class: BatchingSqliteEventLogStorage
  config:
    base_dir: "{{home}}/history/runs"
schedule_storage:
  module: dagster._core.storage.schedules
  class: SqliteScheduleStorage
  config:
    base_dir: "{{home}}/schedules"

concurrency:
  # One writer at a time: DuckDB allows one writing process per database file. Every op that
  # opens the warehouse file is in the pool "{WAREHOUSE_POOL}" (pool= on the asset / check);
  # with op granularity a step waits for the slot inside its run instead of failing on the
  # file lock, and frees it the moment it finishes.
  # The run queue also knows the pools: it launches a run only when the pool has room for its
  # first warehouse step, plus this many runs ahead (their process starts while another run
  # holds the file, hiding the launch time) - the rest wait QUEUED, costing nothing.
  pools:
    default_limit: 1
    granularity: op
    op_granularity_run_buffer: 1
  runs:
    max_concurrent_runs: 10  # queued runs beyond this wait in the run queue (the daemon drains it)

run_monitoring:
  enabled: true
  # A run worker that dies (SIGKILL, OOM) is marked failed by its code server; its pool slot
  # is then given back after this many seconds, so the next run does not wait for ever.
  free_slots_after_run_end_seconds: 15
  start_timeout_seconds: 180
"""


def instance_yaml(dagster_home: Path) -> str:
    """This project's ``dagster.yaml`` for one Dagster home (its storage lives inside it)."""
    return INSTANCE_YAML.replace("{home}", dagster_home.as_posix())


def ensure_dagster_home(settings: Settings) -> Path:
    """Create ``<home>/dagster_home`` with this project's ``dagster.yaml`` (kept if present)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(instance_yaml(home))
    return home


def open_instance(settings: Settings):
    """The persistent Dagster instance of this home (sets ``DAGSTER_HOME`` for child processes)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(ensure_dagster_home(settings))
    return dg.DagsterInstance.get()


def _run_worker_pid(instance, run_id: str) -> int | None:
    """The pid the in-process executor recorded for a run ("Executing steps in process")."""
    import dagster as dg

    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in records:
        data = record.event_log_entry.dagster_event.event_specific_data
        pid = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid is not None:
            return int(pid.value)
    return None


def recover_dead_local_runs(instance) -> list[str]:
    """Mark runs whose worker process died without a trace (SIGKILL, OOM, power cut) as failed,
    and give back the pool slots they held. Returns their run ids.

    Runs launched by a code server (UI, sensor, backfill) are handled by Dagster itself: the
    code server reports the dead worker and the daemon frees its slots after
    ``free_slots_after_run_end_seconds``. A headless ``netflix-elt run`` killed the same way has
    no one watching it; this looks at the pid it recorded. Only for the embedded default,
    where every run worker is on this host.
    """
    import dagster as dg

    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        run = record.dagster_run
        pid = _run_worker_pid(instance, run.run_id)
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        instance.report_engine_event(f"run worker (pid {pid}) is gone: marking the run failed", run)
        instance.report_run_failed(run)
        dead.append(run.run_id)
    storage = instance.event_log_storage
    holders = list(storage.get_concurrency_run_ids()) if storage.supports_global_concurrency_limits else []
    if holders:
        for record in instance.get_run_records(dg.RunsFilter(run_ids=holders)):
            if record.dagster_run.is_finished:
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return dead
