"""The Snowflake loader against a fakesnow server (the Snowflake wire protocol, on loopback).

A fresh server per module: a failed statement inside a transaction wedges fakesnow until restart.
What the emulator cannot run (roles, grants, warehouse, storage integration, S3 stage, ON_ERROR,
VALIDATE) is covered by parsing in test_snowflake_provisioning.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fakesnow", reason="fakesnow is not installed (pip install -e '.[snowflake-emulator]')")
pytest.importorskip("fakesnow.server", reason="fakesnow's server extra is not installed (starlette, uvicorn)")

from netflix_elt.movielens import dataset  # noqa: E402
from netflix_elt.resources.object_store import FolderObjectStore  # noqa: E402
from netflix_elt.resources.snowflake_warehouse import SnowflakeWarehouse, build_snowflake_warehouse  # noqa: E402
from netflix_elt.settings import SHIPPED_DATA, Settings  # noqa: E402

N_MOVIES, N_RATINGS = 40, 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def fakesnow_env(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("fakesnow") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "fakesnow", "-s", "--host", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"fakesnow server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield {
            "SNOWFLAKE_ACCOUNT": "fakesnow", "SNOWFLAKE_USER": "fake", "SNOWFLAKE_PASSWORD": "snow",
            "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(port), "SNOWFLAKE_PROTOCOL": "http",
            "SNOWFLAKE_DATABASE": "NETFLIX_ELT", "SNOWFLAKE_WAREHOUSE": "NETFLIX_ELT_WH",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


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
def warehouse(fakesnow_env) -> SnowflakeWarehouse:
    wh = build_snowflake_warehouse(Settings(), fakesnow_env)
    assert isinstance(wh, SnowflakeWarehouse) and wh.emulator and wh.stage_mode == "internal"
    return wh


def _load(wh, store, name):
    ds = dataset(name)
    return wh.load_objects(ds, list(store.list_objects(f"raw/{name}/")), store, lambda o: None, run_id="test")


def test_a_loopback_host_selects_the_emulator_mode_and_a_real_one_does_not(fakesnow_env):
    env = dict(fakesnow_env, SNOWFLAKE_HOST="")
    wh = build_snowflake_warehouse(Settings(), env)
    assert not wh.emulator and wh.stage_mode == "external" and not wh.ensure_tables


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
