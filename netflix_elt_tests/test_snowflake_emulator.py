"""The Snowflake loader and the dbt project's prod target against fakesnow servers (the Snowflake
wire protocol, on loopback).

A fresh server per group of tests (the loader tests, the dbt build): a failed statement inside a
transaction wedges fakesnow until restart. What the emulator cannot run (roles, grants,
warehouse, storage integration, S3 stage, ON_ERROR, VALIDATE) is covered by parsing in
test_snowflake_provisioning.py.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("fakesnow", reason="fakesnow is not installed (pip install -e '.[snowflake-emulator]')")
pytest.importorskip("fakesnow.server", reason="fakesnow's server extra is not installed (starlette, uvicorn)")

import dagster as dg  # noqa: E402

from netflix_elt.dbt_manifest import dbt_executable  # noqa: E402
from netflix_elt.movielens import DATASETS, dataset  # noqa: E402
from netflix_elt.resources.object_store import FolderObjectStore  # noqa: E402
from netflix_elt.resources.snowflake_warehouse import SnowflakeWarehouse, build_snowflake_warehouse  # noqa: E402
from netflix_elt.settings import DBT_PROJECT_DIR, SHIPPED_DATA, Settings, SnowflakeSettings  # noqa: E402
from netflix_elt.synthetic import write_synthetic_genome  # noqa: E402
from netflix_elt_tests.conftest import CONTRACT_BREAKS, project_breaking_contracts  # noqa: E402
from netflix_elt_tests.conftest import FAKESNOW_PASSWORD as PASSWORD  # noqa: E402
from netflix_elt_tests.conftest import fakesnow_server as _fakesnow_server  # noqa: E402

N_MOVIES, N_RATINGS = 40, 200


@pytest.fixture(scope="module")
def secret_in_environment():
    """The password lives in the process environment only; the resource holds a reference to it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(SnowflakeSettings.PASSWORD_ENV, PASSWORD)
        yield


@pytest.fixture(scope="module")
def fakesnow_env(tmp_path_factory):
    with _fakesnow_server(tmp_path_factory.mktemp("fakesnow") / "server.log") as env:
        yield env


def _settings(env: dict) -> Settings:
    return Settings(snowflake=SnowflakeSettings.from_env(env))


@contextlib.contextmanager
def _initialised(wh: SnowflakeWarehouse):
    """What a Dagster run does: initialise the resource, resolving its EnvVar secret."""
    with dg.build_resources({"warehouse": wh}) as resources:
        yield resources.warehouse


def _head(src: Path, n: int) -> str:
    with open(src, encoding="utf-8", newline="") as f:
        lines = [f.readline().rstrip("\r\n") for _ in range(n + 1)]
    return "\n".join(line for line in lines if line) + "\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    s = FolderObjectStore(root=str(root), bucket="netflix-elt")
    work = tmp_path_factory.mktemp("files")
    movies = work / "movies.csv"
    movies.write_text(_head(SHIPPED_DATA / "movies.csv", N_MOVIES))
    s.put_file(movies, "raw/movies/movies.csv")
    ratings = work / "ratings.csv"
    # One rating that breaks the catalogue rule (7.5 is not a star rating): kept as a reject.
    ratings.write_text(_head(SHIPPED_DATA / "ratings.csv", N_RATINGS) + "1,2,7.5,964982703\n")
    s.put_file(ratings, "raw/ratings/month=2000-07/ratings.csv")
    return s


@pytest.fixture(scope="module")
def warehouse(fakesnow_env, secret_in_environment) -> SnowflakeWarehouse:
    wh = build_snowflake_warehouse(_settings(fakesnow_env))
    assert isinstance(wh, SnowflakeWarehouse) and wh.emulator and wh.stage_mode == "internal"
    with _initialised(wh) as ready:
        yield ready


def _load(wh, store, name):
    ds = dataset(name)
    return wh.load_objects(ds, list(store.list_objects(f"raw/{name}/")), store, lambda o: None, run_id="test")


def test_a_loopback_host_selects_the_emulator_mode_and_a_real_one_does_not(fakesnow_env):
    env = dict(fakesnow_env, SNOWFLAKE_HOST="")
    wh = build_snowflake_warehouse(_settings(env))
    assert not wh.emulator and wh.stage_mode == "external" and not wh.ensure_tables
    assert "host" not in wh.snowflake.additional_snowflake_connection_args  # derived from the account


