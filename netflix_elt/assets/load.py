"""Load: one asset per raw warehouse table, each fed by its S3-file asset.

A raw-table asset loads every current object of its dataset (for ratings: of the run's
months) through the ``warehouse`` resource, which makes loads idempotent and keeps rejected
rows. Whole-object problems (empty, wrong header, truncated) fail the asset with a message
naming each bad object, after the good objects of the same run are loaded.

Each materialization tells the load's story on the asset's page: the table's row count under
Dagster's standard key (the Plots tab), what happened to each object, and, when rows were
rejected, the run's rejects by reason, a sample, and the SQL that lists them all.

A blocking asset check per table, evaluated by the load's own step, reconciles the load ledger
with the table: records in the files = rows loaded + rows rejected, and the table holds
exactly the loaded rows. A failed one names the objects whose figures disagree.
"""


import dagster as dg

from netflix_elt.assets.extract import s3_asset_key
from netflix_elt.assets.store_faults import store_faults
from netflix_elt.layout import classify, dataset_prefix
from netflix_elt.loading.load_report import OBJECTS_NAMED, REASONS_SHOWN, RejectsReport
from netflix_elt.movielens import DATASETS, Dataset
from netflix_elt.partitions import months_in_window, ratings_monthly
from netflix_elt.resources.object_store import ObjectStore, StoredObject
from netflix_elt.resources.warehouse import Warehouse

GROUP = "raw"


def raw_asset_key(ds: Dataset) -> dg.AssetKey:
    # Equal to dagster-dbt's key for the dbt source ``raw.<table>``: lineage never breaks.
    return dg.AssetKey(["raw", ds.name])


def objects_to_load(ds: Dataset, store: ObjectStore, months: list[str] | None) -> tuple[list[StoredObject], list[str]]:
    """The dataset's deliveries (of the given months), and the keys skipped as not deliveries."""
    wanted = set(months) if months is not None else None
    prefix = dataset_prefix(ds)
    if months is not None and len(months) == 1:
        prefix = f"{prefix}month={months[0]}/"
    objects, skipped = [], []
    for obj in store.list_objects(prefix):
        slot = classify(obj.key, obj.size)
        if slot is None or slot.dataset != ds:
            skipped.append(obj.key)
        elif wanted is None or slot.month in wanted:
            objects.append(obj)
    return objects, skipped


def _outcome_table(outcomes) -> str:
    rows = ["| object | status | in file | loaded | rejected |", "|---|---|---:|---:|---:|"]
    for o in outcomes[:40]:
        rows.append(f"| `{o.key}` | {o.status} | {o.rows_in_file} | {o.rows_loaded} | {o.rows_rejected} |")
    if len(outcomes) > 40:
        rows.append(f"| ... {len(outcomes) - 40} more | | | | |")
    return "\n".join(rows)


# A sampled reject: its object, its line in the file (none when the line cannot be located, see
# docs/loading-contract.md), the line as kept (cut at load_report.RAW_LINE_CHARS), and why: last, where
# the page leaves the most room for a long reason.
SAMPLE_COLUMNS = {"object_key": "string", "line_number": "int", "raw_line": "string", "reason": "string"}


def _rejects_metadata(report: RejectsReport, rejected: int) -> dict:
    """The run's rejected rows as the asset's page shows them: rows per reason, a sample, and the
    SQL that lists every one (the page holds a few rows; the warehouse holds them all)."""
    by_reason = report.by_reason[:REASONS_SHOWN]
    if len(report.by_reason) > REASONS_SHOWN:
        by_reason.append(("(other reasons)", rejected - sum(n for _, n in by_reason)))
    return {
        "rejects_by_reason": dg.MetadataValue.table(
            records=[dg.TableRecord({"reason": reason, "rows": n}) for reason, n in by_reason],
            schema=dg.TableSchema(columns=[dg.TableColumn("reason", "string"), dg.TableColumn("rows", "int")]),
        ),
        "rejects_sample": dg.MetadataValue.table(
            records=[dg.TableRecord(dict(zip(SAMPLE_COLUMNS, row))) for row in report.sample],
            schema=dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in SAMPLE_COLUMNS.items()]),
        ),
        "rejects_query": dg.MetadataValue.text(report.query),
    }


