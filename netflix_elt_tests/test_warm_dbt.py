"""Warm dbt: invocations forked from a server that has imported dbt behave like cold ones.

A tiny dbt project on an in-memory DuckDB keeps these fast; the pipeline tests run every
dbt step of a real run through the same server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from netflix_elt.dbt_manifest import dbt_executable
import netflix_elt.warm_dbt as warm_dbt
from netflix_elt.warm_dbt import CLIENT, EXECUTABLE_ENV, FOLDER_ENV, SOCKET_ENV, WarmDbtServer, server_key, stop_servers

MACROS = """
{% macro hello(name) %}{{ log("hello " ~ name ~ " from " ~ env_var("PROBE_WHERE", "nowhere"), info=True) }}{% endmacro %}
{% macro remember(value) %}{% do run_query("create or replace table remembered as select " ~ value ~ " as value") %}{% endmacro %}
{% macro fail() %}{{ exceptions.raise_compiler_error("failing on purpose") }}{% endmacro %}
{% macro spin() %}
    {{ log("spinning", info=True) }}
    {% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}
{% endmacro %}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("warm_probe")
    (root / "macros").mkdir()
    (root / "macros" / "probe.sql").write_text(MACROS)
    (root / "dbt_project.yml").write_text(
        "name: warm_probe\nversion: '1.0'\nconfig-version: 2\nprofile: warm_probe\nmacro-paths: [macros]\n"
    )
    (root / "profiles.yml").write_text(
        "warm_probe:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: ':memory:'\n"
        "    file:\n      type: duckdb\n      path: \"{{ env_var('PROBE_DB') }}\"\n"
    )
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    warm = WarmDbtServer(real_executable=dbt_executable(), preload=["dbt.adapters.duckdb"],
                         folder=tmp_path_factory.mktemp("warm"))
    yield warm
    warm.stop()


def dbt(project: Path, *args: str, env: dict, target: str = "dev", **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLIENT), *args, "--project-dir", str(project), "--profiles-dir", str(project), "--target", target],
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}, cwd=project,
        capture_output=True, text=True, timeout=300, **popen,
    )


