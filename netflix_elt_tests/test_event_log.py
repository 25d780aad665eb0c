"""The batching event log stores exactly what Dagster's own SQLite event log stores."""

import importlib
import inspect
import logging
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from netflix_elt.event_log import CHECKED_AGAINST_DAGSTER, PRIVATE_API, BatchingSqliteEventLogStorage
from netflix_elt.instance import ensure_dagster_home

months = dg.MonthlyPartitionsDefinition(start_date="2019-01-01", end_date="2021-01-01")


@dg.asset(partitions_def=months, backfill_policy=dg.BackfillPolicy.single_run())
def monthly(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"months": len(context.partition_keys)})


@dg.asset(deps=[monthly])
def summary() -> None:
    pass


@dg.asset_check(asset=summary)
def summary_is_fine() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    keys = months.get_partition_keys()
    return dg.materialize(
        [monthly, summary, summary_is_fine],
        instance=instance,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )


def _event_trace(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    return [
        (r.event_log_entry.dagster_event_type, r.asset_key, r.partition_key)
        for r in instance.get_records_for_run(run_id).records
        if r.event_log_entry.is_dagster_event and r.asset_key is not None
    ]


def _check_state(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    records = instance.event_log_storage.get_asset_check_execution_history(summary_is_fine.check_key, limit=10)
    return [(r.status, r.run_id == run_id, r.event.dagster_event_type) for r in records]


def _asset_state(instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str) -> dict:
    latest = instance.get_latest_materialization_event(key)
    (record,) = instance.get_asset_records([key])
    return {
        "materialized": sorted(instance.get_materialized_partitions(key)) if key == monthly.key else None,
        "latest_partition": latest.dagster_event.partition if latest else None,
        "latest_is_this_run": latest.run_id == run_id,
        "last_run_is_this_run": record.asset_entry.last_run_id == run_id,
    }


@pytest.fixture
def our_instance(local_settings, monkeypatch):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(local_settings))) as instance:
        yield instance


def test_a_partition_range_run_is_stored_in_batches_with_the_same_events_and_asset_state(our_instance, tmp_path, monkeypatch):
    assert isinstance(our_instance.event_log_storage, BatchingSqliteEventLogStorage)
    batched, one_by_one = [], []
    original_batch = BatchingSqliteEventLogStorage.store_event_batch
    original_one = BatchingSqliteEventLogStorage.store_event
    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch",
                        lambda self, events: (batched.append(len(events)), original_batch(self, events)))
    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event",
                        lambda self, event: (one_by_one.append(event.dagster_event_type), original_one(self, event)))
    ours = _run(our_instance)

    (tmp_path / "stock").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "stock")) as stock_instance:
        stock = _run(stock_instance)
        stock_trace = _event_trace(stock_instance, stock.run_id)
        stock_state = {k: _asset_state(stock_instance, k, stock.run_id) for k in (monthly.key, summary.key)}
        stock_checks = _check_state(stock_instance, stock.run_id)

    # Not one by one: the run's planned events in one batch (24 months, summary and its check),
    # the 24 monthly materializations in another; only summary's own materialization alone.
    assert sorted(batched) == [24, 26]
    assert not {dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED} & set(one_by_one)
    assert one_by_one.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 1
    assert _event_trace(our_instance, ours.run_id) == stock_trace
    assert _check_state(our_instance, ours.run_id) == stock_checks
    assert stock_checks == [(AssetCheckExecutionRecordStatus.SUCCEEDED, True, dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
    assert {k: _asset_state(our_instance, k, ours.run_id) for k in (monthly.key, summary.key)} == stock_state
    assert stock_state[monthly.key]["materialized"] == months.get_partition_keys()


def test_event_log_connections_commit_in_wal_mode_without_waiting_for_fsync_and_stay_open(our_instance):
    storage = our_instance.event_log_storage
    with storage.index_connection() as conn:
        assert conn.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("pragma synchronous").scalar() == 1  # NORMAL
        first = conn.connection.dbapi_connection
    with storage.index_connection() as conn:
        assert conn.connection.dbapi_connection is first  # not closed (closing checkpoints the WAL)


def test_two_storages_on_the_same_files_see_each_others_events(our_instance, local_settings):
    """As the webserver, the daemon and a run worker do, each with its connections open."""
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(local_settings))) as other:
        run = _run(our_instance)
        assert other.get_run_by_id(run.run_id) is not None
        assert len(other.get_records_for_run(run.run_id).records) == len(our_instance.get_records_for_run(run.run_id).records)
        later = _run(other)
        assert our_instance.get_latest_materialization_event(summary.key).run_id == later.run_id


def test_event_log_keeps_a_bounded_number_of_engines(our_instance):
    storage = our_instance.event_log_storage
    for n in range(40):
        with storage.run_connection(f"run-{n}"):
            pass
    assert len(storage._engines) <= 16


def _message(run_id: str, text: str) -> EventLogEntry:
    return EventLogEntry(error_info=None, level=logging.INFO, user_message=text, run_id=run_id,
                         timestamp=time.time(), step_key=None, job_name=None, dagster_event=None)