def load_dataset(context, ds: Dataset, store: ObjectStore, warehouse: Warehouse, months: list[str] | None) -> dg.MaterializeResult:
    objects, skipped = objects_to_load(ds, store, months)
    for key in skipped:
        context.log.warning(f"skipped {store.describe(key)}: not a {ds.name} delivery under the layout")
    if not objects and months is None:
        raise dg.Failure(
            f"no {ds.name} objects under {store.describe(dataset_prefix(ds))}: materialize {s3_asset_key(ds).to_user_string()} first"
        )
    partition_of = lambda obj: (classify(obj.key).month if ds.partitioned_by_month else None)  # noqa: E731
    outcomes, failures = warehouse.load_objects(ds, objects, store, partition_of, context.run_id)
    for failure in failures:
        context.log.error(failure)
    rejected = sum(o.rows_rejected for o in outcomes)
    metadata = {
        # TableMetadataSet.row_count's key (dagster 1.13 no longer exports the set): the asset's
        # Plots tab draws it, so the table's growth is one click away.
        "dagster/row_count": dg.MetadataValue.int(warehouse.row_count(ds)),
        "warehouse": warehouse.describe(),
        "objects": dg.MetadataValue.int(len(objects)),
        "objects_loaded": dg.MetadataValue.int(sum(o.status == "loaded" for o in outcomes)),
        "objects_unchanged": dg.MetadataValue.int(sum(o.status == "unchanged" for o in outcomes)),
        "objects_duplicate": dg.MetadataValue.int(sum(o.status == "duplicate" for o in outcomes)),
        "rows_in_files": dg.MetadataValue.int(sum(o.rows_in_file for o in outcomes if o.status == "loaded")),
        "rows_loaded": dg.MetadataValue.int(sum(o.rows_loaded for o in outcomes)),
        "rows_rejected": dg.MetadataValue.int(rejected),
        "loads": dg.MetadataValue.md(_outcome_table(outcomes)),
    }
    if rejected:  # a clean load shows 0 above, not empty tables
        metadata.update(_rejects_metadata(warehouse.rejects_report(ds, context.run_id), rejected))
    metadata["ledger_query"] = dg.MetadataValue.text(warehouse.ledger_query(ds))
    read_again = [o.key for o in outcomes if o.read_again]
    if read_again:  # DuckDB's parallel reader fell short; the object was read again serially
        metadata["objects_read_again"] = dg.MetadataValue.json(read_again[:20])
        context.log.warning(f"{ds.name}: DuckDB's parallel read of {len(read_again)} object(s) fell short of the "
                            f"file's records; read again serially, nothing lost (docs/failure-modes.md): {read_again[:5]}")
    ignored = sorted({c for o in outcomes for c in o.ignored_columns})
    if ignored:
        metadata["ignored_columns"] = dg.MetadataValue.json(ignored)
        context.log.warning(f"{ds.name}: columns not in the catalogue were ignored (mapped by header name): {ignored}")
    if rejected:
        context.log.warning(f"{rejected} {ds.name} rows rejected; all of them: {metadata['rejects_query'].value}")
    if failures:
        raise dg.Failure(
            f"{len(failures)} {ds.name} object(s) could not be loaded"
            + (f" (the other {len(outcomes)} were)" if outcomes else "") + ":\n" + "\n".join(failures),
            metadata=metadata,
            allow_retries=False,  # a broken file stays broken: retrying cannot help
        )
    return dg.MaterializeResult(asset_key=raw_asset_key(ds), metadata=metadata)


RECONCILE_CHECK = "rows_reconcile"
RECONCILE_DESCRIPTION = (
    "Rows in the delivered files (CSV records) = rows loaded + rows rejected, and the table holds exactly the "
    "loaded rows. Blocking: when it fails, nothing downstream of the table is built in the same run."
)


def reconcile_check_key(ds: Dataset) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(raw_asset_key(ds), RECONCILE_CHECK)


