"""The new-objects sensor against the folder store and a real S3 API server."""

from __future__ import annotations

import json
import time

import dagster as dg
import pytest

from netflix_elt.definitions import build_definitions
from netflix_elt.resources.factory import build_object_store
from netflix_elt.sensors import CLOCK_SKEW_MARGIN_S, SensorCursor, build_new_objects_sensor, selection_of
from netflix_elt_tests.conftest import write_csv

MONTH_CSV = "userId,movieId,rating,timestamp\n1,1,4.0,{ts}\n"


@pytest.fixture(params=["folder", "s3"])
def settings(request):
    return request.getfixturevalue("local_settings" if request.param == "folder" else "s3_settings")


@pytest.fixture
def defs(settings):
    return build_definitions(settings)


def put(settings, key: str, text: str):
    path = write_csv(settings.home / "upload" / "file.csv", text)
    return build_object_store(settings).put_file(path, key)


def switched_on_earlier() -> str:
    """The cursor of a sensor switched on a while ago (its first sweep over): whatever is put
    now is a delivery it has not seen."""
    since = time.time() - CLOCK_SKEW_MARGIN_S
    return SensorCursor(since=since, next_since=since).dumps()


def tick(defs, settings, cursor=None, **sensor_kwargs):
    """One tick; without a cursor, of a sensor switched on earlier (the first tick's own rule has
    its own test)."""
    cursor = cursor or switched_on_earlier()
    sensor = build_new_objects_sensor(**sensor_kwargs)
    with dg.build_sensor_context(cursor=cursor, resources={"object_store": build_object_store(settings)}, definitions=defs) as context:
        return sensor(context)


def test_a_new_month_of_ratings_yields_one_run_for_that_partition_and_none_on_the_next_tick(defs, settings):
    put(settings, "raw/ratings/month=2000-07/ratings.csv", MONTH_CSV.format(ts=962409600))
    first = tick(defs, settings)
    assert [(r.partition_key, r.run_key.split("@")[0]) for r in first.run_requests] == [
        ("2000-07", "raw/ratings/month=2000-07/ratings.csv")
    ]
    selection = set(first.run_requests[0].asset_selection)
    assert {dg.AssetKey(["raw", "ratings"]), dg.AssetKey(["core", "fct_ratings"]), dg.AssetKey(["marts", "mart_movie_analysis"])} <= selection
    assert dg.AssetKey(["raw", "movies"]) not in selection
    # dbt's source tests on raw/ratings run in dbt_models, which has nothing else to do here:
    # they stay out of the run (full runs run them); the month's own checks are in
    checks = {(c.asset_key.to_user_string(), c.name) for c in first.run_requests[0].asset_check_keys}
    assert {name for key, name in checks if key == "raw/ratings"} == {"rows_reconcile"}
    assert {"core/fct_ratings", "staging/stg_ratings", "core/dim_users"} <= {key for key, _ in checks}
    assert [(e.asset_key, e.partition) for e in first.asset_events] == [(dg.AssetKey(["s3", "ratings"]), "2000-07")]
    assert tick(defs, settings, first.cursor).run_requests == []


