"""Dagster's SQLite event log, writing a batch of asset events in two transactions.

A run over the whole ratings history touches ~380 monthly partitions of three partitioned
assets (s3/ratings, raw/ratings, fct_ratings). Dagster records one "materialization planned"
event per partition when the run is created and one materialization per partition when each
step ends: ~2,300 events. Its SQLite storage stores each with its own engine, connections and
commits (~10 ms apiece on a 2-core machine), which made ~25 s of every full run, at any data
size. Dagster already hands such events over as one batch (``store_event_batch``) when
``DAGSTER_EVENT_BATCH_SIZE`` is set; its SQLite storage then falls back to one ``store_event``
per event. This subclass stores the batch as Dagster's own ``store_event`` would, event by
event and with the same statements, but in one transaction on the run's shard and one on the
index shard.

Only batches of asset events (what Dagster batches) take this path; anything else goes
through the inherited per-event code. Enabled in ``dagster.yaml`` (netflix_elt/instance.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result

# Read by Dagster each time it logs planned events and per-partition materializations: with a
# batch size above 0 they arrive here as batches. 1,000 bounds one transaction.
BATCH_SIZE = "1000"


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data=None):
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE)
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "BatchingSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)  # the parent's names its own class

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1 or not all(_is_asset_event(event) for event in events):
            return super().store_event_batch(events)
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(run_ids.pop()) as conn:  # the run's own shard: its event log
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:  # the cross-run index: asset history and status
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset-key row keeps only the latest event of each kind (its columns are
            # overwritten, never merged), so applying the last one per asset and kind ends in
            # the state applying all of them in order would: one update instead of hundreds.
            last = {(e.dagster_event.asset_key, e.dagster_event_type): i for i, e in enumerate(events)}
            for i in sorted(last.values()):
                self._store_asset_event(conn, events[i], event_ids[i])


def _is_asset_event(event: EventLogEntry) -> bool:
    return bool(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.dagster_event.asset_key)
