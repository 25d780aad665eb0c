"""``NETFLIX_ELT_TARGET=prod`` end to end against the local emulators: fakesnow (Snowflake's
wire protocol) and moto (the S3 API), both on loopback.

The settings are exactly what the README lists as required for prod (``SNOWFLAKE_ACCOUNT``,
``SNOWFLAKE_USER``, ``SNOWFLAKE_PASSWORD``), the emulator's ``SNOWFLAKE_HOST``/``PORT``/
``PROTOCOL``, the S3 endpoint and bucket and the test AWS keys; besides them only where things
are (``NETFLIX_ELT_HOME``, ``NETFLIX_ELT_SOURCE``) and, for the CLI's process, ``PATH``/``HOME``
and the suite's own warm-dbt folder (conftest). Every other value is the settings' default.

One flow per test, in order, on one emulator pair:

1. ``netflix-elt run`` as a subprocess (what users run): ONE Dagster run of every asset and
   check, in a persistent instance under the home;
2. ``netflix-elt deliver ratings --month 2026-11`` to S3, the real sensor definition evaluated
   (``evaluate_tick``: Dagster's own request resolution) and its run request executed;
3. a three-month backfill of ``raw/ratings`` + ``core/fct_ratings`` as one run (partition
   range tags).

What fakesnow cannot do is left out explicitly, never skipped silently: its COPY (DuckDB's CSV
reader underneath) fails the whole file on a field with a doubled quote (``""``, standard CSV
for a quote inside a quoted field), so the source is a copy of the shipped data without
``EMULATOR_EXCLUSIONS`` (conftest.py; docs/production.md's verification table lists them too). The
``prod`` and ``emulator_source`` fixtures are conftest's, shared with test_production_topology.py.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("fakesnow.server", reason="fakesnow's server extra is not installed (pip install -e '.[test]')")

import dagster as dg  # noqa: E402

from netflix_elt.definitions import build_definitions  # noqa: E402
from netflix_elt.deliveries import deliver_ratings_month  # noqa: E402
from netflix_elt.resources.factory import build_object_store  # noqa: E402
from netflix_elt.sensors import selection_of  # noqa: E402
from netflix_elt.settings import Settings  # noqa: E402
from netflix_elt_tests.conftest import S3_TEST_KEY_ID, S3_TEST_SECRET, materialize  # noqa: E402
from netflix_elt_tests.conftest import prod_cli as _cli, warehouse_one as _one, warehouse_query as _query  # noqa: E402

pytestmark = pytest.mark.slow

SENSOR_MONTH, SENSOR_ROWS = "2026-11", 200
BACKFILL_MONTHS, BACKFILL_ROWS = ("1995-01", "1995-02", "1995-03"), 150  # before ml-latest-small's first rating


def _source_rows(source: Path, name: str) -> int:
    return len((source / name).read_bytes().splitlines()) - 1


def _instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent instance `netflix-elt run` used (its dagster.yaml under the home)."""
    return dg.DagsterInstance.from_config(str(settings.dagster_home))


@pytest.fixture(scope="module")
def full_run(prod):
    started = time.monotonic()
    summary_file = prod["tmp"] / "summary.json"
    run = _cli(prod, "run", "--json", str(summary_file))
    return run, (json.loads(summary_file.read_text()) if summary_file.exists() else None), time.monotonic() - started


def test_netflix_elt_run_on_prod_materializes_every_asset_and_passes_every_check_in_one_run(prod, full_run):
    run, summary, seconds = full_run
    assert run.returncode == 0 and summary and summary["success"], (run.stdout[-3000:], run.stderr[-6000:])
    settings = prod["settings"]
    graph = build_definitions(settings).resolve_asset_graph()
    assert summary["assets_materialized"] == len(graph.get_all_asset_keys())
    assert summary["checks_failed"] == 0 and summary["checks_passed"] == len(graph.asset_check_keys)
    assert summary["warehouse"] == "Snowflake NETFLIX_ELT (emulator)"
    records = _instance(settings).get_run_records()
    assert len(records) == 1 and records[0].dagster_run.is_success  # ONE run
    print(f"netflix-elt run (prod, emulators): {seconds:.1f} s, run itself {summary['seconds']} s")