def test_copy_into_loads_every_row_of_the_object_with_its_source_key(warehouse, store):
    outcomes, failures = _load(warehouse, store, "movies")
    assert failures == []
    (o,) = outcomes
    assert (o.status, o.rows_in_file, o.rows_loaded, o.rows_rejected) == ("loaded", N_MOVIES, N_MOVIES, 0)
    assert warehouse.row_counts()["movies"] == N_MOVIES
    assert warehouse.reconcile(dataset("movies"))["passed"]


def test_a_row_that_breaks_a_rule_is_kept_as_a_reject_not_dropped(warehouse, store):
    outcomes, failures = _load(warehouse, store, "ratings")
    assert failures == []
    (o,) = outcomes
    assert (o.rows_in_file, o.rows_loaded, o.rows_rejected) == (N_RATINGS + 1, N_RATINGS, 1)
    rec = warehouse.reconcile(dataset("ratings"))
    assert rec["passed"] and rec["rejects_table_rows"] == 1
    with warehouse.snowflake.get_connection() as con:
        cur = con.cursor()
        cur.execute("select RAW_LINE, REASON from NETFLIX_ELT.RAW._LOAD_REJECTS where DATASET = 'ratings'")
        (raw_line, reason), = cur.fetchall()
    assert raw_line == "1,2,7.5,964982703" and reason.startswith("rating breaks rule")


def test_the_same_object_again_is_a_no_op(warehouse, store):
    outcomes, _ = _load(warehouse, store, "movies")
    assert [o.status for o in outcomes] == ["unchanged"]
    assert warehouse.row_counts()["movies"] == N_MOVIES


def test_a_corrected_file_replaces_that_objects_rows(warehouse, store, tmp_path):
    fixed = tmp_path / "movies.csv"
    fixed.write_text(_head(SHIPPED_DATA / "movies.csv", N_MOVIES - 5))
    time.sleep(0.01)
    store.put_file(fixed, "raw/movies/movies.csv")  # new ETag
    outcomes, failures = _load(warehouse, store, "movies")
    assert failures == [] and [o.status for o in outcomes] == ["loaded"]
    assert warehouse.row_counts()["movies"] == N_MOVIES - 5
    assert warehouse.reconcile(dataset("movies"))["passed"]


def _ledger(wh, key):
    with wh.snowflake.get_connection() as con:
        cur = con.cursor()
        cur.execute("select ETAG, CONTENT_HASH, ROWS_LOADED from NETFLIX_ELT.RAW._LOAD_LEDGER where OBJECT_KEY = %s", (key,))
        return cur.fetchone()


def test_a_reupload_of_identical_bytes_is_a_no_op_through_the_content_hash(warehouse, store, tmp_path):
    key = "raw/movies/movies.csv"
    etag_before, hash_before, rows_before = _ledger(warehouse, key)
    assert hash_before and len(hash_before) == 32  # blake2b-128, the DuckDB loader's digest
    copy = tmp_path / "movies.csv"
    with store.local_copy(key) as path:
        copy.write_bytes(Path(path).read_bytes())
    time.sleep(0.01)
    store.put_file(copy, key)  # same bytes, new ETag
    outcomes, failures = _load(warehouse, store, "movies")
    assert failures == [] and [(o.status, o.content_hash) for o in outcomes] == [("unchanged", hash_before)]
    assert outcomes[0].etag != etag_before
    etag_after, hash_after, rows_after = _ledger(warehouse, key)
    assert (hash_after, rows_after) == (hash_before, rows_before) and etag_after == outcomes[0].etag
    assert warehouse.row_counts()["movies"] == N_MOVIES - 5


