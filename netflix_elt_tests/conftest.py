"""Shared fixtures: real DuckDB files, a real S3 API server on loopback, real Dagster runs."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import dagster as dg
import pytest

from netflix_elt.settings import SHIPPED_DATA, Settings

# Fake, test-only credentials for the loopback S3 server; real ones never appear in tests.
S3_TEST_KEY_ID = "netflix-elt-test-key"
S3_TEST_SECRET = "netflix-elt-test-secret-DO-NOT-LOG"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def warm_dbt_servers(tmp_path_factory):
    """The suite's runs share warm dbt servers of their own (not the user's), stopped at the end
    so that no server outlives the suite."""
    from netflix_elt.warm_dbt import FOLDER_ENV, stop_servers

    folder = tmp_path_factory.mktemp("warm-dbt")
    folder.chmod(0o700)
    previous = os.environ.get(FOLDER_ENV)
    os.environ[FOLDER_ENV] = str(folder)
    yield folder
    stop_servers(folder)
    if previous is None:
        os.environ.pop(FOLDER_ENV, None)
    else:
        os.environ[FOLDER_ENV] = previous


@pytest.fixture(scope="session")
def s3_server():
    """moto's threaded S3 API server on 127.0.0.1 (a real HTTP server speaking the S3 API)."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ACCESS_KEY_ID=S3_TEST_KEY_ID,
        AWS_SECRET_ACCESS_KEY=S3_TEST_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
    )
    yield f"http://127.0.0.1:{port}"
    server.stop()


# Fake, test-only password of the loopback Snowflake emulator.
FAKESNOW_PASSWORD = "fake-emulator-password"


@contextlib.contextmanager
def fakesnow_server(log: Path):
    """A fakesnow server (Snowflake's wire protocol) on a free loopback port; yields the
    variables prod needs to reach it: the required SNOWFLAKE_ACCOUNT/USER/PASSWORD and the
    emulator's SNOWFLAKE_HOST/PORT/PROTOCOL. A failed statement inside a transaction wedges
    fakesnow until restart, so each group of tests starts its own."""
    port = _free_port()
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
            "SNOWFLAKE_ACCOUNT": "fakesnow", "SNOWFLAKE_USER": "fake", "SNOWFLAKE_PASSWORD": FAKESNOW_PASSWORD,
            "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(port), "SNOWFLAKE_PROTOCOL": "http",
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- prod on the emulators (test_prod_pipeline.py, test_production_topology.py) -------------------

# The shipped data's lines fakesnow cannot load, and why. fakesnow 0.12.1 hands COPY INTO to
# DuckDB's CSV reader without the file format's escape settings, which rejects a doubled quote
# inside a quoted field ("CSV Error on Line: 5021") and so the whole file. Real Snowflake reads
# them (FIELD_OPTIONALLY_ENCLOSED_BY = '"'), and the DuckDB target loads them (test_raw_loading).
EMULATOR_EXCLUSIONS = {
    # movie id: why (every line of every file that names the movie goes, so that the dbt
    # relationships tests still hold: its movies.csv line, 2 ratings, 1 link, 1 tag)
    "movie_ids": {7789: "movies.csv line 5021: the title 11'09\"01 - September 11 (2002) is written "
                        "\"11'09\"\"01 - September 11 (2002)\" (a doubled quote)"},
    # tags.csv lines: why (only that line goes; the movie and the user's other tags stay)
    "tag_lines": {'567,4552,"""artsy""",1525285878': 'tags.csv line 3007: the tag "artsy" (with its quotes) is '
                                                     'written """artsy""" (doubled quotes)'},
}
# Lines left out per file (the fixture checks it left out exactly these).
EXCLUDED_LINES = {"movies.csv": 1, "ratings.csv": 2, "links.csv": 1, "tags.csv": 2}
MOVIE_COLUMN = {"movies.csv": 0, "links.csv": 0, "ratings.csv": 1, "tags.csv": 1}


def _kept(name: str, line: bytes) -> bool:
    fields = line.split(b",")
    movie = int(fields[MOVIE_COLUMN[name]])
    if movie in EMULATOR_EXCLUSIONS["movie_ids"]:
        return False
    return not (name == "tags.csv" and line.rstrip(b"\r\n").decode() in EMULATOR_EXCLUSIONS["tag_lines"])


@pytest.fixture(scope="session")
def emulator_source(tmp_path_factory) -> Path:
    """The shipped ml-latest-small without EMULATOR_EXCLUSIONS, byte for byte otherwise (CRLF)."""
    out = tmp_path_factory.mktemp("ml-latest-small-for-fakesnow")
    for name in MOVIE_COLUMN:
        lines = (SHIPPED_DATA / name).read_bytes().splitlines(keepends=True)
        kept = lines[:1] + [line for line in lines[1:] if _kept(name, line)]
        assert len(lines) - len(kept) == EXCLUDED_LINES[name], name
        assert not any(b'""' in line for line in kept), f"{name}: a doubled quote is left that fakesnow cannot parse"
        (out / name).write_bytes(b"".join(kept))
    return out


