"""The extract's rule (``netflix_elt/assets/extract_state.py``): unchanged bytes are never written
again, a delivery made since the extract last wrote an object is kept (unless the run says
``replace_deliveries``), and a source that fails the checks never reaches ``raw/``."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from netflix_elt.assets import extract_state
from netflix_elt.deliveries import deliver_movie_change
from netflix_elt.loading.inspect_file import inspect_file
from netflix_elt.partitions import ratings_monthly
from netflix_elt.resources.factory import build_object_store
from netflix_elt.settings import SHIPPED_DATA, Settings
from netflix_elt_tests.conftest import materialize, write_csv

ALL_MONTHS = (ratings_monthly.get_first_partition_key(), ratings_monthly.get_last_partition_key())
EXTRACT = dg.AssetSelection.groups("s3")
MOVIES = dg.AssetSelection.keys(["s3", "movies"], ["raw", "movies"])
NEW_TITLE = "Toy Story (Director's Cut) (1995)"


@pytest.fixture(params=["folder", "s3"])
def settings(request) -> Settings:
    return request.getfixturevalue(f"{'local' if request.param == 'folder' else 's3'}_settings")


def etags(settings: Settings, prefix: str = "raw/") -> dict[str, str]:
    return {o.key: o.etag for o in build_object_store(settings).list_objects(prefix)}


def metadata(result, *key: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(list(key)))
    return {name: entry.value for name, entry in event.materialization.metadata.items()}


def materialize_with_config(settings: Settings, selection, run_config: dict, monkeypatch, **kwargs):
    """``conftest.materialize`` with a run config, as the Launchpad would pass it."""
    real = dg.materialize
    with monkeypatch.context() as patch:
        patch.setattr(dg, "materialize", lambda *args, **kw: real(*args, run_config=run_config, **kw))
        return materialize(settings, selection, **kwargs)


def title_of_movie_1(settings: Settings) -> str:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("select title from raw.movies where movieId = 1").fetchone()[0]


def test_a_second_extract_on_unchanged_data_writes_nothing_and_every_etag_stays_the_same(settings):
    first = materialize(settings, EXTRACT, ALL_MONTHS)
    before = etags(settings)
    assert len(before) == 267 + 5  # 267 months and the five other files
    assert metadata(first, "s3", "ratings")["objects_written"] == 267
    shutil.rmtree(settings.work_dir)  # a wiped scratch folder (the synthetic genome is made again) changes nothing

    again = materialize(settings, EXTRACT, ALL_MONTHS)

    assert etags(settings) == before
    ratings = metadata(again, "s3", "ratings")
    assert (ratings["objects_unchanged"], ratings["objects_written"], ratings["objects_adopted"]) == (267, 0, 0)
    assert ratings["etags"] == {k: before[k] for k in ratings["etags"]} and len(ratings["etags"]) == 50
    for name in ("movies", "tags", "links", "genome_scores", "genome_tags"):
        meta = metadata(again, "s3", name)
        assert (meta["extract"], meta["uploaded"], meta["etag"]) == ("unchanged", False, before[meta["key"]])


def test_the_extract_keeps_its_record_in_the_store_outside_raw_with_the_loaders_content_hash(local_settings):
    materialize(local_settings, dg.AssetSelection.keys(["s3", "movies"]))
    store = build_object_store(local_settings)
    with store.local_copy("_netflix_elt/extract/movies.json") as path:
        record = json.loads(path.read_text())["objects"]["raw/movies/movies.csv"]
    assert record["etag"] == store.head("raw/movies/movies.csv").etag
    assert record["content_hash"] == inspect_file(SHIPPED_DATA / "movies.csv").content_hash
    assert extract_state.hash_file(SHIPPED_DATA / "movies.csv") == record["content_hash"]
    assert list(etags(local_settings)) == ["raw/movies/movies.csv"]  # the sensor's prefix holds only deliveries


def test_s3_objects_the_extract_writes_carry_their_content_hash_so_a_lost_record_adopts_them_without_a_download(
    s3_settings, monkeypatch
):
    materialize(s3_settings, dg.AssetSelection.keys(["s3", "movies"]))
    store = build_object_store(s3_settings)
    assert store.stored_content_hash("raw/movies/movies.csv") == inspect_file(SHIPPED_DATA / "movies.csv").content_hash
    before = etags(s3_settings)
    import boto3

    boto3.client("s3", endpoint_url=s3_settings.s3_endpoint_url).delete_object(
        Bucket=s3_settings.bucket, Key="_netflix_elt/extract/movies.json")
    monkeypatch.setattr(type(store), "local_copy", lambda *a: pytest.fail("downloaded the object"))

    again = materialize(s3_settings, dg.AssetSelection.keys(["s3", "movies"]))

    assert metadata(again, "s3", "movies")["extract"] == "adopted" and etags(s3_settings) == before


def test_a_lost_record_adopts_identical_objects_and_the_next_run_writes_nothing(local_settings):
    materialize(local_settings, EXTRACT, ALL_MONTHS)
    before = etags(local_settings)
    shutil.rmtree(local_settings.store_root / local_settings.bucket / "_netflix_elt")

    adopted = materialize(local_settings, EXTRACT, ALL_MONTHS)
    assert metadata(adopted, "s3", "ratings")["objects_adopted"] == 267
    again = materialize(local_settings, EXTRACT, ALL_MONTHS)

    assert metadata(again, "s3", "ratings")["objects_unchanged"] == 267
    assert etags(local_settings) == before


def test_a_changed_source_month_is_written_again_and_only_that_month(tmp_path):
    source = tmp_path / "source"
    header = "userId,movieId,rating,timestamp\n"
    write_csv(source / "ratings.csv", header + "1,1,4.0,964982703\n3,3,3.0,978307199\n")
    settings = Settings(home=tmp_path / "home", source=source, synthetic_genome_tags=8)
    materialize(settings, dg.AssetSelection.keys(["s3", "ratings"]), ALL_MONTHS)
    before = etags(settings)
    write_csv(source / "ratings.csv", header + "1,1,4.5,964982703\n3,3,3.0,978307199\n")  # the same size

    result = materialize(settings, dg.AssetSelection.keys(["s3", "ratings"]), ALL_MONTHS)

    after = etags(settings)
    july, december = "raw/ratings/month=2000-07/ratings.csv", "raw/ratings/month=2000-12/ratings.csv"
    assert after[july] != before[july] and after[december] == before[december]
    meta = metadata(result, "s3", "ratings")
    assert (meta["objects_written"], meta["objects_unchanged"]) == (1, 1)


def test_a_delivered_movies_csv_survives_the_next_full_extract_and_its_title_reaches_raw_movies(settings):
    selection = EXTRACT | MOVIES
    materialize(settings, selection, ALL_MONTHS)
    delivered = deliver_movie_change(build_object_store(settings), 1, NEW_TITLE)

    instance = dg.DagsterInstance.ephemeral()
    result = materialize(settings, selection, ALL_MONTHS, instance=instance)

    assert result.success
    assert etags(settings)["raw/movies/movies.csv"] == delivered.etag
    meta = metadata(result, "s3", "movies")
    assert (meta["extract"], meta["kept_deliveries"], meta["uploaded"]) == ("kept_delivery", ["raw/movies/movies.csv"], False)
    warnings = [e.user_message for e in instance.all_logs(result.run_id)
                if e.level == logging.WARNING and "kept (not overwritten" in e.user_message]
    assert len(warnings) == 1 and "raw/movies/movies.csv" in warnings[0] and "replace_deliveries: true" in warnings[0]
    assert title_of_movie_1(settings) == NEW_TITLE
    assert metadata(result, "s3", "ratings")["kept_deliveries"] == []


def test_with_replace_deliveries_the_source_wins_over_a_delivered_movies_csv(local_settings, monkeypatch):
    materialize(local_settings, MOVIES)
    delivered = deliver_movie_change(build_object_store(local_settings), 1, NEW_TITLE)
    assert materialize(local_settings, MOVIES).success and title_of_movie_1(local_settings) == NEW_TITLE

    config = {"ops": {"s3__movies": {"config": {"replace_deliveries": True}}}}
    result = materialize_with_config(local_settings, MOVIES, config, monkeypatch)

    meta = metadata(result, "s3", "movies")
    assert (meta["extract"], meta["replaced_deliveries"], meta["kept_deliveries"]) == (
        "replaced_delivery", ["raw/movies/movies.csv"], [])
    assert meta["etag"] != delivered.etag
    assert title_of_movie_1(local_settings) == "Toy Story (1995)"
    # The source's object is the extract's own again: the next run without the flag writes nothing.
    again = materialize(local_settings, MOVIES)
    assert metadata(again, "s3", "movies")["extract"] == "unchanged"


def test_a_delivered_month_is_kept_and_replace_deliveries_writes_the_source_month_over_it(local_settings, monkeypatch):
    selection = dg.AssetSelection.keys(["s3", "ratings"])
    materialize(local_settings, selection, ALL_MONTHS)
    key = "raw/ratings/month=2000-11/ratings.csv"
    store = build_object_store(local_settings)
    delivered = store.put_file(write_csv(local_settings.home / "fix.csv", "userId,movieId,rating,timestamp\n9001,1,1.0,974000000\n"), key)

    kept = materialize(local_settings, selection, ALL_MONTHS)
    assert metadata(kept, "s3", "ratings")["kept_deliveries"] == [key] and store.head(key).etag == delivered.etag

    config = {"ops": {"s3__ratings": {"config": {"replace_deliveries": True}}}}
    replaced = materialize_with_config(local_settings, selection, config, monkeypatch, partition_range=ALL_MONTHS)
    meta = metadata(replaced, "s3", "ratings")
    assert (meta["replaced_deliveries"], meta["objects_written"], meta["objects_unchanged"]) == ([key], 0, 266)
    assert store.head(key).etag != delivered.etag and b"9001" not in (local_settings.store_root / "netflix-elt" / key).read_bytes()


BROKEN = {
    "movies with a wrong header": ("movies", lambda body: body.replace(b"movieId,title", b"id,title", 1), "wrong header"),
    "movies truncated": ("movies", lambda body: body[:-7], "truncated"),
    "an empty movies file": ("movies", lambda body: b"", "empty"),
    "ratings truncated": ("ratings", lambda body: body[:-3], "truncated"),
    "ratings with a wrong header": ("ratings", lambda body: body.replace(b"userId", b"user", 1), "wrong header"),
}


def broken_source(tmp_path: Path, case: str) -> tuple[Settings, str, str]:
    name, breaks, reason = BROKEN[case]
    source = tmp_path / "source"
    shutil.copytree(SHIPPED_DATA, source)
    (source / f"{name}.csv").write_bytes(breaks((SHIPPED_DATA / f"{name}.csv").read_bytes()))
    return Settings(home=tmp_path / "home", source=source, synthetic_genome_tags=8), name, reason


def assert_failed_after_one_attempt(result, name: str, reason: str) -> None:
    assert not result.success
    events = [e for e in result.all_events if e.step_key == f"s3__{name}"]
    types = [e.event_type_value for e in events]
    assert types.count("STEP_START") == 1 and "STEP_UP_FOR_RETRY" not in types and types.count("STEP_FAILURE") == 1
    message = str(next(e for e in events if e.event_type_value == "STEP_FAILURE").event_specific_data.error)
    assert reason in message and "Nothing was written" in message


@pytest.mark.parametrize("case", BROKEN)
def test_a_refused_source_file_leaves_nothing_under_raw_and_fails_after_one_attempt(tmp_path, case):
    settings, name, reason = broken_source(tmp_path, case)
    result = materialize(settings, dg.AssetSelection.keys(["s3", name]), ALL_MONTHS, raise_on_error=False)
    assert_failed_after_one_attempt(result, name, reason)
    store_raw = settings.store_root / settings.bucket / "raw"
    assert not store_raw.exists() or not [p for p in store_raw.rglob("*") if p.is_file()]


def test_a_source_that_breaks_after_a_good_run_leaves_the_good_object_untouched(tmp_path):
    settings, name, reason = broken_source(tmp_path, "movies truncated")
    (settings.source / "movies.csv").write_bytes((SHIPPED_DATA / "movies.csv").read_bytes())
    materialize(settings, dg.AssetSelection.keys(["s3", "movies"]))
    before = etags(settings)
    (settings.source / "movies.csv").write_bytes((SHIPPED_DATA / "movies.csv").read_bytes()[:-7])

    result = materialize(settings, dg.AssetSelection.keys(["s3", "movies"]), raise_on_error=False)

    assert_failed_after_one_attempt(result, name, reason)
    assert etags(settings) == before


def test_netflix_elt_deliver_ratings_works_on_a_fresh_home_without_a_scratch_folder(tmp_path):
    home = tmp_path / "fresh-home"
    env = dict(os.environ, NETFLIX_ELT_HOME=str(home), NETFLIX_ELT_SOURCE=str(SHIPPED_DATA))
    env.pop("NETFLIX_ELT_STORE", None)
    done = subprocess.run([sys.executable, "-m", "netflix_elt.cli", "deliver", "ratings", "--month", "2026-11", "--rows", "50"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    delivered = home / "object_store" / "netflix-elt" / "raw" / "ratings" / "month=2026-11" / "ratings.csv"
    assert len(delivered.read_text().splitlines()) == 51
