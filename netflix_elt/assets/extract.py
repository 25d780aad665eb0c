"""Extract: one asset per S3 file. They deliver the MovieLens files into the object store.

In production an upstream system drops these files into the bucket; here the extract assets
play that part, so the rest of the pipeline (loads, sensor, dbt) is exercised exactly as it
would be against real deliveries.

- Unpartitioned files are copied byte for byte (GroupLens's CRLF endings included).
- Ratings are split by month of rating time into ``raw/ratings/month=YYYY-MM/ratings.csv``
  in one streaming DuckDB pass, for all months of the run's partition range at once (the
  asset has a single-run backfill policy). Source rows that cannot be placed in a month
  (no valid timestamp, or a time outside the partition range) are kept in the quarantine
  folder and counted in the metadata: nothing is dropped silently.
"""


import hashlib
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb

from netflix_elt.assets.store_faults import STORE_RETRY_POLICY, store_faults
from netflix_elt.layout import object_key
from netflix_elt.loading.inspect_file import inspect_file, validate_delivery
from netflix_elt.movielens import DATASETS, Dataset
from netflix_elt.partitions import months_in_window, ratings_monthly
from netflix_elt.resources.movielens_source import MovieLensSource, SourceFile
from netflix_elt.resources.object_store import ObjectStore, StoredObject

GROUP = "s3"


def s3_asset_key(ds: Dataset) -> dg.AssetKey:
    return dg.AssetKey(["s3", ds.name])


class ExtractSettings(dg.ConfigurableResource):
    """Local bookkeeping for the extract: scratch space and the quarantine folder."""

    work_dir: str
    quarantine_dir: str
    duckdb_memory_limit: str = "1GB"


def _source_signature(src: SourceFile) -> str:
    st = src.path.stat()
    return f"{src.origin}|{st.st_size}|{st.st_mtime_ns}"


def _deliver_file(src: SourceFile, key: str, store: ObjectStore, settings: ExtractSettings) -> tuple[StoredObject, bool]:
    """Upload unless this exact source file is already the current object (saves re-uploading GBs)."""
    record = Path(settings.work_dir) / "deliveries" / (hashlib.sha1(key.encode()).hexdigest() + ".json")
    signature = _source_signature(src)
    if record.exists():
        seen = json.loads(record.read_text())
        try:
            current = store.head(key)
        except Exception:  # noqa: BLE001 - not there (any more): deliver again
            current = None
        if current and seen == {"signature": signature, "etag": current.etag}:
            return current, False
    obj = store.put_file(src.path, key)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"signature": signature, "etag": obj.etag}))
    return obj, True


def _file_metadata(ds: Dataset, src: SourceFile, obj: StoredObject, uploaded: bool, store: ObjectStore) -> dict:
    facts = inspect_file(src.path)
    validate_delivery(facts, ds, where=f"source file {src.origin}")
    return {
        "key": obj.key,
        "location": store.describe(obj.key),
        "etag": obj.etag,
        "content_hash": facts.content_hash,
        "bytes": dg.MetadataValue.int(obj.size),
        "rows": dg.MetadataValue.int(facts.data_lines),
        "source": src.origin,
        "synthetic": src.synthetic,
        "uploaded": uploaded,
    }


def build_file_asset(ds: Dataset) -> dg.AssetsDefinition:
    @dg.asset(
        key=s3_asset_key(ds),
        group_name=GROUP,
        kinds={"s3", "csv"},
        description=f"{ds.file_name} delivered to the object store at {object_key(ds)}. {ds.description}",
        metadata={"dataset": ds.name, "columns": ", ".join(ds.column_names)},
        retry_policy=STORE_RETRY_POLICY,
    )
    def _extract(source: MovieLensSource, object_store: ObjectStore, extract_settings: ExtractSettings) -> dg.MaterializeResult:
        src = source.locate(ds)
        with store_faults():
            obj, uploaded = _deliver_file(src, object_key(ds), object_store, extract_settings)
        return dg.MaterializeResult(metadata=_file_metadata(ds, src, obj, uploaded, object_store))

    _extract.__name__ = f"s3_{ds.name}"
    return _extract


def _epoch(dt: datetime) -> int:
    return int(dt.replace(tzinfo=timezone.utc).timestamp()) if dt.tzinfo is None else int(dt.timestamp())


