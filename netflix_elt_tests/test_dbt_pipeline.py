"""The whole pipeline on DuckDB from the shipped data, with marts checked against plain SQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from netflix_elt.cli import run_all
from netflix_elt.dbt_manifest import dbt_executable, dbt_project
from netflix_elt.resources.object_store import FolderObjectStore
from netflix_elt.settings import DBT_PROJECT_DIR, SHIPPED_DATA, Settings
from netflix_elt_tests.conftest import CONTRACT_BREAKS, project_breaking_contracts
from netflix_elt_tests.conftest import materialize, write_csv


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full `netflix-elt run` (the same function `make run` calls) into a fresh home."""
    settings = Settings(home=tmp_path_factory.mktemp("built") / "home", source=SHIPPED_DATA, synthetic_genome_tags=8)
    summary = run_all(settings, instance=dg.DagsterInstance.ephemeral())
    return settings, summary


@pytest.fixture
def copy_of_built(built, tmp_path):
    """A private copy of the built state, for tests that change deliveries."""
    settings, _ = built
    shutil.copytree(settings.home, tmp_path / "home", ignore=shutil.ignore_patterns("dagster_home"))
    return replace(settings, home=tmp_path / "home")


def query(settings, sql, params=None):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_the_full_run_materializes_every_asset_and_passes_every_check(built):
    settings, summary = built
    assert summary["success"], summary
    assert summary["checks_failed"] == 0 and summary["checks_passed"] >= 100
    from netflix_elt.definitions import defs

    assert summary["assets_materialized"] == len(defs.resolve_asset_graph().get_all_asset_keys())


def test_the_top_movie_and_its_average_match_plain_sql_over_the_raw_tables(built):
    settings, _ = built
    expected = query(
        settings,
        """select movieId, round(avg(rating), 4), count(*) from raw.ratings group by movieId
           having count(*) >= 50 order by avg(rating) desc, count(*) desc limit 1""",
    )[0]
    got = query(settings, "select movie_id, avg_rating, ratings_count from marts.mart_movie_analysis where rating_rank = 1")
    assert got == [expected]
    assert query(settings, "select title_clean from marts.mart_movie_analysis where rating_rank = 1") == [
        ("Shawshank Redemption, The",)
    ]


def test_every_rating_reaches_the_fact_table_and_the_genre_mart_counts_match(built):
    settings, _ = built
    assert query(settings, "select count(*) from core.fct_ratings") == [(100_836,)]
    expected = query(
        settings,
        """select g.genre, count(*) from raw.ratings r join raw.movies m using (movieId),
                  unnest(string_split(m.genres, '|')) as g(genre)
           where g.genre <> '(no genres listed)' group by 1 order by 1""",
    )
    got = query(settings, "select genre, ratings_count from marts.mart_genre_rating_distribution where ratings_count > 0 and genre <> '(no genres listed)' order by 1")
    assert got == expected


def test_dim_users_holds_everyone_who_rated_or_tagged(built):
    settings, _ = built
    expected = query(settings, "select count(*) from (select userId from raw.ratings union select userId from raw.tags)")
    assert query(settings, "select count(*) from core.dim_users") == expected == [(610,)]


def test_titles_without_a_year_or_with_trailing_spaces_are_parsed(built):
    settings, _ = built
    rows = dict(query(settings, "select movie_id, release_year from core.dim_movies where movie_id in (1, 40697, 6184)"))
    babylon5 = query(settings, "select movieId from raw.movies where title = 'Babylon 5'")[0][0]
    runaway = query(settings, "select movieId from raw.movies where title = 'Runaway Brain (1995) '")[0][0]
    years = dict(query(settings, f"select movie_id, release_year from core.dim_movies where movie_id in (1, {babylon5}, {runaway})"))
    assert years == {1: 1995, babylon5: None, runaway: 1995}
    assert rows.get(1) == 1995


def test_a_changed_movie_redelivered_closes_its_old_snapshot_row_and_opens_a_new_one(copy_of_built):
    settings = copy_of_built
    movies = (SHIPPED_DATA / "movies.csv").read_bytes().replace(b"1,Toy Story (1995),", b"1,Toy Story (Director's Cut) (1995),")
    path = settings.home / "movies.csv"
    path.write_bytes(movies)
    FolderObjectStore(root=str(settings.store_root)).put_file(path, "raw/movies/movies.csv")
    selection = dg.AssetSelection.keys(["raw", "movies"]) | dg.AssetSelection.keys(["snapshots", "snap_movies"]).upstream(
        depth=2
    ) - dg.AssetSelection.groups("s3")
    result = materialize(settings, selection)
    assert result.success
    history = query(
        settings,
        "select title, dbt_valid_to is null from snapshots.snap_movies where movie_id = 1 order by dbt_valid_from",
    )
    assert history == [("Toy Story (1995)", False), ("Toy Story (Director's Cut) (1995)", True)]