@pytest.fixture(scope="module")
def prod(request, tmp_path_factory, s3_server, emulator_source):
    """The emulators, the required environment, and ``Settings`` built from exactly it: a
    fakesnow server and a bucket of the test module's own (a failed statement wedges fakesnow)."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    tmp = tmp_path_factory.mktemp(f"prod-{module}")
    bucket = "netflix-elt-" + module.replace("_", "-")
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    with fakesnow_server(tmp / "fakesnow.log") as snowflake, pytest.MonkeyPatch.context() as mp:
        required = {
            "NETFLIX_ELT_TARGET": "prod",
            **snowflake,  # SNOWFLAKE_ACCOUNT, _USER, _PASSWORD (required) + the emulator's HOST, PORT, PROTOCOL
            "NETFLIX_ELT_S3_ENDPOINT_URL": s3_server,
            "NETFLIX_ELT_BUCKET": bucket,
            "AWS_ACCESS_KEY_ID": S3_TEST_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": S3_TEST_SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        env = {**required, "NETFLIX_ELT_HOME": str(tmp / "home"), "NETFLIX_ELT_SOURCE": str(emulator_source)}
        # In-process runs and queries resolve the password's dg.EnvVar from this process.
        mp.setenv("SNOWFLAKE_PASSWORD", snowflake["SNOWFLAKE_PASSWORD"])
        settings = Settings.from_env(env)
        assert (settings.target, settings.store, settings.snowflake.is_emulator) == ("prod", "s3", True)
        yield {"env": env, "settings": settings, "source": emulator_source, "tmp": tmp}


def prod_process_env(prod: dict) -> dict[str, str]:
    """A process's whole environment on prod: the required variables only, plus PATH/HOME and
    the suite's warm dbt folder (conftest.warm_dbt_servers stops its servers)."""
    from netflix_elt.warm_dbt import FOLDER_ENV

    return {
        **prod["env"],
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(prod["tmp"])),
        FOLDER_ENV: os.environ[FOLDER_ENV],
    }


def prod_cli(prod: dict, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``netflix-elt <args>`` in a process of its own, with the prod environment only."""
    cli = Path(sys.executable).with_name("netflix-elt")
    return subprocess.run([str(cli), *args], env=prod_process_env(prod), capture_output=True, text=True,
                          timeout=timeout, cwd=prod["tmp"], stdin=subprocess.DEVNULL)


def warehouse_query(settings: Settings, sql: str):
    """Rows of ``sql`` in the settings' warehouse (the emulator on prod)."""
    from netflix_elt.resources.factory import build_warehouse

    with dg.build_resources({"warehouse": build_warehouse(settings)}) as resources:
        with resources.warehouse.snowflake.get_connection() as con:
            cur = con.cursor()
            cur.execute(sql)
            return cur.fetchall()


def warehouse_one(settings: Settings, sql: str):
    ((value,),) = warehouse_query(settings, sql)
    return value


@pytest.fixture
def s3_bucket(s3_server, request):
    """A fresh, empty bucket per test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())
    name = ("t-" + slug)[:60].strip("-")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def local_settings(tmp_path) -> Settings:
    """The embedded default, in a throwaway NETFLIX_ELT_HOME."""
    return Settings(home=tmp_path / "home", source=SHIPPED_DATA, synthetic_genome_tags=8)


@pytest.fixture
def s3_settings(tmp_path, s3_server, s3_bucket) -> Settings:
    return Settings(
        home=tmp_path / "home", source=SHIPPED_DATA, store="s3", bucket=s3_bucket,
        s3_endpoint_url=s3_server, synthetic_genome_tags=8,
    )


def materialize(settings: Settings, selection, partition_range: tuple[str, str] | None = None, instance=None, raise_on_error=True):
    """Materialize a selection of the real definitions, as the CLI and the UI would."""
    from netflix_elt.definitions import build_definitions

    defs = build_definitions(settings)
    tags = {}
    if partition_range:
        tags = {"dagster/asset_partition_range_start": partition_range[0], "dagster/asset_partition_range_end": partition_range[1]}
    return dg.materialize(
        defs.assets,
        resources=defs.resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        selection=selection,
        tags=tags,
        raise_on_error=raise_on_error,
    )


def write_csv(path: Path, text: str, newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# Two marts broken against their contracts: a column's type changed, and a column renamed.
CONTRACT_BREAKS = {
    "mart_movie_release_trends": ("count(*) as movies_released", "cast(count(*) as double) as movies_released"),
    "mart_movie_releases": ("coalesce(movie_stats.ratings_count, 0) as ratings_count",
                            "coalesce(movie_stats.ratings_count, 0) as rating_count"),
}


def project_breaking_contracts(tmp_path: Path) -> Path:
    """A copy of the dbt project in which the marts of CONTRACT_BREAKS break their contracts."""
    import shutil

    from netflix_elt.settings import DBT_PROJECT_DIR

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    for mart, (old, new) in CONTRACT_BREAKS.items():
        path = project / "models" / "marts" / f"{mart}.sql"
        sql = path.read_text()
        assert sql.count(old) == 1, (mart, old)
        path.write_text(sql.replace(old, new))
    return project
