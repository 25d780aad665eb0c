"""Warm dbt: invocations forked from a server that has imported dbt behave like cold ones, and
a server lives exactly as long as the command that owns it.

A tiny dbt project on an in-memory DuckDB keeps these fast. Every server here is owned by the
test process (or a subprocess of it) and stopped by the test that started it."""

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
from netflix_elt.resources.dbt_cli import LeanDbtCliResource
from netflix_elt.warm_dbt import CLIENT, EXECUTABLE_ENV, SOCKET_ENV, WarmDbtServer

REPO = Path(__file__).resolve().parents[1]

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
                         home=tmp_path_factory.mktemp("home"))
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
    warm = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], home=tmp_path)
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
server.prepare(["dbt.adapters.duckdb"], {str(target / "partial_parse.msgpack")!r}, frozenset({{"warm_up", "freeze"}}))
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
    warm = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], home=tmp_path / "home",
                         saved_parse=garbage)
    try:
        result = dbt(project, "run-operation", "hello", "--args", "{name: anyway}", env=warm.env())
        log = warm.log_path.read_text()
    finally:
        warm.stop()
    assert result.returncode == 0, result.stdout + result.stderr  # /bin/false: it was the server's fork
    assert "hello anyway from nowhere" in result.stdout
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
        server = WarmDbtServer(real_executable=dbt_executable(), preload=["dbt.adapters.duckdb"], home=tmp_path)
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


def test_with_warm_dbt_off_the_resource_runs_the_real_dbt(local_settings, monkeypatch):
    """The client stays the executable (it hands each invocation its values) but is told to
    become the real dbt: no server is named, even where this process names one."""
    from dataclasses import replace

    from netflix_elt.resources.factory import build_resources
    from netflix_elt.warm_dbt import EXECUTABLE_ENV, SOCKET_ENV

    monkeypatch.setenv(SOCKET_ENV, "/nonexistent/warm-dbt.sock")
    resource = build_resources(replace(local_settings, warm_dbt=False))["dbt"]
    values = resource.invocation_env()
    assert not resource.warm_start and values[SOCKET_ENV] == "" and values[EXECUTABLE_ENV] == dbt_executable()


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


def _has_execd_dagster(pid: int) -> bool:
    """True once ``pid`` runs the ``dagster`` command (its argv names it), not a fork of its parent."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return any(Path(arg.decode(errors="replace")).name == "dagster" for arg in argv)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


# -- lifetime: a server belongs to the command that started it ------------------------------------

OWNER = """
import os, sys, time
from netflix_elt.warm_dbt import WarmDbtServer
server = WarmDbtServer("/bin/false", ["dbt.adapters.duckdb"], home=sys.argv[1])
print(server.pid, server.socket_path, flush=True)
time.sleep(600)
"""


def _start_owner(home: Path) -> tuple[subprocess.Popen, int, Path]:
    """A process owning a warm dbt server (and doing nothing else): (owner, server pid, socket)."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(home)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    pid, socket_path = owner.stdout.readline().split()
    return owner, int(pid), Path(socket_path)


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def test_a_sigkilled_owner_takes_its_server_with_it_and_leaves_no_files(tmp_path):
    owner, server_pid, socket_path = _start_owner(tmp_path / "home")
    try:
        assert _alive(server_pid) and socket_path.is_socket()
        owner.kill()  # SIGKILL: no clean-up of the owner's runs
        owner.wait()
        assert _gone_within(server_pid, 10)
        deadline = time.monotonic() + 5
        while _files_of(socket_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _files_of(socket_path) == []  # socket, pid and log files removed by the server
    finally:
        owner.kill()
        if _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def test_a_server_whose_owner_is_gone_without_the_kernels_signal_notices_within_seconds(tmp_path):
    # Where PR_SET_PDEATHSIG does not exist (macOS) the server polls its parent: here the
    # kernel's signal is switched off and the owner leaves without stopping its server.
    code = OWNER.replace("time.sleep(600)", "os._exit(0)")
    owner = subprocess.run([sys.executable, "-c", code, str(tmp_path / "home")], capture_output=True, text=True,
                           cwd=REPO, timeout=60, env={**os.environ, "NETFLIX_ELT_WARM_DBT_NO_PDEATHSIG": "1"})
    server_pid, socket_path = owner.stdout.split()
    assert _gone_within(int(server_pid), 60)  # it polls once dbt is imported
    assert _files_of(Path(socket_path)) == []


def _files_of(socket_path: Path) -> list[Path]:
    """A server's socket, pid and log files still there."""
    return sorted(socket_path.parent.glob(socket_path.stem + ".*"))


def test_a_killed_owner_and_server_leave_files_that_the_next_owner_removes(tmp_path):
    owner, server_pid, socket_path = _start_owner(tmp_path / "home")
    os.kill(server_pid, signal.SIGKILL)  # both killed: nobody cleans up
    owner.kill()
    owner.wait()
    assert _gone_within(server_pid, 10)
    assert socket_path.exists()  # left behind
    fresh = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], home=tmp_path / "home")
    try:
        assert _files_of(socket_path) == []
        assert _files_of(fresh.socket_path) == sorted([fresh.socket_path, fresh.pid_path, fresh.log_path])
    finally:
        fresh.stop()
    assert _files_of(fresh.socket_path) == []