def test_a_dbt_command_forked_from_the_server_runs_with_the_clients_environment_and_arguments(project, server):
    # The real executable is /bin/false: had the client fallen back to a cold dbt, this fails.
    result = dbt(project, "run-operation", "hello", "--args", "{name: warm}",
                 env={**server.env(), EXECUTABLE_ENV: "/bin/false", "PROBE_WHERE": "the client"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello warm from the client" in result.stdout


def test_a_forked_dbt_has_closed_the_warehouse_file_when_the_client_returns(project, server, tmp_path):
    # The fork skips the interpreter's teardown but not its exit handlers: dbt-duckdb's closes
    # (and checkpoints) the database, so the next step opens a clean file, not a write-ahead log.
    import duckdb

    db = tmp_path / "warehouse.duckdb"
    result = dbt(project, "run-operation", "remember", "--args", "{value: 42}", target="file",
                 env={**server.env(), EXECUTABLE_ENV: "/bin/false", "PROBE_DB": str(db)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not db.with_name(db.name + ".wal").exists()
    with duckdb.connect(str(db)) as con:
        assert con.sql("select value from remembered").fetchall() == [(42,)]


def test_a_client_arriving_before_the_server_process_has_started_waits_for_it(project, tmp_path):
    # The socket listens from the moment the server object exists: a run whose first dbt step
    # comes right away (a month's load is ~0.1 s) must not find no socket and start cold.
    warm = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path)
    try:
        assert warm.socket_path.is_socket()
        result = dbt(project, "run-operation", "hello", "--args", "{name: early}", env=warm.env())
    finally:
        warm.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello early from nowhere" in result.stdout


def test_after_the_servers_preparation_a_dbt_command_builds_no_schema_manifest_codec_or_macro_template(project, tmp_path):
    # A saved parse of the probe project, as a cold dbt leaves it in its target folder.
    target = tmp_path / "target"
    parse = subprocess.run([dbt_executable(), "parse", "--project-dir", str(project), "--profiles-dir", str(project),
                            "--target", "dev", "--target-path", str(target)], cwd=project, capture_output=True, text=True,
                           timeout=300, env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    assert parse.returncode == 0, parse.stdout + parse.stderr
    # Then, in a fresh interpreter prepared as the server prepares itself, one dbt command that
    # reads and writes that saved parse and runs a macro, recording what it builds on its own.
    code = f"""
import gc, sys
from netflix_elt.warm_dbt import server
server.prepare(["dbt.adapters.duckdb"], {str(target / "partial_parse.msgpack")!r})
frozen = gc.get_freeze_count()
import dbt_common.dataclass_schema as schema
from dbt_common.clients.jinja import TemplateCache
from mashumaro.core.meta.code.builder import CodeBuilder
built = []
def refuse(cls, *args, **kwargs):
    built.append(f"the JSON schema of {{cls.__name__}}")
    raise AssertionError(built[-1])
schema.build_json_schema = refuse
for method in ("add_unpack_method", "add_pack_method"):
    def compiling(self, *args, _method=getattr(CodeBuilder, method), **kwargs):
        if self.cls.__name__ == "Manifest":  # reading or writing the saved parse
            built.append(f"mashumaro's {{_method.__name__}} of {{self.cls.__name__}}")
        return _method(self, *args, **kwargs)
    setattr(CodeBuilder, method, compiling)
cached = TemplateCache.get_node_template
def template(self, node):
    if node.macro_sql not in self.file_cache:
        built.append(f"the template of {{node.unique_id}}")
    return cached(self, node)
TemplateCache.get_node_template = template
code = server.run_dbt(["run-operation", "hello", "--args", "{{name: schema}}", "--project-dir", {str(project)!r},
                       "--profiles-dir", {str(project)!r}, "--target", "dev", "--target-path", {str(target)!r}])
print("frozen", frozen, "built", built)
sys.exit(code)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello schema from nowhere" in result.stdout
    assert "Unable to do partial parsing" not in result.stdout  # it did read the saved parse
    frozen = int(result.stdout.split("frozen ")[1].split()[0])
    assert frozen > 50_000, result.stdout  # dbt's modules and all: out of the garbage collector's way
    assert "built []" in result.stdout, result.stdout


def test_a_saved_parse_that_cannot_be_read_is_logged_and_the_server_still_serves(project, tmp_path):
    garbage = tmp_path / "partial_parse.msgpack"
    garbage.write_bytes(b"not a saved parse")
    warm = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path / "servers",
                         saved_parse=garbage)
    try:
        result = dbt(project, "run-operation", "hello", "--args", "{name: anyway}", env=warm.env())
    finally:
        warm.stop()
    assert result.returncode == 0, result.stdout + result.stderr  # /bin/false: it was the server's fork
    assert "hello anyway from nowhere" in result.stdout
    log = (tmp_path / "servers" / f"{warm.socket_path.stem}.log").read_text()
    assert f"saved parse {garbage} not used for the warm-up" in log


def test_a_failing_dbt_command_gives_the_same_exit_code_and_message_warm_or_cold(project, server):
    warm = dbt(project, "run-operation", "fail", env={**server.env(), EXECUTABLE_ENV: "/bin/false"})
    cold = subprocess.run([dbt_executable(), "run-operation", "fail", "--project-dir", str(project), "--profiles-dir",
                           str(project), "--target", "dev"], cwd=project, capture_output=True, text=True, timeout=300)
    assert warm.returncode == cold.returncode != 0
    assert "failing on purpose" in warm.stdout and "failing on purpose" in cold.stdout


def test_without_a_server_the_client_becomes_the_real_dbt(project, tmp_path):
    result = dbt(project, "run-operation", "hello", "--args", "{name: cold}",
                 env={SOCKET_ENV: str(tmp_path / "no-server.sock"), EXECUTABLE_ENV: dbt_executable()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hello cold from nowhere" in result.stdout


@pytest.mark.parametrize("sigint", ["inherited", "ignored"])
def test_ctrl_c_to_the_client_interrupts_the_forked_dbt(project, sigint, tmp_path):
    # "ignored": a server started from a background job of a non-interactive shell (CI) inherits
    # SIGINT ignored; its forks must still stop on the client's Ctrl-C.
    ignore = sigint == "ignored"
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore else None
    with _sigint_ignored(ignore):
        server = WarmDbtServer(real_executable=dbt_executable(), preload=["dbt.adapters.duckdb"], folder=tmp_path)
    client = subprocess.Popen(
        [str(CLIENT), "run-operation", "spin", "--project-dir", str(project), "--profiles-dir", str(project), "--target", "dev"],
        env={**os.environ, **server.env(), EXECUTABLE_ENV: "/bin/false"}, cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec,
    )
    try:
        for line in client.stdout:  # dagster-dbt reads the same pipe: the child writes straight into it
            if "spinning" in line:
                break
        client.send_signal(signal.SIGINT)  # what dagster-dbt sends when a run is cancelled
        code = client.wait(timeout=120)  # the spin alone would take hours
        # The client returns once its dbt has ended; the kernel may take a moment to reap it.
        deadline = time.monotonic() + 10
        while _children(server.process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = _children(server.process.pid)
    finally:
        for pid in _children(server.process.pid):  # never leave a spinning dbt behind a failure
            os.kill(pid, signal.SIGKILL)
        client.kill()
        client.stdout.close()
        server.stop()
    assert code != 0 and left == []


def test_the_server_outlives_the_process_that_started_it_and_serves_the_next_one(project, tmp_path):
    first = subprocess.run(
        [sys.executable, "-c", "import os, sys; from netflix_elt.warm_dbt import WarmDbtServer; "
         "w = WarmDbtServer('dbt', ['dbt.adapters.duckdb'], folder=sys.argv[1]); print(w.pid, flush=True); os._exit(0)",
         str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=60,
    )
    try:
        later = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path)
        assert later.process is None and later.pid == int(first.stdout)  # found, not started
        result = dbt(project, "run-operation", "hello", "--args", "{name: later}", env=later.env())
        assert result.returncode == 0, result.stdout + result.stderr
        assert "hello later from nowhere" in result.stdout
    finally:
        stop_servers(tmp_path)
    assert not _alive(int(first.stdout))  # stop_servers returns once it is gone


def test_an_idle_server_exits_and_the_next_run_starts_a_new_one(project, tmp_path):
    idle = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path, idle_s=0.5)
    deadline = time.monotonic() + 60
    while _alive(idle.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(idle.process.pid)
    assert not idle.socket_path.exists() and not idle.pid_path.exists()  # it cleaned up after itself
    fresh = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path)
    try:
        assert fresh.process is not None and fresh.pid != idle.process.pid
        assert dbt(project, "run-operation", "hello", "--args", "{name: again}", env=fresh.env()).returncode == 0
    finally:
        fresh.stop()


def test_a_killed_servers_socket_is_taken_over_by_a_new_server(project, tmp_path):
    killed = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path)
    killed.process.kill()
    killed.process.wait()
    assert killed.socket_path.exists()  # left behind, nobody listening
    fresh = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=tmp_path)
    try:
        assert fresh.process is not None
        assert dbt(project, "run-operation", "hello", "--args", "{name: again}", env=fresh.env()).returncode == 0
    finally:
        fresh.stop()


def test_another_dbt_installation_gets_a_server_of_its_own(monkeypatch):
    installed = server_key(["dbt.adapters.duckdb"])
    monkeypatch.setattr(warm_dbt, "version", lambda dist: "9.9.9" if dist == "dbt-duckdb" else "1.0")
    assert server_key(["dbt.adapters.duckdb"]) != installed
    assert server_key(["dbt.adapters.duckdb"]) != server_key(["dbt.adapters.snowflake"])


def test_a_servers_folder_others_can_enter_is_refused(tmp_path, monkeypatch):
    # Whoever can reach the socket runs dbt as this user.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setenv(FOLDER_ENV, str(shared))
    with pytest.raises(PermissionError, match="mode 0700"):
        WarmDbtServer(real_executable="/bin/false")


def test_a_run_forks_its_dbt_steps_from_the_shared_server_which_outlives_it(local_settings, monkeypatch, tmp_path):
    from netflix_elt.definitions import build_definitions

    started: list[WarmDbtServer] = []

    class Recorded(WarmDbtServer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setenv(FOLDER_ENV, str(tmp_path / "servers"))
    monkeypatch.setattr("netflix_elt.warm_dbt.WarmDbtServer", Recorded)  # what server_for_project builds
    # A cold fallback would run /bin/false and fail the step.
    monkeypatch.setattr("netflix_elt.warm_dbt.dbt_executable", lambda: "/bin/false")
    defs = build_definitions(local_settings)
    try:
        for _ in range(2):  # the second run finds the first one's server
            result = dg.materialize(
                defs.assets, resources=defs.resources, instance=dg.DagsterInstance.ephemeral(),
                selection=dg.AssetSelection.keys(dg.AssetKey(["staging", "genres"])),
            )
            assert result.success
            assert [e.asset_key for e in result.get_asset_materialization_events()] == [dg.AssetKey(["staging", "genres"])]
        first, second = started
        assert first.process is not None and second.process is None and first.pid == second.pid
        assert _alive(first.pid)
    finally:
        stop_servers(tmp_path / "servers")
    assert not _alive(first.process.pid)


def test_with_warm_dbt_off_the_resource_runs_the_real_dbt(local_settings):
    from dataclasses import replace

    from netflix_elt.resources.factory import build_resources

    resource = build_resources(replace(local_settings, warm_dbt=False))["dbt"]
    assert resource.dbt_executable == dbt_executable() and not resource.warm_start


@contextlib.contextmanager
def _sigint_ignored(ignore: bool):
    """Start processes with SIGINT ignored, as a shell's background job would."""
    if not ignore:
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_netflix_elt_run_starts_the_server_before_it_imports_dagster(tmp_path):
    # So that dbt imports on the other core while the CLI imports Dagster and dagster-dbt.
    code = (
        "import sys; from netflix_elt import cli; from netflix_elt.settings import Settings; "
        "cli._start_warm_dbt(Settings(home=sys.argv[1])); "
        "print(sorted(m for m in ('dagster', 'dagster_dbt', 'dbt') if m in sys.modules))"
    )
    folder = tmp_path / "servers"
    folder.mkdir(mode=0o700)
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], capture_output=True, text=True,
                            timeout=60, env={**os.environ, FOLDER_ENV: str(folder)})
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "[]"
        (socket_path,) = folder.glob("*.sock")
        found = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], folder=folder)
        assert found.process is None and found.socket_path == socket_path  # the run's resource finds it
    finally:
        stop_servers(folder)
