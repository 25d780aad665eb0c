"""A failed blocking check stops what is downstream of its asset in the same run.

Unit-level (in-process runs of the real definitions on a throwaway home); the same flow
through the webserver and the daemon is in test_ui_flows.py.
"""

from __future__ import annotations

import io

import dagster as dg
import duckdb
import pytest

from netflix_elt.cli import print_summary, run_all
from netflix_elt.instance import open_instance
from netflix_elt_tests.conftest import materialize

DOWNSTREAM_OF_TAGS = ["staging/stg_tags", "snapshots/snap_tags", "core/dim_movies_with_tags", "marts/mart_tag_relevance_analysis"]


@pytest.mark.slow
def test_a_failed_rows_reconcile_stops_every_model_downstream_of_its_table_and_the_summary_gives_its_figures(local_settings):
    settings = local_settings
    instance = open_instance(settings)
    first = run_all(settings, instance=instance)
    assert first["success"], first
    with duckdb.connect(str(settings.warehouse_path)) as con:  # one row lost behind the loader's back
        con.execute("delete from raw.tags where rowid = (select min(rowid) from raw.tags)")

    second = run_all(settings, instance=instance)

    assert not second["success"]
    assert "raw__tags" in second["failed_steps"]
    [line] = [c for c in second["failed_checks"] if c.startswith("raw/tags:rows_reconcile")]
    rows = first["raw_rows"]["tags"]
    assert f"raw.tags holds {rows - 1:,} rows, the ledger says {rows:,} were loaded" in line
    assert f"table_rows={rows - 1:,}" in line
    for key in DOWNSTREAM_OF_TAGS:  # not rebuilt by the second run
        record = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
        assert record.run_id == first["run_id"], key
    # The other tables still load. (The dbt steps are skipped whole: dbt_models reads raw.tags,
    # and the later dbt steps read dbt_models' tables.)
    assert instance.get_latest_materialization_event(dg.AssetKey(["raw", "movies"])).run_id == second["run_id"]
    out = io.StringIO()
    print_summary(second, out)
    assert "failed check: raw/tags:rows_reconcile: raw.tags holds" in out.getvalue()


def test_an_object_that_cannot_be_loaded_fails_its_load_at_once_without_retries(local_settings):
    from netflix_elt_tests.conftest import write_csv

    settings = local_settings
    write_csv(settings.store_root / settings.bucket / "raw/tags/tags.csv", "userId,movieId,tag,timestamp\n1,2,abc,123\n1,3,de")

    result = materialize(settings, dg.AssetSelection.keys(["raw", "tags"]), raise_on_error=False)

    types = [e.event_type_value for e in result.all_events]
    assert "STEP_FAILURE" in types and "STEP_UP_FOR_RETRY" not in types and "STEP_RESTARTED" not in types
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "raw/tags/tags.csv: the object looks truncated" in failure.event_specific_data.error.message


@pytest.mark.slow
def test_a_failed_dbt_check_gives_how_many_rows_failed_and_the_query_that_lists_them(local_settings):
    """A user reading a failed check sees dbt's count and can run the test's own SQL for the rows."""
    settings = local_settings
    assert run_all(settings)["success"]
    with duckdb.connect(str(settings.warehouse_path)) as con:  # two users' yearly sums made impossible
        con.execute("update core.fct_user_ratings_yearly set rating_sum = ratings_count * 9 "
                    "where user_id in (select distinct user_id from core.fct_user_ratings_yearly order by 1 limit 2)")

    result = materialize(settings, dg.AssetSelection.keys(["core", "dim_users"]), raise_on_error=False)

    failed = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
              and not e.event_specific_data.passed]
    [check] = [c for c in failed if c.check_name == "dim_users__avg_rating_between_0_5_and_5"]
    assert check.metadata["dagster_dbt/failed_row_count"].value == 2
    query = check.metadata["failing_rows_query"].value
    sql = query.split("```sql\n", 1)[1].rsplit("\n```", 1)[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert len(con.execute(sql).fetchall()) == 2
