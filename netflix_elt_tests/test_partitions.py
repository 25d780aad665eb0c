"""Monthly partitions end to end: backfills, out-of-order months, corrections, full refresh."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import datetime, timezone

import dagster as dg
import duckdb
import pytest

from netflix_elt.assets.dbt import ratings_window_env
from netflix_elt.cli import run_all
from netflix_elt.partitions import month_window, months_in_window
from netflix_elt.resources.factory import build_object_store
from netflix_elt.settings import DBT_PROJECT_DIR, SHIPPED_DATA, Settings
from netflix_elt_tests.conftest import materialize, write_csv

FACT = dg.AssetSelection.keys(["core", "fct_ratings"])
MONTHS = ("2000-01", "2000-03")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def test_a_month_window_is_half_open_and_ends_where_the_next_month_starts():
    assert month_window("2000-12") == (utc(2000, 12, 1), utc(2001, 1, 1))
    assert months_in_window(utc(2000, 1, 1), utc(2000, 4, 1)) == ["2000-01", "2000-02", "2000-03"]


def test_the_dbt_window_is_the_partition_window_in_utc():
    assert ratings_window_env(utc(2000, 1, 1), utc(2000, 4, 1)) == {
        "NETFLIX_ELT_RATINGS_WINDOW_START": "2000-01-01 00:00:00",
        "NETFLIX_ELT_RATINGS_WINDOW_END": "2000-04-01 00:00:00",
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("parts") / "home", source=SHIPPED_DATA, synthetic_genome_tags=4)
    assert run_all(settings, instance=dg.DagsterInstance.ephemeral())["success"]
    return settings


@pytest.fixture
def state(built, tmp_path):
    shutil.copytree(built.home, tmp_path / "home", ignore=shutil.ignore_patterns("dagster_home"))
    return replace(built, home=tmp_path / "home")


def fact_checksum(settings, where="true"):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            f"select count(*), sum(hash(user_id, movie_id, rating, rated_at)) from core.fct_ratings where {where}"
        ).fetchone()


def drop_months_from_fact(settings, first="2000-01-01", end="2000-04-01"):
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(f"delete from core.fct_ratings where rated_at >= '{first}' and rated_at < '{end}'")


def test_a_three_month_backfill_in_one_run_equals_the_full_load(built, state):
    full = fact_checksum(built)
    drop_months_from_fact(state)
    assert fact_checksum(state) != full
    result = materialize(state, FACT, MONTHS)
    assert result.success
    # One run, one dbt invocation for the whole range (the single-run backfill policy's shape).
    assert [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"] == ["dbt_fct_ratings"]
    assert fact_checksum(state) == full


def test_three_single_month_runs_out_of_order_and_repeated_equal_the_full_load(built, state):
    full = fact_checksum(built)
    drop_months_from_fact(state)
    for month in ["2000-03", "2000-01", "2000-02", "2000-01"]:
        result = materialize(state, FACT, (month, month))
        assert result.success
        # A month is light work: two dbt threads (the full run's long window gets one on DuckDB,
        # test_dbt_pipeline.py).
        assert dbt_threads(result.run_id) == ["2"]
    assert fact_checksum(state) == full


def dbt_threads(run_id: str) -> list[str]:
    """The thread count each of a run's dbt_fct_ratings invocations logged."""
    logs = (DBT_PROJECT_DIR / "target").glob(f"dbt_fct_ratings-{run_id[:7]}-*/dbt.log")
    return [re.search(r"Concurrency: (\d+) threads", p.read_text()).group(1) for p in logs]


def test_a_corrected_month_redelivered_replaces_that_month_only(built, state):
    others = fact_checksum(built, "rated_month <> date '2000-02-01'")
    store = build_object_store(state)
    key = "raw/ratings/month=2000-02/ratings.csv"
    with store.local_copy(key) as current:
        header, first, _dropped, *rest = current.read_text().splitlines()
    user, movie, rating, ts = first.split(",")
    fixed = f"{user},{movie},{0.5 if rating != '0.5' else 1.0},{ts}"  # a corrected value, one row withdrawn
    corrected = write_csv(state.home / "fix.csv", "\n".join([header, fixed, *rest]) + "\n")
    store.put_file(corrected, key)
    # stg_ratings sits between them: Dagster orders steps only through selected assets.
    selection = dg.AssetSelection.keys(["raw", "ratings"], ["staging", "stg_ratings"]) | FACT
    assert materialize(state, selection, ("2000-02", "2000-02")).success
    assert fact_checksum(state, "rated_month <> date '2000-02-01'") == others
    expected = sorted((int(u), int(m), float(r)) for u, m, r, _ in (line.split(",") for line in [fixed, *rest]))
    with duckdb.connect(str(state.warehouse_path), read_only=True) as con:
        month = con.execute(
            "select user_id, movie_id, rating::double from core.fct_ratings where rated_month = date '2000-02-01' order by all"
        ).fetchall()
    assert month == expected


def test_a_full_refresh_rebuilds_all_history_whatever_the_window(built, state):
    full = fact_checksum(built)
    drop_months_from_fact(state, "1990-01-01", "2030-01-01")
    assert fact_checksum(state)[0] == 0
    from netflix_elt.definitions import build_definitions

    defs = build_definitions(state)
    result = dg.materialize(
        defs.assets, resources=defs.resources, selection=FACT, partition_key="2000-01",
        run_config={"ops": {"dbt_fct_ratings": {"config": {"full_refresh": True}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert fact_checksum(state) == full
