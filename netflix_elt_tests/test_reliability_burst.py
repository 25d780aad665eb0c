"""A burst: 120 monthly ratings objects dropped at once are all requested, loaded and modelled.

The sensor sees the 120 new objects in one tick and requests one run per month (run key
``<key>@<etag>``). To keep CI time sane the test executes each request's warehouse load
(``raw/ratings`` for the request's partition, with its ``rows_reconcile`` check) as its own
real run, one after another, exactly as the queue would drain them one writer at a time; the
dbt part of the requests (``staging/stg_ratings`` -> ``core/fct_ratings``, 10-20 s of dbt start-up
each) is coalesced into ONE run over the burst's partition range, which is what the
single-run backfill policy of ``fct_ratings`` does for a range. The result must equal a full
load of the same files: every row of every delivered file, once, in raw.ratings and in
core.fct_ratings.
"""

from __future__ import annotations

import time

import dagster as dg
import duckdb

from netflix_elt.definitions import build_definitions
from netflix_elt.deliveries import deliver_ratings_month
from netflix_elt.partitions import ratings_monthly
from netflix_elt.resources.factory import build_object_store
from netflix_elt.sensors import build_new_objects_sensor
from netflix_elt.settings import SHIPPED_DATA

RAW_RATINGS = dg.AssetKey(["raw", "ratings"])
MONTHS = ratings_monthly.get_partition_keys_in_range(dg.PartitionKeyRange("2008-01", "2017-12"))
ROWS_PER_MONTH = 50


def tick(defs, settings, cursor=None):
    sensor = build_new_objects_sensor()
    with dg.build_sensor_context(cursor=cursor, resources={"object_store": build_object_store(settings)}, definitions=defs) as context:
        return sensor(context)


def files_fingerprint(settings) -> tuple:
    """count and order-independent checksum of (user, movie, rating, epoch) over the delivered files."""
    pattern = str(settings.store_root / settings.bucket / "raw" / "ratings" / "month=*" / "ratings.csv")
    with duckdb.connect() as con:
        return con.execute(
            f"""select count(*), sum(hash(userId, movieId, rating::decimal(2, 1), timestamp))
                from read_csv('{pattern}', header=true, auto_detect=false,
                              columns={{'userId': 'INTEGER', 'movieId': 'INTEGER', 'rating': 'DOUBLE', 'timestamp': 'BIGINT'}})"""
        ).fetchone()


def warehouse_fingerprints(settings) -> tuple[tuple, tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        raw = con.execute(
            "select count(*), sum(hash(userId::integer, movieId::integer, rating::decimal(2, 1), timestamp::bigint)) from raw.ratings"
        ).fetchone()
        fct = con.execute(
            "select count(*), sum(hash(user_id, movie_id, rating::decimal(2, 1), epoch(rated_at)::bigint)) from core.fct_ratings"
        ).fetchone()
    return raw, fct


def test_a_burst_of_120_monthly_deliveries_is_requested_drained_and_equals_a_full_load(local_settings):
    settings = local_settings
    defs = build_definitions(settings)
    store = build_object_store(settings)
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    cursor = tick(defs, settings).cursor  # the sensor is switched on before the burst

    for month in MONTHS:
        deliver_ratings_month(store, SHIPPED_DATA / "movies.csv", month, rows=ROWS_PER_MONTH, work_dir=settings.work_dir)
    requests = tick(defs, settings, cursor).run_requests
    assert sorted(r.partition_key for r in requests) == MONTHS and len({r.run_key for r in requests}) == 120
    assert all(RAW_RATINGS in r.asset_selection for r in requests)

    load_assets = [a for a in defs.assets if RAW_RATINGS in a.keys]
    instance = dg.DagsterInstance.ephemeral()
    started = time.monotonic()
    failed = []
    for request in requests:
        result = dg.materialize(
            load_assets, resources=defs.resources, instance=instance, partition_key=request.partition_key,
            selection=[k for k in request.asset_selection if k == RAW_RATINGS], tags=request.tags, raise_on_error=False,
        )
        checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        if not (result.success and len(checks) == 1 and checks[0].passed):
            failed.append(request.partition_key)
    loads_seconds = time.monotonic() - started
    assert failed == []

    # The requests' dbt part, coalesced: one run of stg_ratings + fct_ratings over the burst's range.
    dbt_started = time.monotonic()
    result = dg.materialize(
        defs.assets, resources=defs.resources, instance=instance,
        selection=dg.AssetSelection.keys(["staging", "stg_ratings"], ["core", "fct_ratings"]).without_checks(),
        tags={"dagster/asset_partition_range_start": MONTHS[0], "dagster/asset_partition_range_end": MONTHS[-1]},
    )
    assert result.success
    dbt_seconds = time.monotonic() - dbt_started

    expected = files_fingerprint(settings)
    assert expected[0] == 120 * ROWS_PER_MONTH
    raw, fct = warehouse_fingerprints(settings)
    assert raw == expected
    assert fct == expected
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(distinct partition_key) from raw._load_ledger where dataset = 'ratings' and status = 'loaded'").fetchone() == (120,)
    print(f"\nburst of 120 months: {len(requests)} sensor requests, loads drained in {loads_seconds:.1f} s "
          f"({loads_seconds / 120:.2f} s per run), stg_ratings + fct_ratings in one dbt run {dbt_seconds:.1f} s, "
          f"total {loads_seconds + dbt_seconds:.1f} s")
