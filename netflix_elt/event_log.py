"""Dagster's SQLite event log, minus the per-event costs that made ~25 s of every run.

Dagster's SQLite storage pays, for every event it stores, a new SQLAlchemy engine and
connection per shard, a commit, and a WAL checkpoint when the connection closes. A full run
stores thousands of events: one "materialization planned" event per partition and per planned
check when the run is created, one materialization per partition of s3/ratings, raw/ratings
and the partitioned dbt step, and per dbt node a handful of step events. At ~10 ms apiece
that was ~25 s per run at any data size (the shipped small dataset took 59 s end to end). This subclass changes how events are written, never what
is written:

- **Batches in one transaction.** Dagster hands over the planned events of a run and the
  per-partition materializations of a step as one batch (``store_event_batch``) when
  ``DAGSTER_EVENT_BATCH_SIZE`` is set; its SQLite storage then stores them one by one. Here a
  batch of asset and asset-check events is stored with Dagster's own statements in one
  transaction on the run's shard and one on the index shard.
- **Connections kept open.** Dagster creates an engine and opens a connection for every use,
  and in WAL mode (which Dagster turns on) closing the last connection to a file checkpoints
  and removes its WAL: a few fsyncs per event. Here each shard's engine keeps one pooled
  connection (the last few shards' engines are kept). SQLite's WAL lets the webserver, the
  daemon and run workers keep theirs open at the same time; writes still take turns.
- **WAL commits without fsync** (``PRAGMA synchronous=NORMAL``, SQLite's recommended setting
  for WAL). A crash of the process loses nothing; only a power failure or OS crash can lose
  the last committed events, never corrupt the files.
- **The asset-check table is looked up once**, not before every check event.

**Live run pages.** The webserver follows a run with ``watch()``: a watchdog (inotify) handler
that re-reads the run's events whenever the file ``<run_id>.db`` is modified. With Dagster's own
storage every event modifies that file (closing the connection checkpoints the WAL into it);
with connections kept open the events stay in ``<run_id>.db-wal`` and the run page showed only
RUN_ENQUEUED until reloaded. So after a transaction that wrote to a run's shard, this storage
touches ``<run_id>.db`` (``os.utime``: one syscall, no fsync), which watchdog reports as a
modification of exactly the path Dagster's watcher matches. The touch comes after the commit,
so a watcher woken by it always finds the new events (a watcher of the ``-wal`` file could be
woken by the write before SQLite publishes the commit, and miss the last event of a run); the
watcher is Dagster's own, unchanged, in any process. Candidates were measured (docs/event-log.md):
checkpointing the run shard after each write costs 2-6x the kept-open storage, and dropping
the kept-open connections is as slow as the stock storage; the touch costs nothing measurable.

Measured on this 2-core machine (docs/event-log.md): storing one event takes 15-30 ms with the
stock storage, 0.7-1.3 ms here (medians of rounds; the machine is shared).

Enabled in ``dagster.yaml`` (netflix_elt/instance.py); netflix_elt_tests/test_event_log.py
compares what it stores with Dagster's stock storage.

**Dagster private internals this module relies on** (checked against dagster 1.13.27, the
version setup.py pins; ``PRIVATE_API`` below lists them for
netflix_elt_tests/test_event_log.py, which fails naming any that an upgrade removed or changed):

- ``dagster._core.storage.event_log.SqliteEventLogStorage``: its attributes ``_db_lock`` (a
  lock) and ``_initialized_dbs`` (a set), and the methods ``_connect(shard)`` (overridden:
  ``run_connection`` and ``index_connection`` go through it), ``_initdb(engine)``,
  ``conn_string_for_shard(shard_name)``, ``path_for_shard(run_id)``, ``run_connection(run_id)``,
  ``index_transaction()``, ``prepare_insert_event(event)``,
  ``_store_asset_event_tags(conn, events, event_ids)``, ``_store_asset_event(conn, event,
  event_id)``, ``store_asset_check_event(event, event_id)``, ``store_event_batch(events)``,
  ``supports_asset_checks`` (a property), ``wipe()``, ``dispose()``, and ``watch(run_id, cursor,
  callback)`` with ``SqliteEventLogStorageWatchdog`` matching the path ``path_for_shard(run_id)``;
- ``dagster._core.storage.event_log.sqlite.sqlite_event_log.INDEX_SHARD_NAME``;
- ``dagster._core.events.ASSET_EVENTS`` and ``ASSET_CHECK_EVENTS``, and
  ``dagster._core.events.log.EventLogEntry``;
- ``dagster._core.storage.sqlalchemy_compat.db_result`` and
  ``dagster._core.storage.sqlite.SQLITE_BUSY_TIMEOUT_SECONDS``;
- the environment variable ``DAGSTER_EVENT_BATCH_SIZE``, read by
  ``dagster._core.instance.utils._get_event_batch_size``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as db
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool

# Read by Dagster each time it logs planned events and per-partition materializations: with a
# batch size above 0 they arrive here as batches. 1,000 bounds one transaction.
BATCH_SIZE = "1000"
# Engines kept: the index shard and the runs a process is writing or reading lately.
MAX_ENGINES = 16

# The Dagster version the private names below were checked against (setup.py pins it), and the
# names: module -> {name: the parameters of a callable, "property", or None (just present)}.
CHECKED_AGAINST_DAGSTER = "1.13.27"
PRIVATE_API: dict[str, dict[str, tuple[str, ...] | str | None]] = {
    "dagster._core.storage.event_log.SqliteEventLogStorage": {
        "_connect": ("self", "shard"),
        "_initdb": ("self", "engine", "for_index_shard"),
        "conn_string_for_shard": ("self", "shard_name"),
        "path_for_shard": ("self", "run_id"),
        "run_connection": ("self", "run_id"),
        "index_connection": ("self",),
        "index_transaction": ("self",),
        "prepare_insert_event": ("self", "event"),
        "_store_asset_event_tags": ("self", "conn", "events", "event_ids"),
        "_store_asset_event": ("self", "conn", "event", "event_id"),
        "store_asset_check_event": ("self", "event", "event_id"),
        "store_event_batch": ("self", "events"),
        "supports_asset_checks": "property",
        "wipe": ("self",),
        "dispose": ("self",),
        "watch": ("self", "run_id", "cursor", "callback"),
    },
    "dagster._core.storage.event_log.sqlite.sqlite_event_log": {
        "INDEX_SHARD_NAME": None,
        "SqliteEventLogStorageWatchdog": ("self", "event_log_storage", "run_id", "callback", "cursor", "kwargs"),
    },
    "dagster._core.events": {"ASSET_EVENTS": None, "ASSET_CHECK_EVENTS": None},
    "dagster._core.events.log": {"EventLogEntry": None},
    "dagster._core.storage.sqlalchemy_compat": {"db_result": ("conn", "query")},
    "dagster._core.storage.sqlite": {"SQLITE_BUSY_TIMEOUT_SECONDS": None},
    "dagster._core.instance.utils": {"_get_event_batch_size": ()},
}


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data=None):
        os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", BATCH_SIZE)
        self._engines: dict[str, db.engine.Engine] = {}
        self._has_check_table = False
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "BatchingSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)  # the parent's names its own class

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's _connect (same lock, same engine arguments, same lazy schema creation),
        # with the engine kept per shard instead of created and disposed for every use.
        with self._db_lock:
            engine = self._engines.pop(shard, None)  # re-inserted below: least recently used first
            if engine is None:
                engine = db.create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=QueuePool,
                    pool_size=1,
                    max_overflow=4,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
                )
                db.event.listen(engine, "connect", _commit_without_fsync)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                if len(self._engines) >= MAX_ENGINES:  # a long-lived webserver reads many runs' shards
                    self._engines.pop(next(iter(self._engines))).dispose()
            self._engines[shard] = engine
            with engine.connect() as conn:
                sqlite = conn.connection.dbapi_connection
                changes_before = sqlite.total_changes
                with conn.begin():
                    yield conn
                wrote = sqlite.total_changes != changes_before
            if wrote and shard != INDEX_SHARD_NAME:
                self._signal_watchers(shard)

    def _signal_watchers(self, run_id: str) -> None:
        """Tell the watchers of a run (``watch()``, in any process) that it has new events.

        Dagster's watcher re-reads a run when watchdog reports ``<run_id>.db`` modified; the
        events are committed to ``<run_id>.db-wal``, so the file itself is touched, after the
        commit (see the module docstring)."""
        try:
            os.utime(self.path_for_shard(run_id))
        except FileNotFoundError:  # wiped meanwhile
            pass

    def dispose(self) -> None:
        super().dispose()
        self._dispose_engines()

    def wipe(self) -> None:
        # Dagster deletes the run shards' files: connections kept open would go on reading and
        # writing the deleted files.
        with self._db_lock:
            self._dispose_engines()
        super().wipe()

    def _dispose_engines(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    @property
    def supports_asset_checks(self) -> bool:
        # Dagster inspects the index schema before storing every check event; a table that
        # exists stays (migrations only add), so once seen it is not looked up again.
        if not self._has_check_table:
            self._has_check_table = super().supports_asset_checks
        return self._has_check_table

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1 or not all(_is_asset_event(e) or _is_check_event(e) for e in events):
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
            assets = [i for i, event in enumerate(events) if _is_asset_event(event)]
            self._store_asset_event_tags(conn, [events[i] for i in assets], [event_ids[i] for i in assets])
            # The asset-key row keeps only the latest event of each kind (its columns are
            # overwritten, never merged), so applying the last one per asset and kind ends in
            # the state applying all of them in order would: one update instead of hundreds.
            last = {(events[i].dagster_event.asset_key, events[i].dagster_event_type): i for i in assets}
            for i in sorted(last.values()):
                self._store_asset_event(conn, events[i], event_ids[i])
        for event, event_id in zip(events, event_ids):
            if _is_check_event(event):  # the check's execution row, as Dagster's store_event writes it
                self.store_asset_check_event(event, event_id)


def _commit_without_fsync(dbapi_connection, _connection_record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _is_asset_event(event: EventLogEntry) -> bool:
    return bool(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.dagster_event.asset_key)


def _is_check_event(event: EventLogEntry) -> bool:
    return bool(event.is_dagster_event and event.dagster_event_type in ASSET_CHECK_EVENTS)
