"""The batching event log stores exactly what Dagster's own SQLite event log stores."""

import dagster as dg
import pytest

from netflix_elt.event_log import BatchingSqliteEventLogStorage
from netflix_elt.instance import ensure_dagster_home

months = dg.MonthlyPartitionsDefinition(start_date="2019-01-01", end_date="2021-01-01")


@dg.asset(partitions_def=months, backfill_policy=dg.BackfillPolicy.single_run())
def monthly(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"months": len(context.partition_keys)})


@dg.asset(deps=[monthly])
def summary() -> None:
    pass


def _run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    keys = months.get_partition_keys()
    return dg.materialize(
        [monthly, summary],
        instance=instance,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )


def _event_trace(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    return [
        (r.event_log_entry.dagster_event_type, r.asset_key, r.partition_key)
        for r in instance.get_records_for_run(run_id).records
        if r.event_log_entry.is_dagster_event and r.asset_key is not None
    ]


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
    batched = []
    original = BatchingSqliteEventLogStorage.store_event_batch
    monkeypatch.setattr(
        BatchingSqliteEventLogStorage, "store_event_batch", lambda self, events: (batched.append(len(events)), original(self, events))
    )
    ours = _run(our_instance)

    (tmp_path / "stock").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "stock")) as stock_instance:
        stock = _run(stock_instance)
        stock_trace = _event_trace(stock_instance, stock.run_id)
        stock_state = {k: _asset_state(stock_instance, k, stock.run_id) for k in (monthly.key, summary.key)}

    # Not one by one: the run's planned events in one batch (24 months + summary), the 24
    # monthly materializations in another.
    assert sorted(batched) == [24, 25]
    assert _event_trace(our_instance, ours.run_id) == stock_trace
    assert {k: _asset_state(our_instance, k, ours.run_id) for k in (monthly.key, summary.key)} == stock_state
    assert stock_state[monthly.key]["materialized"] == months.get_partition_keys()
