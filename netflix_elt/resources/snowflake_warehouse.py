"""The Snowflake warehouse: raw loads with COPY INTO, same contract as the DuckDB loader.

- exactly the given objects are loaded, one COPY per object (``FILES = ('<key>')``);
- the ledger ``RAW._LOAD_LEDGER`` short-circuits an object whose ETag is unchanged, and
  Snowflake's load history makes a re-COPY of the same file a no-op even without the ledger;
  with the internal stage (the loader reads the object to PUT it) the ledger also keeps the
  bytes' ``CONTENT_HASH`` (the DuckDB loader's digest), so a re-upload of identical bytes under a
  new ETag is a no-op too (external stage: Snowflake reads the object, so the hash stays NULL
  and COPY's load history is what skips a re-delivered file);
- a corrected file (same key, new ETag) replaces that object's rows: delete by
  ``_SOURCE_OBJECT``, then COPY with ``FORCE = TRUE``;
- rows loaded and errors come from COPY's own result; refused records (``VALIDATE``) and rows
  that break a catalogue rule are kept in ``RAW._LOAD_REJECTS``;
- one explicit transaction per object (Snowflake locks the dataset's landing table for it, so
  concurrent loads of one dataset queue instead of mixing).

``stage_mode="internal"`` PUTs each object from the object store to an internal stage first
(no storage integration needed); it is also how the emulator test runs this path.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Iterator

from dagster_snowflake import SnowflakeResource

from netflix_elt.loading.duckdb_loader import LoadOutcome
from netflix_elt.loading.load_report import Bookkeeping
from netflix_elt.movielens import DATASETS, Dataset
from netflix_elt.resources.object_store import ObjectStore, ObjectStoreError, StoredObject
from netflix_elt.resources.warehouse import Warehouse
from netflix_elt.snowflake import copy_into as cq
from netflix_elt.settings import Settings
from netflix_elt.snowflake.provision import DATA, SnowflakeNames, snowflake_resource, statements
from netflix_elt.snowflake.sql import literal, qualified


class SnowflakeWarehouse(Warehouse):
    snowflake: SnowflakeResource
    # The dashboard's connection: the REPORTER role reads MARTS only (provisioning's grants).
    marts_reader: SnowflakeResource | None = None
    database: str = "NETFLIX_ELT"
    bucket: str = "netflix-elt"
    stage_mode: str = "external"  # external: S3 stage from provisioning; internal: PUT, then COPY
    internal_stage: str = "MOVIELENS_INTERNAL"
    emulator: bool = False  # fakesnow: no ON_ERROR/FILES/VALIDATE, no explicit transactions
    # Run the "data" part of provisioning first (emulator/dev only: in production LOADER has no
    # CREATE privilege, and `netflix-elt provision` made these objects).
    ensure_tables: bool = False

    # -- helpers ---------------------------------------------------------------------------------
    @property
    def names(self) -> SnowflakeNames:
        return SnowflakeNames(database=self.database, bucket=self.bucket)

    def describe(self) -> str:
        return f"Snowflake {self.database} ({'emulator' if self.emulator else self.stage_mode + ' stage'})"

    @contextlib.contextmanager
    def _cursor(self) -> Iterator:
        with self.snowflake.get_connection() as con:
            cur = con.cursor()
            if self.ensure_tables:
                for s in statements(self.names):
                    if s.kind == DATA:
                        cur.execute(s.sql)
                if self.stage_mode == "internal":
                    cur.execute(f"create stage if not exists {self._internal_stage()}")
            yield cur

    def _internal_stage(self) -> str:
        return qualified(self.database, "RAW", self.internal_stage)

    @contextlib.contextmanager
    def _transaction(self, cur):
        if self.emulator:  # fakesnow: autocommit statements (a failed one inside BEGIN wedges it)
            yield
            return
        cur.execute("begin")
        try:
            yield
        except BaseException:
            cur.execute("rollback")
            raise
        cur.execute("commit")

    # -- Warehouse interface ----------------------------------------------------------------------
    def load_objects(self, ds, objects, store, partition_of, run_id=None):
        outcomes, failures = [], []
        with self._cursor() as cur:
            for obj in objects:
                try:
                    outcomes.append(self._load_one(cur, ds, obj, store, partition_of(obj), run_id))
                except (ObjectStoreError, ValueError) as err:
                    failures.append(f"{store.describe(obj.key)}: {err}")
        return outcomes, failures

    def _load_one(self, cur, ds: Dataset, obj: StoredObject, store: ObjectStore, partition_key, run_id) -> LoadOutcome:
        n = self.names
        cur.execute(
            f"select ETAG, STATUS, CONTENT_HASH from {n.ledger} where DATASET = %s and OBJECT_KEY = %s",
            (ds.name, obj.key),
        )
        previous = cur.fetchone()
        if previous and previous[0] == obj.etag and previous[1] in ("loaded", "duplicate"):
            return LoadOutcome(ds.name, obj.key, obj.etag, "unchanged", obj.size, 0, 0, 0, previous[2])
        force = previous is not None  # same key, new ETag: a corrected file replaces its rows

        stage, file_name, content_hash = None, None, None
        if self.stage_mode == "internal":
            # The loader reads the object to PUT it: hash those bytes on the way (like the DuckDB
            # loader), so a re-upload of identical bytes under a new ETag is a no-op here too.
            with store.local_copy(obj.key) as path:
                content_hash = content_hash_of(Path(path))
                if previous and previous[1] == "loaded" and previous[2] == content_hash:
                    cur.execute(
                        f"update {n.ledger} set ETAG = %s where DATASET = %s and OBJECT_KEY = %s",
                        (obj.etag, ds.name, obj.key),
                    )
                    return LoadOutcome(ds.name, obj.key, obj.etag, "unchanged", obj.size, 0, 0, 0, content_hash)
                stage, file_name = self._put(cur, obj, Path(path))

        with self._transaction(cur):
            cur.execute(cq.clear_landing_statement(n, ds))
            cur.execute(cq.copy_statement(n, ds, obj.key, force=force, emulator=self.emulator, stage=stage, file_name=file_name))
            result = _copy_result(cur)
            query_id = cur.sfqid
            if result is None:  # load history: this exact file was loaded already
                self._record(cur, ds, obj, partition_key, run_id, "loaded", None, None, None, content_hash, keep_counts=True)
                return LoadOutcome(ds.name, obj.key, obj.etag, "unchanged", obj.size, 0, 0, 0, content_hash)
            rows_copied, errors_seen = result
            cur.execute(cq.delete_object_rows_statement(n, ds, obj.key))
            cur.execute(cq.delete_object_rejects_statement(n, ds, obj.key))
            if errors_seen and not self.emulator:
                cur.execute(cq.validate_rejects_statement(n, ds, obj.key, obj.etag, query_id))
            cur.execute(cq.typed_rejects_statement(n, ds, obj.key, obj.etag))
            cur.execute(cq.insert_valid_statement(n, ds, obj.key))
            loaded = _rowcount(cur)
            cur.execute(cq.clear_landing_statement(n, ds))
            rows_in_file = rows_copied + errors_seen
            rejected = rows_in_file - loaded
            self._record(cur, ds, obj, partition_key, run_id, "loaded", rows_in_file, loaded, rejected, content_hash)
        return LoadOutcome(ds.name, obj.key, obj.etag, "loaded", obj.size, rows_in_file, loaded, rejected, content_hash)

    def _put(self, cur, obj: StoredObject, local: Path) -> tuple[str, str]:
        """Internal stage: upload the object's bytes (``local``, the store's local copy of it)
        under its key (relative to raw/), uncompressed."""
        rel = cq.stage_relative(obj.key)
        if self.emulator:  # fakesnow reads through DuckDB, which turns a `month=` folder into a column
            rel = rel.replace("=", "_")
        folder, _, name = rel.rpartition("/")
        stage = "@" + self._internal_stage()
        if local.name != name:  # PUT names the staged file after the local file
            with _renamed_copy(local, name) as named:
                cur.execute(f"put {literal('file://' + str(named))} {stage}/{folder}/ auto_compress = false overwrite = true")
        else:
            cur.execute(f"put {literal('file://' + str(local))} {stage}/{folder}/ auto_compress = false overwrite = true")
        return stage, rel

    def _record(self, cur, ds, obj, partition_key, run_id, status, rows_in_file, loaded, rejected, content_hash=None,
                keep_counts=False):
        n = self.names
        if keep_counts:
            cur.execute(
                f"update {n.ledger} set ETAG = %s, CONTENT_HASH = coalesce(%s, CONTENT_HASH) "
                "where DATASET = %s and OBJECT_KEY = %s",
                (obj.etag, content_hash, ds.name, obj.key),
            )
            return
        cur.execute(f"delete from {n.ledger} where DATASET = %s and OBJECT_KEY = %s", (ds.name, obj.key))
        cur.execute(
            f"insert into {n.ledger} (DATASET, OBJECT_KEY, ETAG, CONTENT_HASH, PARTITION_KEY, BYTES, ROWS_IN_FILE, "
            "ROWS_LOADED, ROWS_REJECTED, STATUS, DUPLICATE_OF, LOADED_AT, RUN_ID) "
            "select %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, null, current_timestamp()::timestamp_ntz, %s",
            (ds.name, obj.key, obj.etag, content_hash, partition_key, obj.size, rows_in_file, loaded, rejected, status,
             run_id),
        )

    def reconcile(self, ds: Dataset) -> dict:
        n = self.names
        with self._cursor() as cur:
            cur.execute(
                f"""select count(*), coalesce(sum(ROWS_IN_FILE), 0), coalesce(sum(ROWS_LOADED), 0),
                           coalesce(sum(ROWS_REJECTED), 0),
                           count(case when ROWS_IN_FILE <> ROWS_LOADED + ROWS_REJECTED then 1 end)
                    from {n.ledger} where DATASET = %s and STATUS = 'loaded'""",
                (ds.name,),
            )
            objects, in_files, loaded, rejected, unbalanced = (int(v) for v in cur.fetchone())
            cur.execute(f"select count(*) from {n.raw_table(ds)}")
            table_rows = int(cur.fetchone()[0])
            cur.execute(f"select count(*) from {n.rejects} where DATASET = %s", (ds.name,))
            rejects = int(cur.fetchone()[0])
        return {
            "objects": objects, "rows_in_files": in_files, "rows_loaded": loaded, "rows_rejected": rejected,
            "table_rows": table_rows, "rejects_table_rows": rejects, "unbalanced_objects": unbalanced,
            "passed": unbalanced == 0 and table_rows == loaded and rejects == rejected,
        }

    @contextlib.contextmanager
    def marts_connection(self):
        """A cursor of the reporter's connection; its session database is ours, so
        ``marts.<model>`` names the marts as on DuckDB."""
        with (self.marts_reader or self.snowflake).get_connection() as con:
            yield con.cursor()

    def row_counts(self) -> dict[str, int]:
        counts = {}
        with self._cursor() as cur:
            for ds in DATASETS:
                cur.execute(f"select count(*) from {self.names.raw_table(ds)}")
                counts[ds.name] = int(cur.fetchone()[0])
        return counts

    def row_count(self, ds: Dataset) -> int:
        with self._cursor() as cur:
            cur.execute(f"select count(*) from {self.names.raw_table(ds)}")
            return int(cur.fetchone()[0])

    def bookkeeping(self) -> Bookkeeping:
        n = self.names
        return Bookkeeping(rejects=n.rejects, ledger=n.ledger, raw_table=n.raw_table, literal=literal)

    def fetch(self, statements: list[str]) -> list[list[tuple]]:
        results = []
        with self._cursor() as cur:
            for sql in statements:
                cur.execute(sql)
                results.append(cur.fetchall())
        return results


def _copy_result(cur) -> tuple[int, int] | None:
    """(rows loaded into landing, errors seen) summed over COPY's result rows; None when COPY
    processed no file (load history: already loaded)."""
    rows = cur.fetchall()
    cols = [d[0].lower() for d in cur.description]
    if "rows_loaded" not in cols:
        return None  # "Copy executed with 0 files processed."
    r = [dict(zip(cols, row)) for row in rows]
    if all(str(x.get("status", "")).upper() == "LOAD_SKIPPED" for x in r):
        return None
    loaded = sum(int(x.get("rows_loaded") or 0) for x in r)
    errors = sum(int(x.get("errors_seen") or 0) for x in r if str(x.get("status", "")).upper() != "LOAD_SKIPPED")
    return loaded, errors


def content_hash_of(path: Path) -> str:
    """The ledger's CONTENT_HASH: the same digest as the DuckDB loader's (``inspect_file``)."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _rowcount(cur) -> int:
    if cur.rowcount is not None and cur.rowcount >= 0:
        return int(cur.rowcount)
    row = cur.fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def _renamed_copy(path: Path, name: str) -> Iterator[Path]:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="netflix-elt-put-") as tmp:
        target = Path(tmp) / name
        shutil.copyfile(path, target)
        yield target


def build_snowflake_warehouse(settings: Settings) -> Warehouse:
    """The prod warehouse from ``Settings`` (``settings.snowflake`` for the connection).

    The resource holds no secret: the password or private key is a ``dg.EnvVar`` reference that
    Dagster resolves at run time (see ``provision.snowflake_resource``). The loader connects as
    the loader role with ``RAW`` as its schema. A loopback host (an emulator) switches on the
    emulator mode and, unless ``stage_mode`` says otherwise, the internal stage.
    """
    sf = settings.snowflake
    emulator = sf.is_emulator
    resource = snowflake_resource(sf, role=sf.loader_role, database=sf.database, schema="RAW")
    return SnowflakeWarehouse(
        snowflake=resource,
        marts_reader=snowflake_resource(sf, role=sf.reporter_role, database=sf.database, schema="MARTS"),
        database=sf.database,
        bucket=settings.bucket,
        stage_mode=sf.stage_mode or ("internal" if emulator else "external"),
        emulator=emulator,
        ensure_tables=emulator,
    )