def split_ratings_by_month(src: Path, out_dir: Path, window: tuple[datetime, datetime], bounds: tuple[datetime, datetime],
                           file_columns: list[str] | None = None, memory_limit: str = "1GB") -> None:
    """One streaming pass: rows of the window go to ``month=YYYY-MM/`` files, unplaceable rows
    to ``month=_invalid`` / ``_before`` / ``_after``. Values are copied as text, unchanged;
    columns are read in the source's own header order and written in the catalogue's."""
    ds = next(d for d in DATASETS if d.partitioned_by_month)
    t = ds.time_column
    cols = ", ".join("'" + c.replace("'", "''") + "': 'VARCHAR'" for c in (file_columns or ds.column_names))
    names = ", ".join(f'"{c}"' for c in ds.column_names)
    lo, hi = _epoch(bounds[0]), _epoch(bounds[1])
    w0, w1 = _epoch(window[0]), _epoch(window[1])
    con = duckdb.connect(config={"memory_limit": memory_limit})
    try:
        con.execute(
            f"""copy (
                  select {names},
                         case when _ts is null then '_invalid' when _ts < {lo} then '_before'
                              when _ts >= {hi} then '_after'
                              else strftime(make_timestamp(_ts * 1000000), '%Y-%m') end as month
                  from (select *, try_cast("{t}" as bigint) as _ts
                        from read_csv(?, header=true, auto_detect=false, columns={{{cols}}},
                                      delim=',', quote='"', escape='"', store_rejects=true))
                  where _ts is null or _ts < {lo} or _ts >= {hi} or (_ts >= {w0} and _ts < {w1})
                ) to '{out_dir}' (format csv, header true, partition_by (month), filename_pattern 'part_{{i}}')""",
            [str(src)],
        )
        malformed = con.execute("select line, csv_line, error_message from reject_errors").fetchall()
        if malformed:
            bad = out_dir / "month=_malformed"
            bad.mkdir(parents=True, exist_ok=True)
            with open(bad / "part_0.csv", "w") as f:
                f.write("line,raw_line,error\n")
                for line, raw, err in malformed:
                    f.write(f"{line},{json.dumps(raw.strip())},{json.dumps(err)}\n")
    finally:
        con.close()


def _concat(parts: list[Path], dest: Path) -> None:
    """DuckDB may write several part files per month; join them under one header."""
    with open(dest, "wb") as out:
        for i, part in enumerate(sorted(parts)):
            with open(part, "rb") as f:
                header = f.readline()
                if i == 0:
                    out.write(header)
                shutil.copyfileobj(f, out, 8 << 20)


def _count_rows(path: Path) -> int:
    return inspect_file(path).data_lines


def build_monthly_file_asset(ds: Dataset) -> dg.AssetsDefinition:
    @dg.asset(
        key=s3_asset_key(ds),
        group_name=GROUP,
        kinds={"s3", "csv"},
        partitions_def=ratings_monthly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=STORE_RETRY_POLICY,
        description=(
            f"{ds.file_name} delivered one object per month of rating time, "
            f"at raw/{ds.name}/month=YYYY-MM/{ds.file_name}. {ds.description}"
        ),
        metadata={"dataset": ds.name, "columns": ", ".join(ds.column_names)},
    )
    def _extract(
        context: dg.AssetExecutionContext,
        source: MovieLensSource,
        object_store: ObjectStore,
        extract_settings: ExtractSettings,
    ) -> dg.MaterializeResult:
        src = source.locate(ds)
        facts = inspect_file(src.path)
        file_columns = validate_delivery(facts, ds, where=f"source file {src.origin}")
        window = context.partition_time_window
        first = ratings_monthly.get_first_partition_window()
        last = ratings_monthly.get_last_partition_window()
        bounds = (first.start, last.end)
        Path(extract_settings.work_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=extract_settings.work_dir, prefix="split-") as tmp:
            out = Path(tmp) / "months"
            split_ratings_by_month(src.path, out, (window.start, window.end), bounds, file_columns,
                                   extract_settings.duckdb_memory_limit)
            keys, etags, rows, size = [], {}, 0, 0
            for month in months_in_window(window.start, window.end):
                parts = sorted((out / f"month={month}").glob("*.csv"))
                if not parts:
                    continue  # no ratings that month: nothing to deliver
                joined = Path(tmp) / f"{month}.csv"
                _concat(parts, joined)
                rows += _count_rows(joined)
                with store_faults():
                    obj = object_store.put_file(joined, object_key(ds, month))
                keys.append(obj.key)
                etags[obj.key] = obj.etag
                size += obj.size
            quarantined = _quarantine(out, Path(extract_settings.quarantine_dir) / ds.name)
        if quarantined:
            context.log.warning(
                f"{sum(quarantined.values())} source rows could not be placed in a month and were kept in "
                f"{extract_settings.quarantine_dir}/{ds.name}: {quarantined}"
            )
        return dg.MaterializeResult(
            metadata={
                "objects": dg.MetadataValue.int(len(keys)),
                "keys": dg.MetadataValue.json(keys[:50] + ([f"... {len(keys) - 50} more"] if len(keys) > 50 else [])),
                "etags": dg.MetadataValue.json(dict(list(etags.items())[:50])),
                "rows": dg.MetadataValue.int(rows),
                "bytes": dg.MetadataValue.int(size),
                "source": src.origin,
                "source_content_hash": facts.content_hash,
                "quarantined_rows": dg.MetadataValue.int(sum(quarantined.values())),
            }
        )

    _extract.__name__ = f"s3_{ds.name}"
    return _extract


def _quarantine(out: Path, dest: Path) -> dict[str, int]:
    """Move the unplaceable rows' files to the quarantine folder (replacing the previous copy)."""
    counts = {}
    for folder in sorted(out.glob("month=_*")):
        reason = folder.name.split("=", 1)[1].lstrip("_")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{reason}.csv"
        _concat(sorted(folder.glob("*.csv")), target)
        counts[reason] = _count_rows(target)
    return counts


def build_extract_assets() -> list[dg.AssetsDefinition]:
    return [build_monthly_file_asset(ds) if ds.partitioned_by_month else build_file_asset(ds) for ds in DATASETS]