def test_a_failing_blocking_data_test_stops_its_downstream(copy_of_built):
    settings = copy_of_built
    duplicated = (SHIPPED_DATA / "movies.csv").read_bytes() + b"1,Toy Story again (1995),Comedy\r\n"
    path = write_csv(settings.home / "dup.csv", "")
    path.write_bytes(duplicated)
    FolderObjectStore(root=str(settings.store_root)).put_file(path, "raw/movies/movies.csv")
    selection = dg.AssetSelection.keys(["raw", "movies"], ["staging", "stg_movies"], ["core", "dim_movies"])
    result = materialize(settings, selection, raise_on_error=False)
    checks = {
        (e.asset_check_evaluation_data.asset_key.to_user_string(), e.asset_check_evaluation_data.check_name): e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert checks[("raw/movies", "raw_movies__movie_id_unique")] is False
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey(["core", "dim_movies"]) not in materialized


def test_every_dbt_nodes_declared_columns_and_types_are_what_the_warehouse_has(built):
    """The yml cannot drift from the warehouse: every model, seed, snapshot and source declares
    exactly the columns its relation has after a real run, in order, with DuckDB's types (what
    Dagster shows as the asset's column schema)."""
    settings, _ = built
    manifest = json.loads(dbt_project.manifest_path.read_text())
    nodes = [n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed", "snapshot")]
    nodes += manifest["sources"].values()
    assert len(nodes) >= 30
    drift = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        def canonical(data_type: str) -> str:  # DuckDB's own name of a declared type (int -> INTEGER)
            return con.execute(f"select typeof(cast(null as {data_type}))").fetchone()[0]

        for node in nodes:
            relation = (node["schema"], node.get("identifier") or node["alias"])
            actual = [(name.lower(), data_type) for name, data_type in con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position", list(relation)).fetchall()]
            declared = [(name.lower(), canonical(column["data_type"])) for name, column in node["columns"].items()]
            if not actual or declared != actual:
                drift[".".join(relation)] = {"declared": declared, "warehouse": actual}
    assert drift == {}


def test_a_mart_that_breaks_its_contract_fails_its_build_and_the_old_table_stays(copy_of_built, tmp_path):
    """A changed column type and a renamed column, each in one mart's SQL (a copy of the dbt
    project): `dbt build` of those marts fails with dbt's contract error, before either table
    is replaced."""
    settings = copy_of_built
    project = project_breaking_contracts(tmp_path)
    changes = CONTRACT_BREAKS
    target = tmp_path / "target"
    run = subprocess.run(
        [dbt_executable(), "build", "--project-dir", str(project), "--profiles-dir", str(project),
         "--select", " ".join(changes), "--target-path", str(target), "--log-path", str(tmp_path / "logs")],
        env=dict(os.environ, **settings.dbt_env()), cwd=project, capture_output=True, text=True, check=False,
    )
    assert run.returncode == 1, run.stdout[-3000:]
    results = {r["unique_id"]: r for r in json.loads((target / "run_results.json").read_text())["results"]}
    for mart, column in (("mart_movie_release_trends", "movies_released"), ("mart_movie_releases", "rating_count")):
        result = results[f"model.netflix_elt.{mart}"]
        assert result["status"] == "error", result
        assert "This model has an enforced contract that failed" in result["message"], result["message"]
        assert column in result["message"], result["message"]
    assert {r["status"] for uid, r in results.items() if uid.startswith("test.")} <= {"skipped"}
    # the marts built by the run are still there, with their contracted columns
    assert query(settings, "select data_type from information_schema.columns where table_schema = 'marts' "
                           "and table_name = 'mart_movie_release_trends' and column_name = 'movies_released'") == [("BIGINT",)]
    assert query(settings, "select count(*) from marts.mart_movie_releases where ratings_count >= 0")[0][0] > 9000


def _dbt_test(settings, window: tuple[str, str], target: Path) -> dict[str, str]:
    """`dbt test` on the ratings window step's models over one window: status per test name."""
    env = dict(os.environ, **settings.dbt_env(), NETFLIX_ELT_RATINGS_WINDOW_START=window[0],
               NETFLIX_ELT_RATINGS_WINDOW_END=window[1])
    subprocess.run(
        [dbt_executable(), "test", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--select", "tag:ratings_window", "--target-path", str(target), "--quiet"],
        env=env, cwd=DBT_PROJECT_DIR, check=False,
    )
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["status"] for r in results}


def test_the_dbt_unit_tests_pass_here_since_pipeline_runs_leave_them_out(built, tmp_path):
    settings, summary = built
    target = tmp_path / "unit"
    subprocess.run(
        [dbt_executable(), "test", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--select", "test_type:unit", "--target-path", str(target), "--quiet"],
        env=dict(os.environ, **settings.dbt_env()), cwd=DBT_PROJECT_DIR, check=False,
    )
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests = [uid for uid in json.loads((target / "manifest.json").read_text())["unit_tests"]]
    assert len(unit_tests) >= 5
    assert {r["unique_id"]: r["status"] for r in results} == {uid: "pass" for uid in unit_tests}
    # ... and the pipeline's own dbt invocations (target folders named <step>-<run id>-...) left them out:
    # no node their logs name (each node's start and result) is a unit test.
    logs = list((DBT_PROJECT_DIR / "target").glob(f"dbt_*-{summary['run_id'][:7]}-*/dbt.log"))
    nodes = {json.loads(line)["data"].get("node_info", {}).get("unique_id") for p in logs for line in p.read_text().splitlines()}
    assert len(logs) == 3 and any(str(n).startswith("model.") for n in nodes)
    assert not any(str(n).startswith("unit_test.") for n in nodes)


def test_on_duckdb_the_partitioned_step_runs_its_heavy_models_one_at_a_time(built):
    _, summary = built
    logs = (DBT_PROJECT_DIR / "target").glob(f"dbt_*-{summary['run_id'][:7]}-*/dbt.log")
    threads = {p.parent.name.split("-")[0]: re.search(r"Concurrency: (\d+) threads", p.read_text()).group(1) for p in logs}
    assert threads == {"dbt_models": "2", "dbt_fct_ratings": "1", "dbt_marts": "2"}  # the profile says 2


def test_window_tests_catch_a_rating_repeated_in_a_later_month_and_a_changed_rating(copy_of_built, tmp_path):
    settings = copy_of_built
    with duckdb.connect(str(settings.warehouse_path)) as con:
        # the first rating of 2010, given again in June 2018 (same user, same movie) ...
        con.execute(
            """insert into core.fct_ratings
               select user_id, movie_id, rating, timestamp '2018-06-15 12:00:00', date '2018-06-15', date '2018-06-01',
                      is_positive, source_object, loaded_at
               from core.fct_ratings where rated_at >= timestamp '2010-01-01' order by rated_at, user_id limit 1"""
        )
        # ... and one rating of May 2018 changed behind staging's back
        user, movie = con.execute(
            "select user_id, movie_id from core.fct_ratings where rated_month = date '2018-05-01' order by 1, 2 limit 1"
        ).fetchone()
        con.execute(
            "update core.fct_ratings set rating = case when rating = 5.0 then 4.5 else rating + 0.5 end "
            "where user_id = ? and movie_id = ?",
            [user, movie],
        )
    june = _dbt_test(settings, ("2018-06-01 00:00:00", "2018-07-01 00:00:00"), tmp_path / "june")
    assert june["fct_ratings__one_row_per_user_and_movie"] == "fail"
    assert june["assert_fct_ratings_reconciles_with_staging"] == "fail"  # a row staging does not have
    may = _dbt_test(settings, ("2018-05-01 00:00:00", "2018-06-01 00:00:00"), tmp_path / "may")
    assert may["assert_fct_ratings_reconciles_with_staging"] == "fail"  # same count, different fingerprint
    assert may["fct_ratings__one_row_per_user_and_movie"] == "pass"
    # a window of another year: nothing there changed (the yearly rollups' test covers 2018 whole)
    untouched = _dbt_test(settings, ("2017-04-01 00:00:00", "2017-05-01 00:00:00"), tmp_path / "untouched")
    assert set(untouched.values()) == {"pass"}


def test_a_stale_year_in_one_yearly_rollup_fails_that_rollups_check_and_not_the_others(copy_of_built, tmp_path):
    """Each rollup has its own reconcile check: automation may rebuild one rollup alone, and its
    run must not be failed by the other one, which it did not touch."""
    settings = copy_of_built
    with duckdb.connect(str(settings.warehouse_path)) as con:  # one movie-year of 2018 loses a rating
        con.execute("""update core.fct_movie_ratings_yearly set ratings_count = ratings_count - 1
                       where rated_year = date '2018-01-01' and ratings_count > 1
                         and movie_id = (select min(movie_id) from core.fct_movie_ratings_yearly
                                         where rated_year = date '2018-01-01' and ratings_count > 1)""")
    in_2018 = _dbt_test(settings, ("2018-06-01 00:00:00", "2018-07-01 00:00:00"), tmp_path / "in_2018")
    assert in_2018["assert_fct_movie_ratings_yearly_reconciles_with_fct_ratings"] == "fail"
    assert in_2018["assert_fct_user_ratings_yearly_reconciles_with_fct_ratings"] == "pass"
    in_2017 = _dbt_test(settings, ("2017-04-01 00:00:00", "2017-05-01 00:00:00"), tmp_path / "in_2017")
    assert in_2017["assert_fct_movie_ratings_yearly_reconciles_with_fct_ratings"] == "pass"  # another year
