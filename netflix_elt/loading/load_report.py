"""The SQL behind a raw table's page in the UI: a run's rejected rows and the objects a failed
``rows_reconcile`` names. The same text runs on DuckDB and on Snowflake; only the table names
and the quoting of literals differ, and each warehouse hands those over as ``Bookkeeping``.

Rejected rows carry no run id, and need none: an object's rejects are replaced together with
its ledger row whenever the object loads again (one transaction), and the ledger row names the
run. So a run's rejects are those of the objects whose ledger row names that run, and they stay
findable until a later load of the same object replaces them.

What a load's page costs is small by construction: an aggregate and a LIMIT over the rejects of
one run's objects, never the rows themselves into Python. Naming a failed reconcile's objects
scans the raw table, so it runs only when the check has failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

SAMPLE_ROWS = 10  # rejected rows shown on the page; the query shows them all
REASONS_SHOWN = 20  # rows of the by-reason table; the rest are summed into one row
RAW_LINE_CHARS = 200  # a sampled line is cut here (a garbage "line" can be megabytes)
OBJECTS_NAMED = 20  # object keys a failed reconcile names


class Bookkeeping(NamedTuple):
    """How one warehouse names its bookkeeping tables and writes a string literal."""

    rejects: str
    ledger: str
    raw_table: Callable  # Dataset -> the raw table's name
    literal: Callable[[str], str]


@dataclass(frozen=True)
class RejectsReport:
    """A run's rejected rows of one dataset, as the raw asset's page shows them."""

    query: str  # every one of them, runnable as it stands on the warehouse
    by_reason: list[tuple[str, int]]  # (reason, rows), most frequent first
    sample: list[tuple]  # (object_key, line_number, raw_line, reason): the first of each reason first


def _of_run(b: Bookkeeping, dataset: str, run_id: str) -> str:
    ds = b.literal(dataset)
    return (f"dataset = {ds} and object_key in "
            f"(select object_key from {b.ledger} where dataset = {ds} and run_id = {b.literal(run_id)})")


def rejects_query(b: Bookkeeping, dataset: str, run_id: str) -> str:
    """One line of SQL a user can paste: every rejected row of the run's loads of the dataset."""
    return (f"select object_key, line_number, reason, raw_line, rejected_at from {b.rejects} "
            f"where {_of_run(b, dataset, run_id)} order by object_key, line_number")


# A reason is counted by its first sentence: a reader's cast error names the column first and
# the offending value after, so a thousand bad values of one column are one line, not a thousand
# (the sample and the query show the whole text).
REASON_KIND = "split_part(reason, '. ', 1)"


def by_reason_sql(b: Bookkeeping, dataset: str, run_id: str) -> str:
    """Rows per reason, most frequent first."""
    return (f"select {REASON_KIND} as reason, count(*) as n from {b.rejects} "
            f"where {_of_run(b, dataset, run_id)} group by 1 order by 2 desc, 1 limit {REASONS_SHOWN + 1}")


def sample_sql(b: Bookkeeping, dataset: str, run_id: str) -> str:
    """The first rejected row of each reason, then the second of each, and so on: ten rows of one
    frequent reason would hide the rare ones, which are often the interesting ones."""
    return (f"select object_key, line_number, raw_line, reason from ("
            f"select object_key, line_number, left(raw_line, {RAW_LINE_CHARS}) as raw_line, reason, "
            f"row_number() over (partition by {REASON_KIND} order by object_key, line_number) as nth "
            f"from {b.rejects} where {_of_run(b, dataset, run_id)}) "
            f"order by nth, object_key, line_number limit {SAMPLE_ROWS}")


def ledger_query(b: Bookkeeping, dataset: str) -> str:
    """The dataset's load ledger, newest first: one row per object, its figures and its run."""
    return (f"select object_key, status, rows_in_file, rows_loaded, rows_rejected, loaded_at, run_id from {b.ledger} "
            f"where dataset = {b.literal(dataset)} order by loaded_at desc, object_key")


def disagreeing_objects_sql(b: Bookkeeping, ds) -> str:
    """Keys of the objects whose figures do not balance: records in the file != loaded +
    rejected by the ledger, rows in the table or in the rejects != what the ledger says was
    loaded or rejected, or rows in either table from an object the ledger has not loaded.
    A scan of the raw table: run only when ``rows_reconcile`` has failed."""
    name = b.literal(ds.name)
    return f"""
        with l as (select object_key, rows_in_file, rows_loaded, rows_rejected from {b.ledger}
                   where dataset = {name} and status = 'loaded'),
             t as (select _source_object as object_key, count(*) as n from {b.raw_table(ds)} group by 1),
             r as (select object_key, count(*) as n from {b.rejects} where dataset = {name} group by 1),
             k as (select object_key from l union select object_key from t union select object_key from r)
        select k.object_key from k
            left join l on l.object_key = k.object_key
            left join t on t.object_key = k.object_key
            left join r on r.object_key = k.object_key
        where l.object_key is null or l.rows_in_file <> l.rows_loaded + l.rows_rejected
           or coalesce(t.n, 0) <> l.rows_loaded or coalesce(r.n, 0) <> l.rows_rejected
        order by 1 limit {OBJECTS_NAMED}"""
