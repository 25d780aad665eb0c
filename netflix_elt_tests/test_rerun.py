"""`make run` twice, with a delivery in between: the second run writes no object, keeps the
delivery, and the delivered title reaches dim_movies and snap_movies."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from netflix_elt.cli import run_all
from netflix_elt.deliveries import deliver_movie_change
from netflix_elt.resources.factory import build_object_store

NEW_TITLE = "Toy Story (Director's Cut) (1995)"


def _etags(store) -> dict[str, str]:
    return {o.key: o.etag for o in store.list_objects("raw/")}


@pytest.mark.slow
def test_a_second_make_run_rewrites_nothing_and_keeps_a_delivered_title_through_dim_movies_and_snap_movies(local_settings):
    settings = local_settings
    instance = dg.DagsterInstance.ephemeral()
    assert run_all(settings, instance=instance)["success"]
    store = build_object_store(settings)
    delivered = deliver_movie_change(store, 1, NEW_TITLE)
    before = _etags(store)

    second = run_all(settings, instance=instance)

    assert second["success"], second["failed_steps"]
    assert _etags(store) == before  # not one object rewritten: the sensor would see nothing new
    assert before["raw/movies/movies.csv"] == delivered.etag
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select title from core.dim_movies where movie_id = 1").fetchone() == (NEW_TITLE,)
        versions = con.execute(
            "select title, dbt_valid_to is null from snapshots.snap_movies where movie_id = 1 order by dbt_valid_from"
        ).fetchall()
    assert versions == [("Toy Story (1995)", False), (NEW_TITLE, True)]