WRITER = """
import sys, time, logging
from dagster._core.events.log import EventLogEntry
from netflix_elt.event_log import BatchingSqliteEventLogStorage

storage = BatchingSqliteEventLogStorage(sys.argv[1])
for n in range(3):
    storage.store_event(EventLogEntry(error_info=None, level=logging.INFO, user_message=f"event {n}", run_id=sys.argv[2],
                                      timestamp=time.time(), step_key=None, job_name=None, dagster_event=None))
    time.sleep(0.2)
print("stored", flush=True)
sys.stdin.read()  # the storage and its connections stay open until the test is done
"""


def test_a_watcher_receives_the_events_another_process_stores_while_its_connections_stay_open(tmp_path):
    """As the UI's run page: the webserver watches a run that a run worker is writing."""
    base_dir, run_id = str(tmp_path / "runs"), "a-run-written-elsewhere"
    watcher = BatchingSqliteEventLogStorage(base_dir)
    received, all_three = [], threading.Event()

    def callback(event: EventLogEntry, cursor: str) -> None:
        received.append(event.user_message)
        if len(received) == 3:
            all_three.set()

    watcher.watch(run_id, None, callback)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, base_dir, run_id],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "stored\n"
        assert all_three.wait(5), f"the watcher received {received} of 3 events"
        assert writer.poll() is None  # the writer had not closed anything
        assert received == ["event 0", "event 1", "event 2"]
    finally:
        writer.communicate("", timeout=30)
        watcher.end_watch(run_id, callback)
        watcher.dispose()


def test_stores_that_read_or_write_nothing_do_not_wake_the_watchers(tmp_path):
    storage = BatchingSqliteEventLogStorage(str(tmp_path / "runs"))
    signals = []
    storage._signal_watchers = signals.append
    storage.store_event(_message("run-1", "hello"))
    storage.get_records_for_run("run-1")  # as a watcher re-reading the run: no signal, no loop
    with storage.index_transaction() as conn:
        conn.exec_driver_sql("select 1")
    assert signals == ["run-1"]
    storage.dispose()


def test_wiping_the_event_log_forgets_every_run_although_connections_were_kept_open(tmp_path):
    storage = BatchingSqliteEventLogStorage(str(tmp_path / "runs"))
    storage.store_event(_message("run-1", "before the wipe"))
    assert len(storage.get_records_for_run("run-1").records) == 1
    storage.wipe()
    assert storage.get_records_for_run("run-1").records == []
    storage.store_event(_message("run-1", "after the wipe"))
    other = BatchingSqliteEventLogStorage(str(tmp_path / "runs"))
    assert [r.event_log_entry.user_message for r in other.get_records_for_run("run-1").records] == ["after the wipe"]
    storage.dispose()
    other.dispose()


def test_every_private_dagster_name_the_event_log_relies_on_is_still_there_with_the_same_parameters(tmp_path, monkeypatch):
    problems = []
    for module_path, names in PRIVATE_API.items():
        try:
            owner = importlib.import_module(module_path)
        except ImportError:
            module, _, attribute = module_path.rpartition(".")
            owner = getattr(importlib.import_module(module), attribute, None)
        for name, expected in names.items():
            found = inspect.getattr_static(owner, name, None)
            if found is None:
                problems.append(f"{module_path}.{name} is gone")
            elif expected == "property":
                if not isinstance(found, property):
                    problems.append(f"{module_path}.{name} is no longer a property")
            elif expected is not None:
                target = found.__init__ if inspect.isclass(found) else getattr(owner, name)
                got = tuple(inspect.signature(inspect.unwrap(target)).parameters)
                if got[: len(expected)] != expected:
                    problems.append(f"{module_path}.{name}{got} != {expected}")
    assert not problems, "Dagster changed what netflix_elt/event_log.py relies on:\n" + "\n".join(problems)

    # What those names do, as far as this storage relies on it.
    from dagster._core.instance.utils import _get_event_batch_size
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorageWatchdog

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "7")
    assert _get_event_batch_size() == 7
    storage = BatchingSqliteEventLogStorage(str(tmp_path / "runs"))
    assert hasattr(storage._db_lock, "acquire") and isinstance(storage._initialized_dbs, set)
    watchdog = SqliteEventLogStorageWatchdog(storage, "run-1", lambda *_: None, None)
    assert list(watchdog.patterns) == [storage.path_for_shard("run-1")]  # the file the storage touches
    assert hasattr(watchdog, "on_modified")
    storage.dispose()


def test_the_private_dagster_names_were_checked_against_the_installed_dagster():
    assert dg.__version__ == CHECKED_AGAINST_DAGSTER, (
        f"dagster {dg.__version__} is installed; netflix_elt/event_log.py was checked against {CHECKED_AGAINST_DAGSTER}: "
        "re-check the private names its docstring lists, then update CHECKED_AGAINST_DAGSTER and the docstring"
    )
