"""How long dbt's own Snowflake connection waits for a dead endpoint: real dbt (the ``prod``
target, profiles.yml, the values ``Settings.dbt_env`` hands every invocation) against real
sockets on loopback, no mocks.

dbt-snowflake (1.12) passes no ``login_timeout``, ``network_timeout`` or ``socket_timeout`` to
``snowflake.connector.connect`` and its documented profile has no field for them (its
``connect_timeout`` is the pause between dbt's connect retries), so the project's
``NETFLIX_ELT_SNOWFLAKE_*_TIMEOUT_S`` settings bound the loader's and the dashboard's connections,
not dbt's. dbt's login is bounded by the connector's own defaults instead: each request waits at
most ``DEFAULT_SOCKET_CONNECT_TIMEOUT`` (60 s) and the login is not retried once
``DEFAULT_AUTH_CLASS_TIMEOUT`` (120 s) has passed, nor after ``DEFAULT_MAX_CON_RETRY_ATTEMPTS`` + 1
(2) tries; the failure (250001, an ``OperationalError``) is not among the errors dbt retries, so
``connect_retries`` does not multiply it. These tests hold dbt to that bound; if an upgrade
changes it they fail, and docs/production.md's figures must change with them. What stays
unbounded (a request after a successful login, retried without end: ``network_timeout`` is
infinite by default) is written there.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from netflix_elt.settings import DBT_PROJECT_DIR, Settings, SnowflakeSettings

pytestmark = pytest.mark.slow

CONNECTOR_REQUEST_S = 60  # snowflake.connector.network.DEFAULT_SOCKET_CONNECT_TIMEOUT
CONNECTOR_LOGIN_S = 120  # snowflake.connector.auth.by_plugin.DEFAULT_AUTH_CLASS_TIMEOUT
BACKOFF_S = 16  # the connector's sleeps between the two tries (its backoff is capped at 16 s)
# dbt's start before it connects (reading the project on a cold target folder; ~15 s on a quiet
# 2-core machine, more under load): measured apart from the connection's wait, and bounded loosely.
DBT_START_S = 120
# A silent endpoint: two tries of one request each, the second started before 120 s.
SILENT_BOUND_S = 2 * CONNECTOR_REQUEST_S + BACKOFF_S
ERRORING_BOUND_S = 2 * BACKOFF_S  # HTTP 500 to both tries: no request timeout to wait for
DBT_SECRET = "dbt-waits-test-password-DO-NOT-LOG"


def _settings(port: int, home: Path) -> Settings:
    """The prod settings a deployment would have, pointed at ``port`` on loopback."""
    return Settings.from_env({
        "NETFLIX_ELT_TARGET": "prod", "NETFLIX_ELT_HOME": str(home),
        "SNOWFLAKE_ACCOUNT": "nowhere", "SNOWFLAKE_USER": "dbt",
        "SNOWFLAKE_HOST": "127.0.0.1", "SNOWFLAKE_PORT": str(port), "SNOWFLAKE_PROTOCOL": "http",
    })


def _dbt_run(settings: Settings, target: Path) -> tuple[subprocess.CompletedProcess, float]:
    """``dbt run`` of one staging model on the prod target, as a run hands it its environment
    (Settings.dbt_env, the password from the environment); a target folder of its own."""
    cmd = [str(Path(sys.executable).with_name("dbt")), "run", "--target", "prod", "--select", "stg_movies",
           "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
           "--target-path", str(target), "--log-path", str(target / "logs")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNOWFLAKE_", "NETFLIX_ELT_"))}
    env.update(settings.dbt_env(), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    env[SnowflakeSettings.PASSWORD_ENV] = DBT_SECRET
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SILENT_BOUND_S + DBT_START_S + 300,
                          stdin=subprocess.DEVNULL)
    return done, time.monotonic() - started


STAMP = re.compile(r"^(?:\x1b\[0m)?(\d\d:\d\d:\d\d)\s")


def _connection_wait(stdout: str) -> float:
    """Seconds from dbt's last line before it connects (its thread count) to its error, from the
    times dbt prints on each line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "Concurrency:" in line)
    end = next(i for i, line in enumerate(lines) if i > start and "Encountered an error" in line)
    t0, t1 = (datetime.strptime(STAMP.match(lines[i]).group(1), "%H:%M:%S") for i in (start, end))
    return (t1 - t0).total_seconds() % 86400


def _assert_clear_failure(done: subprocess.CompletedProcess) -> None:
    assert done.returncode != 0, done.stdout[-3000:]
    assert "Could not connect to Snowflake backend after 2 attempt(s)" in done.stdout, done.stdout[-3000:]
    assert 'Database error while listing schemas in database "NETFLIX_ELT"' in done.stdout, done.stdout[-3000:]
    assert DBT_SECRET not in done.stdout + done.stderr


def test_dbt_against_a_silent_endpoint_fails_within_the_connectors_login_bound(tmp_path):
    """A loopback port that completes TCP handshakes (the kernel does) and never answers."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        done, seconds = _dbt_run(_settings(silent.getsockname()[1], tmp_path / "home"), tmp_path / "target")
    finally:
        silent.close()
    _assert_clear_failure(done)
    waited = _connection_wait(done.stdout)
    # At least the two tries' socket timeouts: the bound is the connector's, not something shorter.
    assert 2 * CONNECTOR_REQUEST_S - 2 <= waited <= SILENT_BOUND_S, (waited, done.stdout[-2000:])
    assert seconds <= SILENT_BOUND_S + DBT_START_S, seconds
    print(f"silent endpoint: dbt failed after {seconds:.1f} s, {waited:.0f} s of it connecting "
          f"(bound {SILENT_BOUND_S} s + start)")


class _Always500(BaseHTTPRequestHandler):
    requests: list[str] = []

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append(f"{self.command} {self.path.split('?')[0]}")
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args):  # quiet
        pass


def test_dbt_against_an_endpoint_answering_500_fails_after_two_login_tries(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    _Always500.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        done, seconds = _dbt_run(_settings(server.server_address[1], tmp_path / "home"), tmp_path / "target")
    finally:
        server.shutdown()
        server.server_close()
    _assert_clear_failure(done)
    assert _Always500.requests == ["POST /session/v1/login-request"] * 2, _Always500.requests  # no dbt retry
    waited = _connection_wait(done.stdout)
    assert waited <= ERRORING_BOUND_S, (waited, done.stdout[-2000:])
    print(f"HTTP 500 endpoint: dbt failed after {seconds:.1f} s, {waited:.0f} s of it connecting")