def test_two_homes_get_two_different_servers_each_in_its_own_home():
    import shutil
    import tempfile

    homes = [Path(tempfile.mkdtemp(prefix="nfx-home-")) for _ in range(2)]  # short: sockets fit under them
    servers = []
    try:
        servers = [WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], home=home) for home in homes]
        first, second = servers
        assert first.pid != second.pid and first.socket_path != second.socket_path
        for server, home in zip(servers, homes):
            assert server.socket_path.parent == home.resolve() / "warm-dbt"
            assert server.env()[SOCKET_ENV] == str(server.socket_path)
    finally:
        for server in servers:
            server.stop()
        for home in homes:
            shutil.rmtree(home)
    assert not any(_alive(server.pid) for server in servers)


def test_a_home_too_deep_for_a_unix_socket_gets_a_private_temporary_folder_of_its_own(tmp_path, monkeypatch):
    from netflix_elt.warm_dbt import SOCKET_PATH_MAX, servers_folder

    deep = [tmp_path / ("x" * 60) / ("y" * 60) / name for name in ("one", "two")]
    folders = [servers_folder(home) for home in deep]
    try:
        assert folders[0] != folders[1]
        for folder in folders:
            assert len(str(folder / "server-4194304.sock")) <= SOCKET_PATH_MAX
            assert folder.stat().st_mode & 0o777 == 0o700
        assert servers_folder(deep[0]) == folders[0]  # the same home, the same folder
    finally:
        for folder in folders:
            folder.rmdir()


def test_a_servers_folder_others_can_enter_is_refused(tmp_path):
    # Whoever can reach the socket runs dbt as this user.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(PermissionError, match="mode 0700"):
        WarmDbtServer(real_executable="/bin/false", folder=shared)


@dg.asset
def genres_seeded(dbt: LeanDbtCliResource) -> dg.MaterializeResult:
    """One step that runs `dbt seed` through the project's dbt resource."""
    from netflix_elt.dbt_manifest import dbt_project

    invocation = dbt.cli(["seed", "--select", "genres"], manifest=dbt_project.manifest_path).wait()
    return dg.MaterializeResult(metadata={"exit code": invocation.process.returncode})


def _seed_genres_run(settings) -> dg.ExecuteInProcessResult:
    """A Dagster run of ``genres_seeded`` with the project's dbt resource for ``settings``."""
    from netflix_elt.resources.factory import build_resources

    settings.home.mkdir(parents=True, exist_ok=True)  # for the warehouse file
    return dg.materialize([genres_seeded], resources={"dbt": build_resources(settings)["dbt"]},
                          instance=dg.DagsterInstance.ephemeral())


def test_a_dagster_run_forks_its_dbt_steps_from_the_server_its_command_names_in_the_environment(local_settings, monkeypatch):
    warm = WarmDbtServer(real_executable="/bin/false", preload=["dbt.adapters.duckdb"], home=local_settings.home)
    try:
        for name, value in warm.env().items():  # what netflix-elt run / dev do for their runs
            monkeypatch.setenv(name, value)  # the real executable is /bin/false: a cold dbt fails
        result = _seed_genres_run(local_settings)
        assert result.success
    finally:
        warm.stop()


def test_without_a_server_in_the_environment_a_run_starts_none_and_runs_dbt_cold(local_settings, monkeypatch):
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    monkeypatch.delenv(EXECUTABLE_ENV, raising=False)
    before = set(_servers())
    assert _seed_genres_run(local_settings).success
    assert set(_servers()) <= before  # no server was started for it (by this process)