def test_a_dagster_load_on_snowflake_shows_row_count_rejects_by_reason_a_sample_and_the_query(
        fakesnow_env, secret_in_environment, tmp_path):
    """The raw asset's page on the Snowflake path: a real Dagster run of raw/ratings through the
    Snowflake warehouse, its materialization read back from the instance (DuckDB's side of the
    same story: test_raw_asset_page.py)."""
    from netflix_elt.assets.load import build_load_asset

    key = "raw/ratings/month=2001-01/ratings.csv"  # a month of its own: the module's other loads stay as they are
    own = FolderObjectStore(root=str(tmp_path / "store"), bucket="netflix-elt")
    upload = tmp_path / "ratings.csv"
    upload.write_text(_head(SHIPPED_DATA / "ratings.csv", 5) + "1,2,7.5,979000000\n1,3,9.0,979000001\nx,4,3.0,979000002\n")
    own.put_file(upload, key)
    wh = build_snowflake_warehouse(_settings(fakesnow_env))
    asset_key = dg.AssetKey(["raw", "ratings"])
    with dg.instance_for_test() as instance:
        result = dg.materialize([build_load_asset(dataset("ratings"))], resources={"object_store": own, "warehouse": wh},
                                partition_key="2001-01", instance=instance, selection=[asset_key])
        assert result.success
        meta = instance.get_latest_materialization_event(asset_key).asset_materialization.metadata
    with _initialised(wh) as ready, ready.snowflake.get_connection() as con:
        cur = con.cursor()
        cur.execute("select count(*) from NETFLIX_ELT.RAW.RATINGS")
        assert meta["dagster/row_count"].value == cur.fetchone()[0]
        query = meta["rejects_query"].value
        assert "NETFLIX_ELT.RAW._LOAD_REJECTS" in query and result.run_id in query
        cur.execute(query)  # what a user pastes into a Snowflake worksheet
        assert len(cur.fetchall()) == meta["rows_rejected"].value == 3
        cur.execute(meta["ledger_query"].value)
        assert (key, "loaded", 8, 5, 3) in [tuple(r[:5]) for r in cur.fetchall()]
    by_reason = {r.data["reason"]: r.data["rows"] for r in meta["rejects_by_reason"].value.records}
    rule = "rating breaks rule: rating between 0.5 and 5.0 and rating * 2 = round(rating * 2)"
    assert by_reason == {rule: 2, "userId is not a whole non-negative number": 1}
    sample = [r.data for r in meta["rejects_sample"].value.records]
    assert len(sample) == 3 and {r["object_key"] for r in sample} == {key}
    assert {r["raw_line"] for r in sample} == {"1,2,7.5,979000000", "1,3,9.0,979000001", "x,4,3.0,979000002"}


# -- dbt: the whole project on the prod target, twice ------------------------------------------

DBT_RATINGS, DBT_NEW_RATINGS, DBT_GENOME_TAGS, DBT_MIN_RATINGS = 3000, 400, 8, 5
CHANGED_MOVIE, CHANGED_TITLE = "1", "Toy Story, Emulated (1995)"
DBT_EMULATOR_MARTS = ("mart_movie_analysis", "mart_genre_rating_distribution", "mart_user_engagement_summary",
                      "mart_tag_relevance_analysis", "mart_movie_release_trends", "mart_movie_releases")


