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
