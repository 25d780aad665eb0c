"""What a raw table's page in the UI says about its latest load, read back from a real Dagster
instance after real runs on DuckDB: the row count Dagster plots, the run's rejects by reason, a
sample of them, the SQL that lists them all, and a failed ``rows_reconcile`` naming its objects.
(The same metadata on Snowflake: test_snowflake_emulator.py.)"""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from netflix_elt.assets.load import reconcile_check_key
from netflix_elt.instance import ensure_dagster_home
from netflix_elt.loading.load_report import SAMPLE_ROWS
from netflix_elt.movielens import dataset
from netflix_elt.resources.object_store import FolderObjectStore
from netflix_elt_tests.conftest import materialize, write_csv

RATINGS = dg.AssetKey(["raw", "ratings"])
GOOD_KEY = "raw/ratings/month=2000-10/ratings.csv"
BAD_KEY = "raw/ratings/month=2000-11/ratings.csv"
MONTHS = ("2000-10", "2000-11")
HEADER = "userId,movieId,rating,timestamp\n"
RULE = "rating breaks rule: rating between 0.5 and 5.0 and rating * 2 = round(rating * 2)"
# The bad month: 2 good rows, then 12 ratings out of range, 2 ids that are not numbers (one
# reason: the reader's cast error counts by its first sentence, which names the column) and a
# line with a field too many.
BAD_MONTH = (
    HEADER + "1,1,4.0,974000000\n2,2,3.5,974000001\n"
    + "".join(f"3,{m},9.0,974000002\n" for m in range(10, 22))
    + "4,x,3.0,974000003\n4,y,3.0,974000004\n5,5,3.0,974000005,extra\n"
)
EXPECTED_BY_REASON = {RULE: 12, 'CAST: Error when converting column "movieId"': 2,
                      "TOO MANY COLUMNS: Expected Number of Columns: 4 Found: 5": 1}


def _deliver(settings, key: str, text: str) -> None:
    src = write_csv(settings.home / "upload" / key.replace("/", "_"), text)
    FolderObjectStore(root=str(settings.store_root), bucket=settings.bucket).put_file(src, key)


def _load_ratings(settings, instance, months=MONTHS) -> dg.ExecuteInProcessResult:
    return materialize(settings, dg.AssetSelection.keys(RATINGS), months, instance=instance)


def _latest(instance, key=RATINGS) -> dict:
    return instance.get_latest_materialization_event(key).asset_materialization.metadata


def _rows(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def instance(local_settings):
    """The persistent instance of the throwaway home, as `netflix-elt run` and `dev` open it."""
    with dg.DagsterInstance.from_config(str(ensure_dagster_home(local_settings))) as instance:
        yield instance


@pytest.fixture
def loaded_with_rejects(local_settings, instance):
    _deliver(local_settings, GOOD_KEY, HEADER + "1,1,4.0,971000000\n1,2,5.0,971000001\n1,3,0.5,971000002\n")
    _deliver(local_settings, BAD_KEY, BAD_MONTH)
    return _load_ratings(local_settings, instance)


def test_a_load_with_malformed_rows_shows_the_row_count_the_rejects_by_reason_a_sample_and_the_query_for_all(
        local_settings, instance, loaded_with_rejects):
    meta = _latest(instance)
    assert meta["dagster/row_count"].value == _rows(local_settings, "select count(*) from raw.ratings")[0][0] == 5
    assert "table_rows" not in meta  # the same figure under one name
    assert meta["rows_rejected"].value == 15

    by_reason = {r.data["reason"]: r.data["rows"] for r in meta["rejects_by_reason"].value.records}
    assert by_reason == EXPECTED_BY_REASON

    sample = [r.data for r in meta["rejects_sample"].value.records]
    assert len(sample) == SAMPLE_ROWS  # of 15
    assert {r["object_key"] for r in sample} == {BAD_KEY}
    # The first of each reason, then the second of each, ...: the rare reasons are not crowded out.
    assert [r["line_number"] for r in sample] == [4, 16, 18, 5, 17, 6, 7, 8, 9, 10]
    assert sample[0] == {"object_key": BAD_KEY, "line_number": 4, "raw_line": "3,10,9.0,974000002", "reason": RULE}
    assert sample[1]["reason"] == 'CAST: Error when converting column "movieId". Could not convert string "x" to \'UINTEGER\''
    assert sample[2]["raw_line"] == "5,5,3.0,974000005,extra"

    query = meta["rejects_query"].value
    assert loaded_with_rejects.run_id in query
    rows = _rows(local_settings, query)  # exactly what a user pastes into duckdb
    assert len(rows) == meta["rows_rejected"].value
    assert {r[0] for r in rows} == {BAD_KEY}

    ledger = _rows(local_settings, meta["ledger_query"].value)
    assert sorted((r[0], r[1], r[2], r[3], r[4]) for r in ledger) == [(GOOD_KEY, "loaded", 3, 3, 0), (BAD_KEY, "loaded", 17, 2, 15)]


def test_a_clean_load_shows_zero_rejects_and_no_empty_tables_and_the_earlier_query_finds_nothing_left(
        local_settings, instance, loaded_with_rejects):
    earlier_query = _latest(instance)["rejects_query"].value
    _deliver(local_settings, BAD_KEY, HEADER + "1,1,4.0,974000000\n2,2,3.5,974000001\n")  # the corrected month

    _load_ratings(local_settings, instance, ("2000-11", "2000-11"))

    meta = _latest(instance)
    assert meta["rows_rejected"].value == 0 and meta["rows_loaded"].value == 2
    assert not {"rejects_by_reason", "rejects_sample", "rejects_query"} & set(meta)
    assert meta["dagster/row_count"].value == 5
    # The corrected load replaced the month's rejects: the earlier run's query lists none.
    assert _rows(local_settings, earlier_query) == []


def test_a_failed_rows_reconcile_names_the_objects_that_do_not_balance(local_settings, instance, loaded_with_rejects):
    with duckdb.connect(str(local_settings.warehouse_path)) as con:  # one row lost behind the loader's back
        con.execute(f"delete from raw.ratings where _source_object = '{BAD_KEY}' and movieId = 2")

    result = materialize(local_settings, dg.AssetSelection.checks(reconcile_check_key(dataset("ratings"))),
                         instance=instance, raise_on_error=False)

    (evaluation,) = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert not evaluation.passed
    assert evaluation.metadata["disagreeing_objects"].value == [BAD_KEY]
    assert evaluation.description.endswith(f"; objects: {BAD_KEY}")
    assert "raw.ratings holds 4 rows, the ledger says 5 were loaded" in evaluation.description