def _csv(name: str) -> tuple[list[str], list[list[str]]]:
    with open(SHIPPED_DATA / name, encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        return next(rows), list(rows)


def _write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


class DbtOnEmulator:
    def __init__(self, env: dict, home: Path, target: Path):
        self.env = env
        self.home = home
        self.target = target
        self.runs: list[subprocess.CompletedProcess] = []

    def build(self, project: Path = DBT_PROJECT_DIR, target: Path | None = None, select: list[str] = ()) -> subprocess.CompletedProcess:
        # A separate --target-path/--log-path: the project's own target/manifest.json is not touched.
        target = target or self.target
        cmd = [dbt_executable(), "build", "--target", "prod",
               "--profiles-dir", str(project), "--project-dir", str(project),
               "--target-path", str(target), "--log-path", str(target / "logs"),
               "--vars", json.dumps({"min_ratings_for_top_movies": DBT_MIN_RATINGS})]
        if select:
            cmd += ["--select", " ".join(select)]
        # What a run hands dbt (Settings.dbt_env), from the emulator's settings alone.
        settings = Settings.from_env({**self.env, "NETFLIX_ELT_TARGET": "prod", "NETFLIX_ELT_HOME": str(self.home)})
        env = dict(os.environ, **settings.dbt_env(), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
        env[SnowflakeSettings.PASSWORD_ENV] = self.env[SnowflakeSettings.PASSWORD_ENV]
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if project == DBT_PROJECT_DIR:
            self.runs.append(run)
        return run

    def query(self, wh, sql: str):
        with wh.snowflake.get_connection() as con:
            cur = con.cursor()
            cur.execute(sql)
            return cur.fetchall()


def _failure(run: subprocess.CompletedProcess) -> str:
    lines = [line for line in run.stdout.splitlines() if "ERROR" in line or "FAIL" in line or "Error" in line]
    return "\n".join(lines[-40:]) or run.stdout[-4000:] + run.stderr[-2000:]


@pytest.fixture(scope="module")
def dbt_emulator(tmp_path_factory, secret_in_environment):
    """A fresh fakesnow server with all six raw tables loaded by the Snowflake loader (a slice of
    ml-latest-small: the first ratings, the movies they rate and those movies' links and tags,
    plus a tiny synthetic genome), then `dbt build` on the prod target; then a second delivery
    (new ratings, one movie retitled) and a second `dbt build` (incremental fct_ratings,
    snapshot merges)."""
    tmp = tmp_path_factory.mktemp("dbt_emulator")
    files = tmp / "files"
    files.mkdir()
    header, ratings = _csv("ratings.csv")
    first, later = ratings[:DBT_RATINGS], ratings[DBT_RATINGS:]
    movie_ids = {r[1] for r in first}
    later = [r for r in later if r[1] in movie_ids][:DBT_NEW_RATINGS]
    store = FolderObjectStore(root=str(tmp / "store"), bucket="netflix-elt")
    store.put_file(_write_csv(files / "ratings.csv", header, first), "raw/ratings/month=2000-07/ratings.csv")
    m_header, movies = _csv("movies.csv")
    movies = [r for r in movies if r[0] in movie_ids]
    store.put_file(_write_csv(files / "movies.csv", m_header, movies), "raw/movies/movies.csv")
    for name, id_col in (("links", 0), ("tags", 1)):
        h, rows = _csv(f"{name}.csv")
        store.put_file(_write_csv(files / f"{name}.csv", h, [r for r in rows if r[id_col] in movie_ids]),
                       f"raw/{name}/{name}.csv")
    genome = files / "genome"
    write_synthetic_genome(files / "movies.csv", genome, n_tags=DBT_GENOME_TAGS)
    for name in ("genome_scores", "genome_tags"):
        store.put_file(genome / dataset(name).file_name, f"raw/{name}/{dataset(name).file_name}")

    with _fakesnow_server(tmp / "server.log") as env:
        wh = build_snowflake_warehouse(_settings(env))
        with _initialised(wh) as wh:
            def load(name):
                outcomes, failures = _load(wh, store, name)
                assert failures == [] and all(o.rows_rejected == 0 for o in outcomes), (name, failures, outcomes)

            for ds in DATASETS:
                load(ds.name)
            dbt = DbtOnEmulator(env, tmp / "home", tmp / "target")
            dbt.wh = wh
            dbt.first_counts = wh.row_counts()
            first_run = dbt.build()
            dbt.first_results = json.loads((dbt.target / "run_results.json").read_text())
            dbt.first_top = dbt.query(wh, "select movie_id from NETFLIX_ELT.MARTS.MART_MOVIE_ANALYSIS where rating_rank = 1")
            if first_run.returncode == 0:
                # Second delivery: a new month of ratings and a corrected movies file (one title).
                store.put_file(_write_csv(files / "ratings-2.csv", header, later), "raw/ratings/month=2000-08/ratings.csv")
                retitled = [[r[0], CHANGED_TITLE, r[2]] if r[0] == CHANGED_MOVIE else r for r in movies]
                time.sleep(0.01)
                store.put_file(_write_csv(files / "movies-2.csv", m_header, retitled), "raw/movies/movies.csv")
                load("ratings")
                load("movies")
                dbt.second_counts = wh.row_counts()
                dbt.build()
                dbt.second_results = json.loads((dbt.target / "run_results.json").read_text())
            yield dbt


def test_dbt_build_on_the_prod_target_passes_on_the_emulator(dbt_emulator):
    run = dbt_emulator.runs[0]
    assert run.returncode == 0, _failure(run)
    statuses = {r["status"] for r in dbt_emulator.first_results["results"]}
    assert statuses <= {"success", "pass"}, statuses
    kinds = {r["unique_id"].split(".")[0] for r in dbt_emulator.first_results["results"]}
    assert {"model", "snapshot", "seed", "test", "unit_test"} <= kinds


def test_the_marts_are_built_under_their_enforced_contracts_on_the_emulator(dbt_emulator):
    """dbt-snowflake checks each mart's contract before building it (the SQL's column types
    against the declared ones) and creates the table with the declared columns and types, the
    array columns as Snowflake ARRAYs (models/marts/_marts.yml)."""
    assert dbt_emulator.runs[0].returncode == 0, "the first build failed"
    marts = DBT_EMULATOR_MARTS
    run_sql = {path.stem: path.read_text().lower()
               for path in (dbt_emulator.target / "run" / "netflix_elt" / "models" / "marts").glob("*.sql")}
    assert set(run_sql) == set(marts)
    for mart, ddl in run_sql.items():
        assert re.search(rf"create or replace\s+(transient\s+)?table\s+\S*{mart}\s*\(\s*\w+ \w+", ddl), ddl[:500]
    assert re.search(r"genres array,", run_sql["mart_movie_releases"]) and "top_genome_tags array" in run_sql["mart_movie_releases"]


def test_a_mart_that_breaks_its_contract_fails_its_build_on_the_emulator(dbt_emulator, tmp_path):
    """On the prod target too: a mart whose SQL returns a double where the contract says bigint
    (Snowflake's REAL family, not FIXED), and one with a renamed column, fail with dbt's contract
    error before their tables are touched."""
    assert len(dbt_emulator.runs) == 2, "the builds failed"
    project = project_breaking_contracts(tmp_path)
    changes = CONTRACT_BREAKS
    wh = dbt_emulator.wh
    ((before,),) = dbt_emulator.query(wh, "select count(*) from NETFLIX_ELT.MARTS.MART_MOVIE_RELEASE_TRENDS")
    run = dbt_emulator.build(project, tmp_path / "target", select=list(changes))
    assert run.returncode == 1, run.stdout[-3000:]
    results = {r["unique_id"]: r for r in json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]}
    for mart, column in (("mart_movie_release_trends", "movies_released"), ("mart_movie_releases", "rating_count")):
        result = results[f"model.netflix_elt.{mart}"]
        assert result["status"] == "error" and "This model has an enforced contract that failed" in result["message"], result
        assert column.upper() in result["message"].upper(), result["message"]
    assert dbt_emulator.query(wh, "select count(*) from NETFLIX_ELT.MARTS.MART_MOVIE_RELEASE_TRENDS") == [(before,)]


def test_the_top_movie_of_the_mart_equals_plain_sql_over_the_raw_tables(dbt_emulator):
    rows = dbt_emulator.query(dbt_emulator.wh, f"""
        select MOVIEID, count(*), avg(RATING) from NETFLIX_ELT.RAW.RATINGS
        group by MOVIEID having count(*) >= {DBT_MIN_RATINGS}""")
    best = max((round(float(avg), 4), int(n)) for _, n, avg in rows)
    expected = {int(m) for m, n, avg in rows if (round(float(avg), 4), int(n)) == best}
    assert expected and {int(m) for (m,) in dbt_emulator.first_top} == expected


def test_a_second_build_runs_the_incremental_model_and_the_snapshot_merges(dbt_emulator):
    assert len(dbt_emulator.runs) == 2, "the first build failed"
    run = dbt_emulator.runs[1]
    assert run.returncode == 0, _failure(run)
    statuses = {r["unique_id"]: r["status"] for r in dbt_emulator.second_results["results"]}
    assert set(statuses.values()) <= {"success", "pass"}
    assert statuses["model.netflix_elt.fct_ratings"] == "success"
    wh = dbt_emulator.wh
    n_ratings = dbt_emulator.second_counts["ratings"]
    assert n_ratings == DBT_RATINGS + DBT_NEW_RATINGS
    ((fct,),) = dbt_emulator.query(wh, "select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS")
    assert fct == n_ratings
    versions = dbt_emulator.query(wh, f"""
        select title, dbt_valid_to is null from NETFLIX_ELT.SNAPSHOTS.SNAP_MOVIES
        where movie_id = {CHANGED_MOVIE} order by dbt_valid_from""")
    assert [(t, bool(current)) for t, current in versions] == [("Toy Story (1995)", False), (CHANGED_TITLE, True)]
    ((current_rows,),) = dbt_emulator.query(wh, "select count(*) from NETFLIX_ELT.SNAPSHOTS.SNAP_MOVIES where dbt_valid_to is null")
    assert current_rows == dbt_emulator.second_counts["movies"]
    # The emulator-only staging relations were cleaned up (dbt drops the incremental tmp view;
    # emulator_compat drops the snapshot staging tables).
    leftovers = dbt_emulator.query(wh, """
        select table_schema, table_name from NETFLIX_ELT.INFORMATION_SCHEMA.TABLES
        where lower(table_name) like '%dbt_tmp%'""")
    assert leftovers == []
