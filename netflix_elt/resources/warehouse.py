"""The warehouse resource the raw-table assets load through.

``Warehouse`` is the small interface the assets and checks use; ``DuckDBWarehouse`` is the
embedded default, built on dagster-duckdb's ``DuckDBResource`` (which owns the connection
lifecycle, so the file lock is held only while a load runs and dbt can open the file next).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Iterable

import dagster as dg
from dagster_duckdb import DuckDBResource

from netflix_elt.loading import load_report
from netflix_elt.loading.duckdb_loader import LEDGER, REJECTS, DuckDBRawLoader, LoadOutcome, ensure_raw_schema, raw_table, sql_literal
from netflix_elt.loading.load_report import Bookkeeping, RejectsReport
from netflix_elt.movielens import DATASETS, Dataset
from netflix_elt.resources.object_store import ObjectStore, StoredObject


class Warehouse(dg.ConfigurableResource, ABC):
    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def load_objects(
        self,
        ds: Dataset,
        objects: Iterable[StoredObject],
        store: ObjectStore,
        partition_of: Callable[[StoredObject], str | None],
        run_id: str | None = None,
    ) -> tuple[list[LoadOutcome], list[str]]:
        """Load each object; whole-object problems are collected (message per object), not raised,
        so one bad month does not stop the good ones."""

    @abstractmethod
    def reconcile(self, ds: Dataset) -> dict:
        """Ledger vs table: rows in files = loaded + rejected, and the table holds exactly the loaded rows."""

    @abstractmethod
    def row_counts(self) -> dict[str, int]: ...

    @abstractmethod
    def row_count(self, ds: Dataset) -> int: ...

    @abstractmethod
    def bookkeeping(self) -> Bookkeeping:
        """The names of the ledger, the rejects and the raw tables, and the warehouse's string literal."""

    @abstractmethod
    def fetch(self, statements: list[str]) -> list[list[tuple]]:
        """Each statement's rows, over one connection (the small reads of ``load_report``)."""

    def rejects_report(self, ds: Dataset, run_id: str) -> RejectsReport:
        """The run's rejected rows of the dataset: counts by reason and a sample, in two small
        queries, and the query that lists them all."""
        b = self.bookkeeping()
        by_reason, sample = self.fetch([load_report.by_reason_sql(b, ds.name, run_id), load_report.sample_sql(b, ds.name, run_id)])
        return RejectsReport(
            query=load_report.rejects_query(b, ds.name, run_id),
            by_reason=[(reason, int(n)) for reason, n in by_reason],
            sample=[(key, None if line is None else int(line), raw, reason) for key, line, raw, reason in sample],
        )

    def ledger_query(self, ds: Dataset) -> str:
        return load_report.ledger_query(self.bookkeeping(), ds.name)

    def disagreeing_objects(self, ds: Dataset) -> list[str]:
        """The objects a failed reconcile is about (a scan of the raw table: only on failure)."""
        (rows,) = self.fetch([load_report.disagreeing_objects_sql(self.bookkeeping(), ds)])
        return [key for (key,) in rows]

    @abstractmethod
    def marts_connection(self) -> contextlib.AbstractContextManager:
        """Something to read the marts with, for the length of a ``with`` block: it has
        ``execute(sql)`` returning a result with ``fetchall()`` and ``description`` (a DuckDB
        connection or a Snowflake cursor). The dashboard reads through it on either warehouse."""


class DuckDBWarehouse(Warehouse):
    duckdb: DuckDBResource

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # The warehouse file's folder (NETFLIX_ELT_HOME) is created when a run first needs it,
        # not when the definitions are built: importing the code location writes nothing.
        Path(self.duckdb.database).parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"DuckDB {self.duckdb.database}"

    def load_objects(self, ds, objects, store, partition_of, run_id=None):
        with self.duckdb.get_connection() as con:
            ensure_raw_schema(con, DATASETS)
            return DuckDBRawLoader(con, store, run_id).load_objects(ds, objects, partition_of)

    def reconcile(self, ds: Dataset) -> dict:
        with self.duckdb.get_connection() as con:
            ensure_raw_schema(con, DATASETS)
            ledger = con.execute(
                f"""select count(*), coalesce(sum(rows_in_file), 0), coalesce(sum(rows_loaded), 0),
                           coalesce(sum(rows_rejected), 0),
                           count(*) filter (where rows_in_file <> rows_loaded + rows_rejected)
                    from {LEDGER} where dataset = ? and status = 'loaded'""",
                [ds.name],
            ).fetchone()
            table_rows = con.execute(f"select count(*) from {raw_table(ds)}").fetchone()[0]
            rejects = con.execute(f"select count(*) from {REJECTS} where dataset = ?", [ds.name]).fetchone()[0]
        objects, in_files, loaded, rejected, unbalanced = ledger
        return {
            "objects": objects,
            "rows_in_files": in_files,
            "rows_loaded": loaded,
            "rows_rejected": rejected,
            "table_rows": table_rows,
            "rejects_table_rows": rejects,
            "unbalanced_objects": unbalanced,
            "passed": unbalanced == 0 and table_rows == loaded and rejects == rejected,
        }

    @contextlib.contextmanager
    def marts_connection(self):
        with self.duckdb.get_connection() as con:
            yield con

    def row_counts(self) -> dict[str, int]:
        with self.duckdb.get_connection() as con:
            ensure_raw_schema(con, DATASETS)
            return {ds.name: con.execute(f"select count(*) from {raw_table(ds)}").fetchone()[0] for ds in DATASETS}

    def row_count(self, ds: Dataset) -> int:
        with self.duckdb.get_connection() as con:
            ensure_raw_schema(con, DATASETS)
            return con.execute(f"select count(*) from {raw_table(ds)}").fetchone()[0]

    def bookkeeping(self) -> Bookkeeping:
        return Bookkeeping(rejects=REJECTS, ledger=LEDGER, raw_table=raw_table, literal=sql_literal)

    def fetch(self, statements: list[str]) -> list[list[tuple]]:
        with self.duckdb.get_connection() as con:
            return [con.execute(sql).fetchall() for sql in statements]