def _servers() -> list[int]:
    """Warm dbt servers whose owner is this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == os.getpid() and b"netflix_elt.warm_dbt.server" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _home_folder(home: Path) -> Path:
    """Where a command run with this home keeps its servers' files."""
    from netflix_elt.warm_dbt import servers_folder

    return servers_folder(home)


def _watch_for_server(home: Path, proc: subprocess.Popen, timeout: float = 120) -> tuple[int, Path]:
    """The server pid and pid file of the command ``proc``, once it has started one."""
    deadline = time.monotonic() + timeout
    folder = _home_folder(home)
    while time.monotonic() < deadline and proc.poll() is None:
        for pid_file in folder.glob("server-*.pid"):
            words = pid_file.read_text().split()
            if len(words) == 2:
                return int(words[0]), pid_file
        time.sleep(0.05)
    raise AssertionError("the command started no warm dbt server")


def _cli(home: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    env.update(NETFLIX_ELT_HOME=str(home), NETFLIX_ELT_SYNTHETIC_GENOME_TAGS="8", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    return subprocess.Popen([sys.executable, "-m", "netflix_elt.cli", *args], env=env, cwd=REPO, **popen)


def test_no_server_process_is_left_after_netflix_elt_run_exits(tmp_path):
    home = tmp_path / "home"
    run = _cli(home, "run", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server_pid, pid_file = _watch_for_server(home, run)
    output, _ = run.communicate(timeout=600)
    assert run.returncode == 0, output[-3000:]
    assert "SUCCEEDED" in output
    assert not Path(f"/proc/{server_pid}").exists()  # gone (and reaped), not a zombie either
    assert _files_of(pid_file.with_suffix(".sock")) == []


def test_ctrl_c_on_netflix_elt_run_stops_its_server(tmp_path):
    home = tmp_path / "home"
    run = _cli(home, "run", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server_pid, pid_file = _watch_for_server(home, run)
    time.sleep(1)  # the run is importing Dagster, or has begun
    run.send_signal(signal.SIGINT)
    try:
        run.wait(timeout=120)
    finally:
        run.kill()
    assert _gone_within(server_pid, 10)
    assert _files_of(pid_file.with_suffix(".sock")) == []


def test_netflix_elt_dev_runs_dagster_as_its_child_and_stops_its_server_when_it_ends(tmp_path):
    import socket as sockets

    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home = tmp_path / "home"
    dev = _cli(home, "dev", "--port", str(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               start_new_session=True)  # as a terminal's foreground job would be: SIGTERM reaches dev only
    try:
        server_pid, pid_file = _watch_for_server(home, dev)
        deadline = time.monotonic() + 60
        while len(_children(dev.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        children = _children(dev.pid)
        dagster = [pid for pid in children if pid != server_pid]
        assert server_pid in children and len(dagster) == 1  # the server and dagster dev, not an exec
        # A run worker of this session finds the server through the environment dagster inherits.
        # /proc/<pid>/environ is the environment the process image started with: until the child
        # has exec'd dagster (after its pre-exec hook), it is still netflix-elt dev's own.
        deadline = time.monotonic() + 60
        while not _has_execd_dagster(dagster[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        environ = Path(f"/proc/{dagster[0]}/environ").read_bytes().split(b"\0")
        assert f"{SOCKET_ENV}={pid_file.with_suffix('.sock')}".encode() in environ
        time.sleep(3)  # let dagster dev get on with its start-up
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=120)
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
    assert _gone_within(server_pid, 10) and _gone_within(dagster[0], 30)
    assert _files_of(pid_file.with_suffix(".sock")) == []


def test_the_code_location_imports_without_fcntl(tmp_path):
    # Windows has no fcntl: with the module blocked, the code location still loads, and none
    # of the project's own modules asked for it (libraries that try it and cope are fine).
    code = """
import sys, traceback
asked = []
class NoFcntl:
    def find_spec(self, name, path=None, target=None):
        if name == "fcntl":
            importer = [f.filename for f in traceback.extract_stack()[:-1] if "importlib" not in f.filename][-1]
            if "/netflix_elt/" in importer:  # the module whose `import fcntl` this is
                asked.append(importer)
            raise ImportError("no fcntl here (Windows)")
sys.meta_path.insert(0, NoFcntl())
sys.modules.pop("fcntl", None)
import netflix_elt.definitions
print("asked by", sorted(set(asked)), "loaded", "fcntl" in sys.modules)
"""
    env = {**os.environ, "NETFLIX_ELT_WARM_DBT": "0", "NETFLIX_ELT_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "asked by [] loaded False" in result.stdout, result.stdout
