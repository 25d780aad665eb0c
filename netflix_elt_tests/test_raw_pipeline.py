"""Extract + load through real Dagster runs, on the folder store and on a real S3 API server."""

from __future__ import annotations

import boto3
import dagster as dg
import duckdb
import pytest

from netflix_elt.movielens import dataset
from netflix_elt.partitions import ratings_monthly
from netflix_elt_tests.conftest import materialize, write_csv

GROUPLENS_COUNTS = {"ratings": 100_836, "movies": 9_742, "tags": 3_683, "links": 9_742}
RAW = dg.AssetSelection.groups("s3", "raw")
ALL_MONTHS = (ratings_monthly.get_first_partition_key(), ratings_monthly.get_last_partition_key())


def table_counts(settings) -> dict[str, int]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        names = ["movies", "ratings", "tags", "links", "genome_scores", "genome_tags"]
        return {n: con.execute(f"select count(*) from raw.{n}").fetchone()[0] for n in names}


def row_hash(table: str) -> str:
    """An order-independent checksum of every delivered value and the object it came from."""
    cols = ", ".join(f'"{c}"' for c in dataset(table).column_names)
    return f"sum(hash({cols}, _source_object))"


def checksum(settings, table="ratings", where="true") -> tuple:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"select count(*), {row_hash(table)} from raw.{table} where {where}").fetchone()


@pytest.mark.parametrize("store", ["folder", "s3"])
def test_the_shipped_data_loads_with_the_exact_grouplens_counts(request, store):
    settings = request.getfixturevalue(f"{'local' if store == 'folder' else 's3'}_settings")
    result = materialize(settings, RAW, ALL_MONTHS)
    assert result.success
    counts = table_counts(settings)
    assert {k: counts[k] for k in GROUPLENS_COUNTS} == GROUPLENS_COUNTS
    # The synthetic stand-in genome covers every shipped movie (8 tags in tests).
    assert counts["genome_tags"] == 8 and counts["genome_scores"] == 9_742 * 8
    checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    # The six reconcile checks, and the dbt source tests, which are checks on these raw assets too.
    assert sum(c.check_name == "rows_reconcile" for c in checks) == 6 and len(checks) > 6
    assert all(c.passed for c in checks)


def test_ratings_land_in_the_store_as_one_object_per_month(local_settings):
    materialize(local_settings, dg.AssetSelection.keys(["s3", "ratings"]), ALL_MONTHS)
    months = sorted(p.name for p in (local_settings.store_root / "netflix-elt" / "raw" / "ratings").iterdir())
    assert months[0] == "month=1996-03" and months[-1] == "month=2018-09" and len(months) == 267
    assert (local_settings.store_root / "netflix-elt/raw/ratings/month=1996-03/ratings.csv").exists()


def test_running_everything_twice_duplicates_nothing(local_settings):
    materialize(local_settings, RAW, ALL_MONTHS)
    first = {t: checksum(local_settings, t) for t in GROUPLENS_COUNTS}
    result = materialize(local_settings, RAW, ALL_MONTHS)
    assert result.success
    assert {t: checksum(local_settings, t) for t in GROUPLENS_COUNTS} == first
    loads = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["raw", "ratings"])]
    assert loads[0].materialization.metadata["objects_unchanged"].value == 267


def test_a_redelivered_changed_month_replaces_that_month_only(s3_settings):
    materialize(s3_settings, RAW, ALL_MONTHS)
    before = checksum(s3_settings)
    other_months = checksum(s3_settings, where="_source_object not like '%2000-11%'")
    corrected = write_csv(s3_settings.home / "fix.csv", "userId,movieId,rating,timestamp\n9001,1,1.0,974000000\n9002,2,2.0,974000001\n")
    s3 = boto3.client("s3", endpoint_url=s3_settings.s3_endpoint_url)
    s3.upload_file(str(corrected), s3_settings.bucket, "raw/ratings/month=2000-11/ratings.csv")
    assert materialize(s3_settings, dg.AssetSelection.keys(["raw", "ratings"]), ("2000-11", "2000-11")).success
    with duckdb.connect(str(s3_settings.warehouse_path), read_only=True) as con:
        month = con.execute(
            "select userId, movieId, rating from raw.ratings where _source_object like '%2000-11%' order by 1"
        ).fetchall()
    after_others = checksum(s3_settings, where="_source_object not like '%2000-11%'")
    assert month == [(9001, 1, 1.0), (9002, 2, 2.0)]
    assert after_others == other_months and checksum(s3_settings) != before


def test_a_month_with_bad_rows_loads_the_good_ones_and_reports_the_rejects(local_settings):
    materialize(local_settings, RAW, ALL_MONTHS)
    bad = write_csv(local_settings.home / "bad.csv", "userId,movieId,rating,timestamp\n9001,1,4.0,974000000\n9001,2,9.0,974000000\n")
    from netflix_elt.resources.object_store import FolderObjectStore

    FolderObjectStore(root=str(local_settings.store_root)).put_file(bad, "raw/ratings/month=2000-11/ratings.csv")
    result = materialize(local_settings, dg.AssetSelection.keys(["raw", "ratings"]), ("2000-11", "2000-11"))
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    assert (meta["rows_loaded"].value, meta["rows_rejected"].value) == (1, 1)
    with duckdb.connect(str(local_settings.warehouse_path), read_only=True) as con:
        assert con.execute("select line_number, raw_line from raw._load_rejects").fetchall() == [(3, "9001,2,9.0,974000000")]