def test_the_raw_tables_and_the_marts_in_the_emulator_hold_the_source_rows(prod, full_run):
    settings, source = prod["settings"], prod["source"]
    n = {name: _source_rows(source, f"{name}.csv") for name in ("movies", "ratings", "tags", "links")}
    raw = full_run[1]["raw_rows"]
    assert {k: raw[k] for k in n} == n
    assert raw["genome_tags"] == settings.synthetic_genome_tags  # synthetic: ml-latest-small has no genome
    assert raw["genome_scores"] == n["movies"] * settings.synthetic_genome_tags
    for table, rows in raw.items():
        assert _one(settings, f"select count(*) from NETFLIX_ELT.RAW.{table.upper()}") == rows
    assert _one(settings, "select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS") == n["ratings"]
    assert _one(settings, "select count(*) from NETFLIX_ELT.CORE.DIM_MOVIES") == n["movies"]
    assert _one(settings, "select count(distinct user_id) from NETFLIX_ELT.CORE.DIM_USERS") == 610
    marts = [t for (t,) in _query(settings, "select table_name from NETFLIX_ELT.INFORMATION_SCHEMA.TABLES "
                                            "where table_schema = 'MARTS' order by 1")]
    assert len(marts) == 6, marts
    for mart in marts:
        assert _one(settings, f"select count(*) from NETFLIX_ELT.MARTS.{mart}") > 0, mart
    # The top-movies mart ranks the movies with at least 50 ratings (the dbt var's default).
    qualified = _one(settings, "select count(*) from (select MOVIEID from NETFLIX_ELT.RAW.RATINGS "
                               "group by MOVIEID having count(*) >= 50)")
    assert _one(settings, "select count(*) from NETFLIX_ELT.MARTS.MART_MOVIE_ANALYSIS") == qualified


def test_on_snowflake_the_assets_carry_row_counts_warehouse_columns_and_column_lineage(prod, full_run):
    """The same asset pages as on DuckDB: the post-hook runs on Snowflake's connection, and the
    lineage ties Snowflake's relation names to the assets (the manifest was parsed for local)."""
    instance = _instance(prod["settings"])

    def latest(key: str) -> dict:
        return instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key)).asset_materialization.metadata

    mart, fact = latest("marts/mart_movie_analysis"), latest("core/fct_ratings")
    assert fact["dagster/row_count"].value == _one(prod["settings"], "select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS")
    columns = {c.name: c for c in fact["dagster/column_schema"].value.columns}
    assert columns["rating"].type.startswith("number") and columns["rating"].description
    deps = {column: {f"{d.asset_key.to_user_string()}.{d.column_name}" for d in column_deps}
            for column, column_deps in mart["dagster/column_lineage"].value.deps_by_column.items()}
    assert "core/fct_movie_ratings_yearly.rating_sum" in deps["avg_rating"]
    staging = latest("staging/stg_ratings")["dagster/column_lineage"].value.deps_by_column
    assert {f"{d.asset_key.to_user_string()}.{d.column_name}" for d in staging["rating"]} == {"raw/ratings.rating"}
    bridge = latest("core/bridge_movie_genres")["dagster/column_lineage"].value.deps_by_column  # LATERAL FLATTEN
    assert {f"{d.asset_key.to_user_string()}.{d.column_name}" for d in bridge["genre"]} == {"staging/stg_movies.genres"}
    snapshot = latest("snapshots/snap_movies")["dagster/column_lineage"].value.deps_by_column  # no compiled SQL
    assert {f"{d.asset_key.to_user_string()}.{d.column_name}" for d in snapshot["title"]} == {"staging/stg_movies.title"}


def test_the_dashboard_reads_the_snowflake_marts_and_shows_the_figures(prod, full_run):
    summary = full_run[1]
    page_path = Path(summary["dashboard"])
    assert page_path == prod["settings"].dashboard_dir / "index.html" and page_path.is_file()
    page = page_path.read_text(encoding="utf-8")
    ratings = _source_rows(prod["source"], "ratings.csv")
    assert f'id="kpi-ratings"><div class="label">Ratings</div><div class="value" data-value="{ratings:,}">' in page
    assert 'data-value="610"' in page  # users
    assert "Snowflake NETFLIX_ELT (emulator)" in page  # where the figures came from


