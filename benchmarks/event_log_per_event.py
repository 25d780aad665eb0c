"""Per-event cost of storing Dagster events: the stock SQLite event log against this project's
(netflix_elt/event_log.py), and the candidates that were weighed for live run pages.

    python benchmarks/event_log_per_event.py [rounds]

Replays a small asset run's events (21) ten times per run shard with ``store_event``, one by
one (the shard is created outside the timing), 5 runs per storage; prints the median ms per
event of each round. Rounds alternate storages: the machine's speed drifts (docs/event-log.md).
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.pop("DAGSTER_EVENT_BATCH_SIZE", None)

import dagster as dg  # noqa: E402
import sqlalchemy as db  # noqa: E402
from dagster._core.storage.event_log import SqliteEventLogStorage  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from netflix_elt.event_log import BatchingSqliteEventLogStorage as Ours, _commit_without_fsync  # noqa: E402


class KeptOpenNoSignal(Ours):
    """The storage before the live-page fix (and candidate (a), a watcher of the -wal file,
    which changes nothing on the writer's side)."""

    def _signal_watchers(self, run_id: str) -> None:
        pass


class CheckpointAfterWrite(KeptOpenNoSignal):
    """Candidate (b): checkpoint the run's shard after each transaction that wrote to it."""

    @contextmanager
    def _connect(self, shard):
        with super()._connect(shard) as conn:
            sqlite = conn.connection.dbapi_connection
            before = sqlite.total_changes
            yield conn
        if shard != "index" and sqlite.total_changes != before:
            sqlite.execute("PRAGMA wal_checkpoint(PASSIVE)")


class NoKeptConnections(KeptOpenNoSignal):
    """Candidate (c): an engine per use, as Dagster does (batching and synchronous=NORMAL kept)."""

    @contextmanager
    def _connect(self, shard):
        with self._db_lock:
            engine = db.create_engine(self.conn_string_for_shard(shard), poolclass=NullPool, connect_args={"timeout": 15})
            db.event.listen(engine, "connect", _commit_without_fsync)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
            engine.dispose()


STORAGES = {
    "stock (Dagster's SqliteEventLogStorage)": SqliteEventLogStorage,
    "ours before (kept open, no signal) = (a)": KeptOpenNoSignal,
    "(b) checkpoint after each write": CheckpointAfterWrite,
    "(c) no kept connections": NoKeptConnections,
    "ours after (kept open + touch <run_id>.db)": Ours,
}


def sample_events():
    @dg.asset
    def a():
        return 1

    @dg.asset(deps=[a])
    def b():
        pass

    with tempfile.TemporaryDirectory() as d, dg.DagsterInstance.local_temp(d) as instance:
        run = dg.materialize([a, b], instance=instance)
        return [r.event_log_entry for r in instance.get_records_for_run(run.run_id).records]


def per_event_ms(cls, entries, runs=5, repeat=10) -> float:
    with tempfile.TemporaryDirectory() as d:
        storage = cls(d)
        times = []
        for i in range(runs):
            run_id = f"run{i:04d}"
            storage.store_event(entries[0]._replace(run_id=run_id))
            events = [e._replace(run_id=run_id) for e in entries] * repeat
            started = time.perf_counter()
            for event in events:
                storage.store_event(event)
            times.append((time.perf_counter() - started) / len(events))
        storage.dispose()
    return statistics.median(times) * 1000


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    logging.disable(logging.CRITICAL)
    entries = sample_events()
    results = {name: [] for name in STORAGES}
    for _ in range(rounds):
        for name, cls in STORAGES.items():
            results[name].append(per_event_ms(cls, entries))
    for name, values in results.items():
        print(f"{name:45s} median {statistics.median(values):6.2f} ms/event  rounds " + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