def test_objects_in_the_store_when_the_sensor_is_switched_on_are_never_requested_even_if_written_just_before(defs, settings):
    """`make run` then `make dev` and the sensor switched on at once: the objects the run wrote
    seconds ago are not deliveries (they used to be, inside the clock-skew margin: ~280 runs)."""
    put(settings, "raw/ratings/month=2000-07/ratings.csv", MONTH_CSV.format(ts=962409600))
    put(settings, "raw/movies/movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n")
    time.sleep(1.1)  # switched on a second later (S3's timestamps are whole seconds)
    sensor = build_new_objects_sensor()
    store = build_object_store(settings)
    with dg.build_sensor_context(resources={"object_store": store}, definitions=defs) as context:
        first = sensor(context)  # no cursor: the very first tick
    assert first.run_requests == [] and first.asset_events == []
    put(settings, "raw/ratings/month=2000-08/ratings.csv", MONTH_CSV.format(ts=965088000))
    second = tick(defs, settings, first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2000-08"]
    # The next sweep, which looks back over the clock-skew margin, still leaves the old ones alone.
    third = tick(defs, settings, second.cursor)
    assert third.run_requests == [] and json.loads(third.cursor)["baseline_until"] == 0.0


def test_a_changed_object_is_a_new_version_with_its_own_run_key(defs, settings):
    put(settings, "raw/movies/movies.csv", "movieId,title,genres\n1,Toy Story (1995),Comedy\n")
    first = tick(defs, settings)
    put(settings, "raw/movies/movies.csv", "movieId,title,genres\n1,Toy Story 2 (1999),Comedy\n")
    second = tick(defs, settings, first.cursor)
    third = tick(defs, settings, second.cursor)
    keys = [r.run_key for r in first.run_requests + second.run_requests + third.run_requests]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(r.partition_key is None for r in first.run_requests + second.run_requests)


def test_stray_keys_markers_and_temporary_names_are_skipped_without_failing_the_tick(defs, settings):
    for key in ["raw/notes.txt", "raw/ratings/ratings.csv", "raw/movies/movies.csv.part", "raw/movies/_tmp_movies.csv",
                "raw/ratings/month=1980-01/ratings.csv", "raw/unknown/file.csv"]:
        put(settings, key, "x\n")
    put(settings, "raw/tags/tags.csv", "userId,movieId,tag,timestamp\n1,1,funny,1\n")
    result = tick(defs, settings)
    assert [r.run_key.split("@")[0] for r in result.run_requests] == ["raw/tags/tags.csv"]


def test_the_listing_is_paged_and_resumes_after_the_cursor_until_the_sweep_ends(defs, settings):
    months = [f"2001-{m:02d}" for m in range(1, 13)]
    for month in months:
        put(settings, f"raw/ratings/month={month}/ratings.csv", MONTH_CSV.format(ts=980000000))
    cursor, seen, ticks = None, [], 0
    while True:
        ticks += 1
        result = tick(defs, settings, cursor, max_objects_per_tick=5, page_size=2)
        seen += [r.partition_key for r in result.run_requests]
        cursor = result.cursor
        if json.loads(cursor)["after"] == "":
            break
    assert ticks == 3 and seen == months  # 5 + 5 + 2 objects: resumed, never re-listed from the start
    assert tick(defs, settings, cursor, max_objects_per_tick=5, page_size=2).run_requests == []


def test_the_cursor_stays_small_once_objects_age_out(defs, settings):
    put(settings, "raw/ratings/month=2002-01/ratings.csv", MONTH_CSV.format(ts=1010000000))
    cursor = tick(defs, settings).cursor
    state = json.loads(cursor)
    state["since"] = state["next_since"] = 10**10  # as if much later: the object is now old
    state["after"] = ""
    cursor = tick(defs, settings, json.dumps(state)).cursor
    assert json.loads(cursor)["handled"] == {}


def test_a_sensor_requested_run_loads_the_month_through_to_the_marts(local_settings):
    """End to end: the run the sensor asks for succeeds and lands the month in fct_ratings."""
    from netflix_elt.cli import run_all

    run_all(local_settings, instance=dg.DagsterInstance.ephemeral())
    defs = build_definitions(local_settings)
    from netflix_elt.deliveries import deliver_ratings_month
    from netflix_elt.settings import SHIPPED_DATA

    deliver_ratings_month(build_object_store(local_settings), SHIPPED_DATA / "movies.csv", "2019-03", rows=200)
    # The first tick also sees what run_all wrote moments ago (inside the clock-skew margin).
    request = next(r for r in tick(defs, local_settings).run_requests if r.partition_key == "2019-03")
    result = dg.materialize(
        defs.assets, resources=defs.resources, selection=selection_of(request),
        partition_key=request.partition_key, instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    import duckdb

    with duckdb.connect(str(local_settings.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from core.fct_ratings where rated_month = date '2019-03-01'").fetchone() == (200,)
        assert con.execute("select count(*) from core.fct_ratings").fetchone() == (100_836 + 200,)