def test_a_month_delivered_to_s3_is_loaded_through_the_sensor_into_raw_and_the_fact(prod, full_run):
    assert full_run[1] and full_run[1]["success"], "the full run failed"
    settings = prod["settings"]
    defs = build_definitions(settings)
    sensor = defs.get_sensor_def("new_s3_objects")
    instance = _instance(settings)
    resources = {"object_store": build_object_store(settings)}
    with dg.build_sensor_context(instance=instance, definitions=defs, resources=resources) as context:
        switched_on = sensor.evaluate_tick(context)  # the first tick: what the full run wrote is not new
    assert switched_on.run_requests == []

    delivered = _cli(prod, "deliver", "ratings", "--month", SENSOR_MONTH, "--rows", str(SENSOR_ROWS), timeout=300)
    assert delivered.returncode == 0, delivered.stderr[-3000:]
    key = f"raw/ratings/month={SENSOR_MONTH}/ratings.csv"
    assert f"s3://{settings.bucket}/{key}" in delivered.stdout

    with dg.build_sensor_context(instance=instance, definitions=defs, resources=resources,
                                 cursor=switched_on.cursor) as context:
        tick = sensor.evaluate_tick(context)  # Dagster's own resolution of the requests
    (request,) = tick.run_requests
    assert request.run_key.startswith(f"{key}@")
    result = dg.materialize(defs.assets, resources=defs.resources, selection=selection_of(request),
                            partition_key=request.partition_key, tags=request.tags, instance=instance,
                            raise_on_error=False)
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failed
    assert dg.AssetKey("dashboard") in {e.asset_key for e in result.get_asset_materialization_events()}
    assert _one(settings, f"select count(*) from NETFLIX_ELT.RAW.RATINGS where _SOURCE_OBJECT = '{key}'") == SENSOR_ROWS
    assert _one(settings, f"select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS "
                          f"where rated_month = '{SENSOR_MONTH}-01'::date") == SENSOR_ROWS
    total = _source_rows(prod["source"], "ratings.csv") + SENSOR_ROWS
    assert _one(settings, "select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS") == total


def test_a_three_month_backfill_of_raw_ratings_and_the_fact_is_one_run_that_lands_each_month(prod, full_run):
    assert full_run[1] and full_run[1]["success"], "the full run failed"
    settings = prod["settings"]
    store = build_object_store(settings)
    for month in BACKFILL_MONTHS:
        deliver_ratings_month(store, prod["source"] / "movies.csv", month, rows=BACKFILL_ROWS,
                              work_dir=settings.work_dir)
    instance = _instance(settings)
    runs_before = len(instance.get_run_records())
    result = materialize(settings, [dg.AssetKey(["raw", "ratings"]), dg.AssetKey(["core", "fct_ratings"])],
                         partition_range=(BACKFILL_MONTHS[0], BACKFILL_MONTHS[-1]), instance=instance,
                         raise_on_error=False)
    assert result.success, [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(instance.get_run_records()) == runs_before + 1  # ONE run for the three months
    materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    assert {(key, m) for key in ("raw/ratings", "core/fct_ratings") for m in BACKFILL_MONTHS} <= materialized
    per_month_raw = dict(_query(settings, """
        select PARTITION_KEY, ROWS_LOADED from NETFLIX_ELT.RAW._LOAD_LEDGER
        where DATASET = 'ratings' and PARTITION_KEY in ('1995-01', '1995-02', '1995-03')"""))
    assert per_month_raw == {m: BACKFILL_ROWS for m in BACKFILL_MONTHS}
    per_month_fct = _query(settings, """
        select rated_month, count(*) from NETFLIX_ELT.CORE.FCT_RATINGS
        where rated_month < '1995-04-01'::date group by 1""")
    assert {f"{month:%Y-%m}": n for month, n in per_month_fct} == {m: BACKFILL_ROWS for m in BACKFILL_MONTHS}


# -- S3: a dead endpoint fails the step within a stated time ------------------------------------

def test_a_silent_s3_endpoint_fails_the_load_step_with_its_location_within_the_bound(tmp_path, monkeypatch):
    """A loopback port that accepts connections and never answers: every S3 call waits at most
    (1 try + 3 retries) x (connect + read timeout) + 7 s of backoff, and the step retries a
    transient fault 3 times (store_faults: 1 + 2 + 4 s, +25 % jitter)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_TEST_KEY_ID)  # credentials exist: the wait is the network's
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_TEST_SECRET)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
    try:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        settings = Settings.from_env({
            "NETFLIX_ELT_HOME": str(tmp_path / "home"), "NETFLIX_ELT_STORE": "s3", "NETFLIX_ELT_BUCKET": "nowhere",
            "NETFLIX_ELT_S3_ENDPOINT_URL": endpoint,
            "NETFLIX_ELT_S3_CONNECT_TIMEOUT_S": "1", "NETFLIX_ELT_S3_READ_TIMEOUT_S": "1",
        })
        assert (settings.s3_connect_timeout_s, settings.s3_read_timeout_s) == (1, 1)
        per_call = 4 * (1 + 1) + 7
        bound = 4 * per_call + (1 + 2 + 4) * 1.25
        started = time.monotonic()
        result = materialize(settings, [dg.AssetKey(["raw", "movies"])], raise_on_error=False)
        seconds = time.monotonic() - started
    finally:
        silent.close()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert f"s3://nowhere/raw/movies/ (endpoint {endpoint})" in message and "timeout" in message.lower(), message
    assert S3_TEST_SECRET not in message
    assert seconds < bound, f"{seconds:.1f} s > {bound} s"
    print(f"silent endpoint: the step failed after {seconds:.1f} s (bound {bound} s)")
