"""Load: one asset per raw warehouse table, each fed by its S3-file asset.

A raw-table asset loads every current object of its dataset (for ratings: of the run's
months) through the ``warehouse`` resource, which makes loads idempotent and keeps rejected
rows. Whole-object problems (empty, wrong header, truncated) fail the asset with a message
naming each bad object, after the good objects of the same run are loaded.

A blocking asset check per table reconciles the load ledger with the table: rows in the
files = rows loaded + rows rejected, and the table holds exactly the loaded rows.
"""


import dagster as dg

from netflix_elt.assets.extract import s3_asset_key
from netflix_elt.assets.store_faults import STORE_RETRY_POLICY, store_faults
from netflix_elt.layout import classify, dataset_prefix
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
    metadata = {
        "warehouse": warehouse.describe(),
        "objects": dg.MetadataValue.int(len(objects)),
        "objects_loaded": dg.MetadataValue.int(sum(o.status == "loaded" for o in outcomes)),
        "objects_unchanged": dg.MetadataValue.int(sum(o.status == "unchanged" for o in outcomes)),
        "objects_duplicate": dg.MetadataValue.int(sum(o.status == "duplicate" for o in outcomes)),
        "rows_in_files": dg.MetadataValue.int(sum(o.rows_in_file for o in outcomes if o.status == "loaded")),
        "rows_loaded": dg.MetadataValue.int(sum(o.rows_loaded for o in outcomes)),
        "rows_rejected": dg.MetadataValue.int(sum(o.rows_rejected for o in outcomes)),
        "table_rows": dg.MetadataValue.int(warehouse.row_counts()[ds.name]),
        "loads": dg.MetadataValue.md(_outcome_table(outcomes)),
    }
    ignored = sorted({c for o in outcomes for c in o.ignored_columns})
    if ignored:
        metadata["ignored_columns"] = dg.MetadataValue.json(ignored)
        context.log.warning(f"{ds.name}: columns not in the catalogue were ignored (mapped by header name): {ignored}")
    rejected = sum(o.rows_rejected for o in outcomes)
    if rejected:
        context.log.warning(f"{rejected} {ds.name} rows rejected; kept in raw._load_rejects")
    if failures:
        raise dg.Failure(
            f"{len(failures)} {ds.name} object(s) could not be loaded (the other {len(outcomes)} were):\n" + "\n".join(failures),
            metadata=metadata,
            allow_retries=False,  # a broken file stays broken: retrying cannot help
        )
    return dg.MaterializeResult(metadata=metadata)


def build_load_asset(ds: Dataset) -> dg.AssetsDefinition:
    partitioned = ds.partitioned_by_month

    @dg.asset(
        key=raw_asset_key(ds),
        pool="duckdb_warehouse",  # one writer at a time (netflix_elt/instance.py)
        deps=[s3_asset_key(ds)],
        group_name=GROUP,
        kinds={"table"},
        partitions_def=ratings_monthly if partitioned else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        retry_policy=STORE_RETRY_POLICY,
        description=f"Raw warehouse table raw.{ds.name}: {ds.description}",
        metadata={
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c.name, c.sql_type, description=c.description) for c in ds.columns]
            ),
            "dagster/table_name": f"raw.{ds.name}",
        },
    )
    def _load(context: dg.AssetExecutionContext, object_store: ObjectStore, warehouse: Warehouse) -> dg.MaterializeResult:
        months = None
        if partitioned:
            window = context.partition_time_window
            months = months_in_window(window.start, window.end)
        with store_faults():
            return load_dataset(context, ds, object_store, warehouse, months)

    _load.__name__ = f"raw_{ds.name}"
    return _load


def build_reconcile_check(ds: Dataset) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=raw_asset_key(ds),
        name="rows_reconcile",
        pool="duckdb_warehouse",  # opens the DuckDB file (netflix_elt/instance.py)
        blocking=True,
        description="Rows in the delivered files = rows loaded + rows rejected, and the table holds exactly the loaded rows.",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        r = warehouse.reconcile(ds)
        return dg.AssetCheckResult(passed=bool(r.pop("passed")), metadata={k: dg.MetadataValue.int(int(v)) for k, v in r.items()})

    _check.__name__ = f"raw_{ds.name}_rows_reconcile"
    return _check


def build_load_assets() -> list[dg.AssetsDefinition]:
    return [build_load_asset(ds) for ds in DATASETS]


def build_reconcile_checks() -> list[dg.AssetChecksDefinition]:
    return [build_reconcile_check(ds) for ds in DATASETS]
