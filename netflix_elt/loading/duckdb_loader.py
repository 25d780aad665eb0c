"""Load delivered objects into DuckDB's ``raw`` schema: idempotent, atomic, nothing lost.

The contract mirrors Snowflake's ``COPY INTO`` with load history, so both warehouses behave
the same way to the rest of the pipeline:

- an object already loaded with the same ETag (or the same bytes) is skipped;
- loading an object again replaces exactly that object's rows (``_source_object``);
- a second object with bytes identical to one already loaded (or to another object of the
  same batch) is recorded as a duplicate delivery and loads nothing;
- rows that do not parse or break a rule go to ``raw._load_rejects`` with the object, line
  number, raw text and reason; the valid rows load;
- an object whose loaded and rejected rows do not add up to its records after the fast
  (parallel) read is checked with a second, complete count and, if the reader fell short,
  read again serially (``_read_again``: DuckDB 2.0.1's parallel reader can stop early);
- an object that cannot be loaded as a whole (empty, wrong header, truncated) fails with a
  message naming it, and the other objects load;
- objects load in batches of up to ``MAX_BATCH_BYTES``, each batch one transaction (table
  rows, rejects and the ledger together), so a killed run leaves every batch either in its
  old state or in its new one, never half loaded.

All row work happens inside DuckDB's CSV reader (parallel, streaming), one statement per
batch for all objects with the same columns; Python only touches whole-file facts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import duckdb

from netflix_elt.loading.inspect_file import DeliveryError, FileFacts, inspect_file, validate_delivery
from netflix_elt.movielens import CSV_READ_OPTIONS, LOAD_METADATA_COLUMNS, Dataset
from netflix_elt.resources.object_store import ObjectStore, ObjectStoreError, StoredObject

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
LEDGER = f"{RAW_SCHEMA}._load_ledger"
REJECTS = f"{RAW_SCHEMA}._load_rejects"
MAX_LOCATED_FILE_BYTES = 1 << 30  # above this, rule-rejects keep their values but no line number
MAX_BATCH_BYTES = 1 << 30  # objects of one batch: on local disk at once (S3 downloads), one transaction


def q(identifier: str) -> str:
    """Quote an identifier for DuckDB; a quote inside the name cannot end the identifier."""
    return '"' + identifier.replace('"', '""') + '"'


def raw_table(ds: Dataset) -> str:
    return f"{RAW_SCHEMA}.{q(ds.name)}"


def raw_table_ddl(ds: Dataset) -> str:
    cols = [f"{q(c.name)} {c.sql_type}" for c in ds.columns]
    cols += [f"{q(name)} {sql_type}" for name, sql_type in LOAD_METADATA_COLUMNS]
    return f"create table if not exists {raw_table(ds)} ({', '.join(cols)})"


BOOKKEEPING_DDL = (
    f"create schema if not exists {RAW_SCHEMA}",
    f"""create table if not exists {LEDGER} (
        dataset varchar not null, object_key varchar not null, etag varchar, content_hash varchar,
        partition_key varchar, bytes bigint, rows_in_file bigint, rows_loaded bigint,
        rows_rejected bigint, status varchar not null, duplicate_of varchar,
        loaded_at timestamp not null, run_id varchar)""",
    f"""create table if not exists {REJECTS} (
        dataset varchar not null, object_key varchar not null, etag varchar, line_number bigint,
        raw_line varchar, reason varchar not null, rejected_at timestamp not null)""",
)


def ensure_raw_schema(con: duckdb.DuckDBPyConnection, datasets) -> None:
    for statement in BOOKKEEPING_DDL:
        con.execute(statement)
    for ds in datasets:
        con.execute(raw_table_ddl(ds))


def sql_literal(text: str) -> str:
    """A DuckDB string literal: a quote inside cannot end it."""
    return "'" + text.replace("'", "''") + "'"


def _reader_sql(ds: Dataset, file_columns: tuple[str, ...], options: str) -> str:
    """``read_csv`` with explicit types: a cast failure *is* a reject, with its line number.

    Columns are declared in the file's own order (the reader assigns by position), each with
    its catalogue type; columns the catalogue does not know are read as text and dropped.
    ``options`` say what to do with the rows the reader refuses (keep them, or skip them).
    """
    types = {c.name: c.reader_type for c in ds.columns}
    columns = ", ".join(f"{sql_literal(name)}: '{types.get(name, 'VARCHAR')}'" for name in file_columns)
    return f"read_csv(?, {CSV_READ_OPTIONS}, columns={{{columns}}}, {options})"


INTEGER_MAX = {"INTEGER": 2**31 - 1}  # the stored integer types narrower than their reader's


def _invalid_reason_sql(ds: Dataset) -> str:
    """A CASE expression naming the first rule a typed row breaks, NULL for a valid row."""
    whens = [f"when {q(c.name)} is null then 'missing {c.name}'" for c in ds.columns if not c.nullable]
    # Read wider than stored (ids read as UINTEGER, stored as INTEGER): a value that fits the
    # reader but not the table is a rejected row, not a failed insert.
    whens += [
        f"when {q(c.name)} > {INTEGER_MAX[c.sql_type]} then '{c.name} out of range for {c.sql_type}'"
        for c in ds.columns if c.reader_type != c.sql_type and c.sql_type in INTEGER_MAX
    ]
    whens += [
        f"when not coalesce({check}, true) then '{col} breaks rule: {check.replace(chr(39), chr(39) * 2)}'"
        for col, check in ds.checks
    ]
    return f"case {' '.join(whens)} else null end" if whens else "null"


@dataclass(frozen=True)
class LoadOutcome:
    dataset: str
    key: str
    etag: str
    status: str  # loaded | unchanged | duplicate
    bytes: int
    rows_in_file: int
    rows_loaded: int
    rows_rejected: int
    content_hash: str | None = None
    duplicate_of: str | None = None
    ignored_columns: tuple[str, ...] = ()
    read_again: bool = False  # the fast read fell short and the object was read again serially


class _LedgerRow(NamedTuple):
    etag: str
    content_hash: str
    status: str


@dataclass(frozen=True)
class _Delivery:
    """An object of a batch that passed the whole-file checks, with its local copy."""

    obj: StoredObject
    path: Path
    facts: FileFacts
    file_columns: tuple[str, ...]


def _batches(objects: list[StoredObject], max_bytes: int):
    """Consecutive runs of objects of at most ``max_bytes`` together (an object larger than
    that is a batch of its own): what a batch needs on local disk and in one transaction."""
    batch, size = [], 0
    for obj in objects:
        if batch and size + obj.size > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(obj)
        size += obj.size
    if batch:
        yield batch


class DuckDBRawLoader:
    """Loads objects of one dataset through one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, store: ObjectStore, run_id: str | None = None):
        self.con = con
        self.store = store
        self.run_id = run_id

    def load(self, ds: Dataset, obj: StoredObject, partition_key: str | None = None) -> LoadOutcome:
        """One object, as a batch of one; a whole-object problem raises ``DeliveryError``."""
        outcomes, failures = self.load_objects(ds, [obj], lambda _: partition_key)
        if failures:
            raise DeliveryError(failures[0])
        return outcomes[0]

    def load_objects(self, ds: Dataset, objects: Iterable[StoredObject],
                     partition_of: Callable[[StoredObject], str | None]) -> tuple[list[LoadOutcome], list[str]]:
        """Load objects in batches; return their outcomes (in the given order) and a message per
        object that could not be loaded as a whole (the others load)."""
        objects = list(objects)
        ledger = self._ledger_rows(ds, [o.key for o in objects])
        outcomes, failures, pending = {}, [], []
        for obj in objects:
            previous = ledger.get(obj.key)
            if previous and previous.etag == obj.etag and previous.status in ("loaded", "duplicate"):
                # Same object version as last time: like Snowflake's load history, a no-op.
                outcomes[obj.key] = LoadOutcome(ds.name, obj.key, obj.etag, "unchanged", obj.size, 0, 0, 0, previous.content_hash)
            else:
                pending.append(obj)
        orphans, failed = self._duplicates_of(ds, pending, {o.key for o in objects}) if pending else ([], [])
        failures += failed
        if orphans:
            ledger.update(self._ledger_rows(ds, [o.key for o in orphans]))
        # After their twins, so a twin's new bytes are what each is compared with.
        for batch in _batches(pending + orphans, MAX_BATCH_BYTES):
            done, failed = self._load_batch(ds, batch, ledger, partition_of)
            outcomes.update((o.key, o) for o in done)
            failures += failed
        return [outcomes[o.key] for o in objects + orphans if o.key in outcomes], failures

    def _duplicates_of(self, ds: Dataset, pending: list[StoredObject], given: set[str]) -> tuple[list[StoredObject], list[str]]:
        """Objects recorded as duplicates of one about to be loaded again. A duplicate's bytes
        live in the table only as its twin's rows; if the twin now holds other bytes, the
        duplicate must load its own, or its rows are gone. Loaded again with the twin, each is
        a duplicate again if the twin's bytes did not change."""
        keys = [key for (key,) in self.con.execute(
            f"select object_key from {LEDGER} where dataset = ? and status = 'duplicate' "
            "and duplicate_of in (select unnest(?::varchar[])) order by object_key",
            [ds.name, [o.key for o in pending]],
        ).fetchall() if key not in given]
        found, failures = [], []
        for key in keys:
            try:
                found.append(self.store.head(key))
            except ObjectStoreError as err:
                failures.append(f"{self.store.describe(key)} was recorded as a duplicate of an object loaded again "
                                f"now, and cannot be read to load its own rows: {err}")
        return found, failures

    # -- ledger ---------------------------------------------------------------------------
    def _ledger_rows(self, ds: Dataset, keys: list[str]) -> dict[str, _LedgerRow]:
        """The ledger rows of these keys. Batches hold distinct keys, so one look-up before the
        first batch stays true for all of them."""
        rows = self.con.execute(
            f"select object_key, etag, content_hash, status from {LEDGER} "
            "where dataset = ? and object_key in (select unnest(?::varchar[]))",
            [ds.name, keys],
        ).fetchall()
        return {key: _LedgerRow(*rest) for key, *rest in rows}

    def _duplicates(self, ds: Dataset, deliveries: list[_Delivery]) -> dict[str, str]:
        """The key of an object loaded earlier with the same bytes, for each delivery that has one.

        Earlier means already in the ledger (but not one of these keys: their ledger rows are
        about to describe other bytes), else earlier in this batch.
        """
        first_with = dict(self.con.execute(
            f"select content_hash, min(object_key) from {LEDGER} where dataset = ? and status = 'loaded' "
            "and content_hash in (select unnest(?::varchar[])) and object_key not in (select unnest(?::varchar[])) "
            "group by content_hash",
            [ds.name, [d.facts.content_hash for d in deliveries], [d.obj.key for d in deliveries]],
        ).fetchall())
        duplicate_of = {}
        for d in deliveries:
            twin = first_with.setdefault(d.facts.content_hash, d.obj.key)
            if twin != d.obj.key:
                duplicate_of[d.obj.key] = twin
        return duplicate_of

    # -- load -------------------------------------------------------------------------------
    def _load_batch(self, ds: Dataset, batch: list[StoredObject], ledger: dict[str, _LedgerRow],
                    partition_of) -> tuple[list[LoadOutcome], list[str]]:
        with contextlib.ExitStack() as local_copies:
            refreshed, rewritten, failures = self._inspect(ds, batch, ledger, local_copies)
            duplicate_of = self._duplicates(ds, rewritten)
            with self._transaction():  # rows, rejects and ledger of the whole batch together
                for o in refreshed:
                    self.con.execute(f"update {LEDGER} set etag = ? where dataset = ? and object_key = ?", [o.etag, ds.name, o.key])
                replaced = [d.obj.key for d in rewritten if d.obj.key in ledger]
                if replaced:
                    # Replace these objects' earlier rows, in one statement (each is a scan of the
                    # table). First loads need no delete: rows and ledger commit together, so no
                    # ledger entry means no rows.
                    self.con.execute(f"delete from {raw_table(ds)} where _source_object in (select unnest(?::varchar[]))", [replaced])
                    self.con.execute(f"delete from {REJECTS} where dataset = ? and object_key in (select unnest(?::varchar[]))",
                                     [ds.name, replaced])
                to_copy = [d for d in rewritten if d.obj.key not in duplicate_of]
                counts = self._copy_rows(ds, to_copy) if to_copy else {}
                written = []
                for d in rewritten:
                    key, twin = d.obj.key, duplicate_of.get(d.obj.key)
                    loaded, rejected, again = counts.get(key, (0, 0, False))
                    ignored = () if twin else tuple(c for c in d.file_columns if c not in ds.column_names)
                    written.append(LoadOutcome(ds.name, key, d.obj.etag, "duplicate" if twin else "loaded", d.facts.size,
                                               d.facts.records, loaded, rejected, d.facts.content_hash, twin, ignored, again))
                self._record(ds, written, [partition_of(d.obj) for d in rewritten])
        return refreshed + written, failures

    def _inspect(self, ds: Dataset, batch: list[StoredObject], ledger: dict[str, _LedgerRow],
                 local_copies: contextlib.ExitStack) -> tuple[list[LoadOutcome], list[_Delivery], list[str]]:
        """Whole-file facts and decisions: the objects that are the same bytes as last time
        (as outcomes), the ones to write, and a message per object that cannot be loaded."""
        refreshed, rewritten, failures = [], [], []
        paths = [local_copies.enter_context(self.store.local_copy(obj.key)) for obj in batch]
        # Reading and hashing release the GIL: one thread per core inspects the batch's files.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            all_facts = list(pool.map(inspect_file, paths))
        for obj, path, facts in zip(batch, paths, all_facts):
            try:
                file_columns = validate_delivery(facts, ds, where=self.store.describe(obj.key))
            except DeliveryError as err:
                failures.append(str(err))
                continue
            previous = ledger.get(obj.key)
            if previous and previous.content_hash == facts.content_hash and previous.status == "loaded":
                # New ETag, same bytes (e.g. re-uploaded): remember the ETag, load nothing.
                refreshed.append(LoadOutcome(ds.name, obj.key, obj.etag, "unchanged", facts.size, facts.records, 0, 0,
                                             facts.content_hash))
            else:
                rewritten.append(_Delivery(obj, path, facts, tuple(file_columns)))
        return refreshed, rewritten, failures

    def _record(self, ds: Dataset, outcomes: list[LoadOutcome], partition_keys: list[str | None]) -> None:
        """One ledger row per written object, replacing its previous one."""
        if not outcomes:
            return
        self.con.execute(f"delete from {LEDGER} where dataset = ? and object_key in (select unnest(?::varchar[]))",
                         [ds.name, [o.key for o in outcomes]])
        row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now()::timestamp, ?)"  # one statement: executemany costs ~1 ms a row
        self.con.execute(
            f"insert into {LEDGER} values {', '.join([row] * len(outcomes))}",
            [value for o, partition_key in zip(outcomes, partition_keys)
             for value in (ds.name, o.key, o.etag, o.content_hash, partition_key, o.bytes, o.rows_in_file, o.rows_loaded,
                           o.rows_rejected, o.status, o.duplicate_of, self.run_id)],
        )

    @contextlib.contextmanager
    def _transaction(self):
        self.con.execute("begin transaction")
        try:
            yield
        except BaseException:
            self.con.execute("rollback")
            raise
        self.con.execute("commit")

    def _copy_rows(self, ds: Dataset, deliveries: list[_Delivery]) -> dict[str, tuple[int, int, bool]]:
        """Copy the deliveries' valid rows and keep their rejects; (loaded, rejected, read again)
        by object key.

        One ``read_csv`` over all files with the same column order: a statement per object
        costs more than its rows when months are small. The loaded rows are counted afterwards
        in the table, so the rows are materialised once, straight into it.

        The file's own record count (``FileFacts.records``) checks the reader: an object whose
        loaded + rejected rows differ from it (rare: rows that broke a rule, or a reader that
        stopped early) is counted once more by a reader that skips bad rows, and read again
        serially if the fast read fell short (``_read_again``). A clean object costs nothing more.
        """
        tag = uuid.uuid4().hex[:12]
        files = f"_files_{tag}"  # local path -> object key and ETag
        con = self.con
        con.execute(
            f"create temp table {files} as select unnest(?::varchar[]) as path, unnest(?::varchar[]) as key, "
            "unnest(?::varchar[]) as etag",
            [[str(d.path) for d in deliveries], [d.obj.key for d in deliveries], [d.obj.etag for d in deliveries]],
        )
        try:
            groups: dict[tuple[str, ...], list[str]] = {}
            for d in deliveries:
                groups.setdefault(d.file_columns, []).append(str(d.path))
            for n, (file_columns, paths) in enumerate(groups.items()):
                self._copy_group(ds, files, f"{tag}_{n}", file_columns, paths)
            loaded = self._loaded_counts(ds, files)
            rejected = self._reject_counts(ds, files)
            # A row neither loaded nor refused by the reader parsed but broke a rule, or was never
            # read (DuckDB 2.0.1's parallel reader can stop early: docs/failure-modes.md). The
            # complete count below tells which; rule-breakers' lines are then found in the (rare)
            # files that have them.
            unbalanced = [d for d in deliveries if d.facts.records != loaded.get(d.obj.key, 0) + rejected.get(d.obj.key, 0)]
            again = set()
            for n, d in enumerate(unbalanced):
                key = d.obj.key
                valid, breakers = self._complete_count(ds, d)
                if loaded.get(key, 0) != valid or rejected.get(key, 0) + valid + breakers != d.facts.records:
                    self._read_again(ds, files, f"{tag}_again_{n}", d, loaded.get(key, 0), rejected.get(key, 0))
                    again.add(key)
                if breakers:
                    self._reject_rule_breakers(ds, d)
            if again:
                loaded = self._loaded_counts(ds, files)  # whole: an object read again may have no rows now
            if unbalanced:
                rejected = self._reject_counts(ds, files)
            return {d.obj.key: (loaded.get(d.obj.key, 0), rejected.get(d.obj.key, 0), d.obj.key in again) for d in deliveries}
        finally:
            con.execute(f"drop table if exists {files}")

    def _loaded_counts(self, ds: Dataset, files: str) -> dict[str, int]:
        # This transaction's rows all carry its start time (now()), so zone maps skip older row groups.
        return dict(self.con.execute(
            f"select _source_object, count(*) from {raw_table(ds)} "
            f"where _loaded_at = now()::timestamp and _source_object in (select key from {files}) group by 1"
        ).fetchall())

    def _copy_group(self, ds: Dataset, files: str, tag: str, file_columns: tuple[str, ...], paths: list[str],
                    serial: bool = False) -> None:
        rj, rs = f"_rejects_{tag}", f"_scans_{tag}"
        options = f"filename='_path', store_rejects=true, rejects_table='{rj}', rejects_scan='{rs}'"
        reader = _reader_sql(ds, file_columns, options + (", parallel=false" if serial else ""))
        cols = ", ".join(f"{q(c.name)}::{c.sql_type}" for c in ds.columns)
        try:
            self.con.execute(
                f"""insert into {raw_table(ds)}
                    select {cols}, f.key, now()::timestamp
                    from (select *, {_invalid_reason_sql(ds)} as _reason from {reader}) r join {files} f on f.path = r._path
                    where r._reason is null""",
                [paths],
            )
            # Rows the reader refused (field count, casts, encoding): DuckDB kept file, line and
            # text. A line with two bad fields has two errors: it is still one rejected row.
            self.con.execute(
                f"""insert into {REJECTS}
                    select ?, f.key, f.etag, e.line, trim(any_value(e.csv_line), chr(10) || chr(13)),
                           string_agg(e.error_type || ': ' || e.error_message, '; ' order by e.column_idx), now()::timestamp
                    from {rj} e join {rs} s using (scan_id, file_id) join {files} f on f.path = s.file_path
                    group by f.key, f.etag, e.line""",
                [ds.name],
            )
        finally:
            for table in (rj, rs):
                self.con.execute(f"drop table if exists {table}")

    def _complete_count(self, ds: Dataset, d: _Delivery) -> tuple[int, int]:
        """(valid rows, rule-breaking rows) of one file, by a reader that skips the rows it
        cannot read instead of keeping them (``ignore_errors``): parallel and streaming, and
        not subject to the early stop of ``store_rejects`` (see ``_read_again``)."""
        return self.con.execute(
            f"""select count(*) filter (where _reason is null), count(*) filter (where _reason is not null)
                from (select {_invalid_reason_sql(ds)} as _reason from {_reader_sql(ds, d.file_columns, 'ignore_errors=true')})""",
            [str(d.path)],
        ).fetchone()

    def _read_again(self, ds: Dataset, files: str, tag: str, d: _Delivery, loaded: int, rejected: int) -> None:
        """Replace one object's rows and rejects of this transaction by a serial read of it.

        DuckDB 2.0.1's parallel ``read_csv`` with ``store_rejects=true`` can stop reading a file
        early, silently: rows and rejects alike end at a boundary of its parallel scan (a
        multiple of 8,000,000 bytes), for some layouts of rejected rows and not others, so no
        reader option can be shown to avoid it (docs/failure-modes.md). The serial reader
        (``parallel=false``) read every such file whole. It is one thread, so it is
        used only here, for an object the complete count showed short; the counts it gives are
        still checked against the file's records by ``rows_reconcile``. No DuckDB issue names
        this exact fault; the closest is duckdb/duckdb#24237 (open: a parallel scanner starting
        at a thread boundary skips a record, there caught by the reader's own validation).
        """
        key = d.obj.key
        log.warning("%s: DuckDB %s's parallel CSV reader returned %d rows + %d rejects of %d records; reading it again "
                    "serially (parallel=false)", self.store.describe(key), duckdb.__version__, loaded, rejected,
                    d.facts.records)
        # Only this transaction's rows of the object are in the table now (its older ones were
        # deleted above), and its rejects are the reader's alone (rule-breakers come after).
        self.con.execute(f"delete from {raw_table(ds)} where _loaded_at = now()::timestamp and _source_object = ?", [key])
        self.con.execute(f"delete from {REJECTS} where dataset = ? and object_key = ?", [ds.name, key])
        self._copy_group(ds, files, tag, d.file_columns, [str(d.path)], serial=True)

    def _reject_counts(self, ds: Dataset, files: str) -> dict[str, int]:
        return dict(self.con.execute(
            f"select object_key, count(*) from {REJECTS} where dataset = ? and object_key in (select key from {files}) group by 1",
            [ds.name],
        ).fetchall())

    def _reject_rule_breakers(self, ds: Dataset, d: _Delivery) -> None:
        """Keep rule-breaking rows with their line numbers and exact text.

        The CSV reader does not expose line numbers for rows it accepted, so for the rare file
        that has rule-breakers we read it once more: typed, for the rows that break a rule,
        and as numbered lines, joined on the typed values. Splitting a line on commas is exact
        only without text columns (a title or a tag may hold a quoted comma): rule-breakers of
        a dataset with text (an id out of range), like those of a very large file, are kept with
        their values and reason but without a line number.
        """
        names = ", ".join(q(c.name) for c in ds.columns)
        breakers = (f"select * from (select {names}, {_invalid_reason_sql(ds)} as _reason "
                    f"from {_reader_sql(ds, d.file_columns, 'ignore_errors=true')}) where _reason is not null")
        path, obj = str(d.path), d.obj
        if d.facts.size > MAX_LOCATED_FILE_BYTES or any(c.sql_type == "VARCHAR" for c in ds.columns):
            self.con.execute(
                f"""insert into {REJECTS} select ?, ?, ?, null, concat_ws(',', {names}), _reason, now()::timestamp
                    from ({breakers})""",
                [ds.name, obj.key, obj.etag, path],
            )
            return
        parsed = ", ".join(
            f"try_cast(trim(fields[{d.file_columns.index(c.name) + 1}]) as {c.reader_type}) as {q(c.name)}" for c in ds.columns
        )
        join = " and ".join(f"b.{q(c.name)} is not distinct from l.{q(c.name)}" for c in ds.columns)
        self.con.execute(
            f"""insert into {REJECTS}
                with numbered as (
                    select n as line_number, rtrim(lines[n], chr(13)) as raw_line
                    from (select string_split(content, chr(10)) as lines from read_text(?)) t,
                         range(2, len(lines) + 1) r(n)
                ), fields as (
                    select line_number, raw_line, {parsed}
                    from (select *, string_split(raw_line, ',') as fields from numbered where raw_line <> '')
                ), bad as (select distinct * from ({breakers}))
                select ?, ?, ?, l.line_number, l.raw_line, b._reason, now()::timestamp
                from bad b join fields l on {join}""",
            [path, path, ds.name, obj.key, obj.etag],
        )