def reconcile_result(ds: Dataset, warehouse: Warehouse) -> dg.AssetCheckResult:
    r = warehouse.reconcile(ds)
    passed = bool(r.pop("passed"))
    metadata = {k: dg.MetadataValue.int(int(v)) for k, v in r.items()}
    keys = []
    if not passed:  # which objects to look at: a scan of the table, so only when it failed
        keys = warehouse.disagreeing_objects(ds)
        metadata["disagreeing_objects"] = dg.MetadataValue.json(keys)
    return dg.AssetCheckResult(
        asset_key=raw_asset_key(ds),
        check_name=RECONCILE_CHECK,
        passed=passed,
        metadata=metadata,
        description=None if passed else _reconcile_failure(ds, r, keys),
    )


def _reconcile_failure(ds: Dataset, r: dict, keys: list[str]) -> str:
    """The figures that disagree and the objects they disagree about, in words: what
    `netflix-elt run` and the UI print."""
    parts = []
    if r["unbalanced_objects"]:
        parts.append(f"{r['unbalanced_objects']} object(s) whose records != loaded + rejected")
    if r["table_rows"] != r["rows_loaded"]:
        parts.append(f"raw.{ds.name} holds {r['table_rows']:,} rows, the ledger says {r['rows_loaded']:,} were loaded")
    if r["rejects_table_rows"] != r["rows_rejected"]:
        parts.append(f"raw._load_rejects holds {r['rejects_table_rows']:,} {ds.name} rows, the ledger says {r['rows_rejected']:,}")
    text = "; ".join(parts) or "ledger and table disagree"
    if keys:
        first = f" (the first {OBJECTS_NAMED})" if len(keys) == OBJECTS_NAMED else ""
        text += f"; objects{first}: {', '.join(keys)}"
    return text


def build_load_asset(ds: Dataset) -> dg.AssetsDefinition:
    """The raw table and its ``rows_reconcile`` check in ONE op.

    The check is blocking, and it is evaluated by the step that loads the table: a failed check
    fails that step, so Dagster skips every step downstream of it in the same run, whoever
    started the run. (A separate ``@asset_check(blocking=True)`` does not hold the dbt step:
    Dagster exempts a step from waiting on another step's checks of an asset it checks itself,
    and the dbt step runs the source tests of every raw table.) The op can be subset: the UI
    can run the check alone, or the load alone.
    """
    partitioned = ds.partitioned_by_month
    key = raw_asset_key(ds)

    @dg.multi_asset(
        name=raw_asset_key(ds).to_python_identifier(),  # raw__<table>, as the op was named before
        specs=[
            dg.AssetSpec(
                key,
                deps=[s3_asset_key(ds)],
                group_name=GROUP,
                kinds={"table"},
                description=f"Raw warehouse table raw.{ds.name}: {ds.description}",
                metadata={
                    "dagster/column_schema": dg.TableSchema(
                        columns=[dg.TableColumn(c.name, c.sql_type, description=c.description) for c in ds.columns]
                    ),
                    "dagster/table_name": f"raw.{ds.name}",
                },
            )
        ],
        check_specs=[dg.AssetCheckSpec(RECONCILE_CHECK, asset=key, blocking=True, description=RECONCILE_DESCRIPTION)],
        can_subset=True,
        pool="duckdb_warehouse",  # one writer at a time (netflix_elt/instance.py)
        partitions_def=ratings_monthly if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
    )
    def _load(context: dg.AssetExecutionContext, object_store: ObjectStore, warehouse: Warehouse):
        if key in context.selected_asset_keys:
            months = None
            if partitioned:
                window = context.partition_time_window
                months = months_in_window(window.start, window.end)
            with store_faults():
                yield load_dataset(context, ds, object_store, warehouse, months)
        if reconcile_check_key(ds) in context.selected_asset_check_keys:
            yield reconcile_result(ds, warehouse)

    return _load


def build_load_assets() -> list[dg.AssetsDefinition]:
    return [build_load_asset(ds) for ds in DATASETS]
