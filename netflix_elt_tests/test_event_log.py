"""The batching event log stores exactly what Dagster's own SQLite event log stores."""

import dagster as dg
import pytest
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from netflix_elt.event_log import BatchingSqliteEventLogStorage
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