def test_a_truncated_delivery_fails_the_load_with_the_object_named(local_settings):
    materialize(local_settings, RAW, ALL_MONTHS)
    truncated = local_settings.store_root / "netflix-elt/raw/tags/tags.csv"
    truncated.write_bytes(truncated.read_bytes()[:-7])
    result = materialize(local_settings, dg.AssetSelection.keys(["raw", "tags"]), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "raw/tags/tags.csv" in message and "truncated" in message
    assert table_counts(local_settings)["tags"] == 3_683  # the previous good load is untouched


def test_an_unreachable_s3_endpoint_fails_with_endpoint_and_bucket_named(tmp_path, s3_server):
    from netflix_elt.settings import SHIPPED_DATA, Settings

    settings = Settings(home=tmp_path / "h", source=SHIPPED_DATA, store="s3", bucket="nowhere",
                        s3_endpoint_url="http://127.0.0.1:9", synthetic_genome_tags=8)
    result = materialize(settings, dg.AssetSelection.keys(["raw", "movies"]), raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "s3://nowhere/raw/movies/" in message and "127.0.0.1:9" in message
    assert "netflix-elt-test-secret" not in message
    # Unreachable is transient: the step was retried with backoff before it failed.
    assert any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_odd_object_keys_on_s3_load_through_the_raw_asset(s3_settings):
    key = "raw/ratings/month=2000-07/it's é; drop table raw.ratings; -- \"x\".csv"
    body = write_csv(s3_settings.home / "odd.csv", "userId,movieId,rating,timestamp\n1,1,4.0,962409600\n")
    boto3.client("s3", endpoint_url=s3_settings.s3_endpoint_url).upload_file(str(body), s3_settings.bucket, key)
    assert materialize(s3_settings, dg.AssetSelection.keys(["raw", "ratings"]), ("2000-07", "2000-07")).success
    with duckdb.connect(str(s3_settings.warehouse_path), read_only=True) as con:
        assert con.execute("select _source_object, count(*) from raw.ratings group by 1").fetchall() == [(key, 1)]


def _failure_of_loading_movies(settings) -> str:
    """Load raw/movies, which must fail at once (a permanent store error: no retry) without the
    secret anywhere in the run's events; the failure's message."""
    result = materialize(settings, dg.AssetSelection.keys(["raw", "movies"]), raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    logs = "\n".join(str(e) for e in result.all_events)
    assert "netflix-elt-test-secret" not in logs
    return str(failure.event_specific_data.error)


def test_a_missing_bucket_fails_naming_the_bucket_and_never_the_secret(tmp_path, s3_server):
    from netflix_elt.settings import SHIPPED_DATA, Settings

    settings = Settings(home=tmp_path / "h", source=SHIPPED_DATA, store="s3", bucket="no-such-bucket",
                        s3_endpoint_url=s3_server, synthetic_genome_tags=8)
    message = _failure_of_loading_movies(settings)
    assert "s3://no-such-bucket/raw/movies/" in message and "NoSuchBucket" in message


@pytest.fixture
def s3_server_enforcing_credentials(s3_server):
    """A second moto S3 server, in its own process, that checks credentials (moto's IAM auth:
    INITIAL_NO_AUTH_ACTION_COUNT=0), so keys it never issued are refused like on AWS."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from netflix_elt_tests.conftest import _free_port

    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_wrong_credentials_fail_at_once_naming_endpoint_and_bucket_never_the_secret(tmp_path, s3_server_enforcing_credentials):
    from netflix_elt.settings import SHIPPED_DATA, Settings

    settings = Settings(home=tmp_path / "h", source=SHIPPED_DATA, store="s3", bucket="netflix-elt",
                        s3_endpoint_url=s3_server_enforcing_credentials, synthetic_genome_tags=8)
    message = _failure_of_loading_movies(settings)
    assert "s3://netflix-elt/raw/movies/" in message and s3_server_enforcing_credentials in message
    assert "InvalidAccessKeyId" in message, message


def test_a_tags_file_with_a_quoted_newline_and_a_doubled_quote_loads_every_row_and_reconciles(local_settings, tmp_path):
    """Valid CSV (RFC 4180): a tag holding a newline and one holding a quote are one row each, so
    the rows counted in the delivered file match the rows loaded and ``rows_reconcile`` passes."""
    import dataclasses
    import shutil

    source = tmp_path / "source"
    shutil.copytree(local_settings.source, source)
    write_csv(source / "tags.csv", (
        "userId,movieId,tag,timestamp\n"
        "2,60756,funny,1445714994\n"
        '2,60756,"Highly quotable\nsecond line",1445714996\n'
        '2,89774,"the ""best"" one",1445715207\n'
        '7,48516,"very long, film",1169687325\n'
    ))
    settings = dataclasses.replace(local_settings, source=source)
    result = materialize(settings, dg.AssetSelection.keys(["s3", "tags"], ["raw", "tags"]))
    assert result.success
    load = next(e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["raw", "tags"]))
    meta = load.materialization.metadata
    assert (meta["rows_in_files"].value, meta["rows_loaded"].value, meta["rows_rejected"].value) == (4, 4, 0)
    checks = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(c.check_name, c.passed) for c in checks if c.check_name == "rows_reconcile"] == [("rows_reconcile", True)]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tags = [r[0] for r in con.execute("select tag from raw.tags order by timestamp").fetchall()]
    assert tags == ["very long, film", "funny", "Highly quotable\nsecond line", 'the "best" one']
