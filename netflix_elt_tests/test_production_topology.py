"""Dagster's production topology, without containers: the files under ``deploy/`` run for real.

PostgreSQL 15 is started from its server binaries (initdb, pg_ctl) in a temporary folder, on
127.0.0.1 and a free port, as the ``postgres`` user when the tests run as root (PostgreSQL
refuses root). Over one ``DAGSTER_HOME`` holding ``deploy/dagster.yaml`` (the ``DAGSTER_PG_*``
variables point at that server) three separate processes start, each in its own process group:

- the code server: ``dagster code-server start -m netflix_elt.definitions`` on a free port,
- the webserver: ``dagster-webserver -w deploy/workspace.yaml`` (``DAGSTER_CODE_SERVER_HOST`` /
  ``_PORT`` name the code server),
- the daemon: ``dagster-daemon run -w deploy/workspace.yaml``.

The topology runs twice (the ``topology`` fixture is parametrized by target), each time over a
database of its own in the same PostgreSQL server:

- ``local``: ``NETFLIX_ELT_HOME`` is a throwaway home on the embedded default (DuckDB, folder
  store); the three processes get the same environment.
- ``prod``: ``NETFLIX_ELT_TARGET=prod`` against the emulators, fakesnow (Snowflake) and moto's
  S3 server (conftest's ``prod`` fixture: the required variables only, the shipped data minus
  the lines fakesnow cannot parse). Only the code server (and so its run workers) gets the
  Snowflake and AWS variables; the webserver and the daemon run with Dagster's own (PostgreSQL,
  workspace) and never see a warehouse or bucket credential.

Before the processes start, the home (and on prod the emulators) is seeded by ``netflix-elt
run`` in the code server's environment with ``NETFLIX_ELT_DAGSTER_HOME`` set, as compose does:
the run is recorded in PostgreSQL, so the daemon's automation (on, as shipped) knows every asset
the warehouse holds.

The tests then do through the webserver's GraphQL API what a user does in the UI
(graphql_api.py): a backfill and automation rebuilding the yearly rollups after it, the sensor
loading a delivered month (on prod: rows counted in the emulator's ``RAW.RATINGS``,
``CORE.FCT_RATINGS`` and the rollups); and they read PostgreSQL to see the runs,
their events and the pool's slots there. Everything started here is stopped at the end,
PostgreSQL included, and its folder removed.

What this does not cover: the containers (deploy/Dockerfile, deploy/docker-compose.yml), the
Helm values and the ECS launcher, which need Docker, a cluster or an AWS account; see
docs/production-deployment.md.
"""

from __future__ import annotations

import importlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

from netflix_elt.settings import REPO_ROOT, Settings
from netflix_elt.processes import pid_alive
from netflix_elt_tests import graphql_api as ui
from netflix_elt_tests.conftest import prod_cli, prod_process_env, warehouse_one, warehouse_query
from netflix_elt_tests.dagster_stack import (
    Stack,
    StackError,
    _wait_until_loaded,
    free_port,
    log_tail,
    netflix_elt,
    settings_env,
    stop_group,
    venv_bin,
)

pytestmark = pytest.mark.slow

DEPLOY = REPO_ROOT / "deploy"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"  # the OS user the server runs as when the tests run as root
DB_NAME = "dagster"
DB_ROLE = "dagster"

SENSOR = "new_s3_objects"
AUTOMATION_SENSOR = "keep_downstream_fresh"  # netflix_elt/automation.py: on by default
DELIVERED_MONTH = "2026-11"
DELIVERED_ROWS = 200
BACKFILL_MONTHS = ["2015-01", "2015-02", "2015-03"]
BACKFILL_SELECTION = ["raw/ratings", "core/fct_ratings"]
# On prod the backfill loads months delivered just before it (before ml-latest-small's first
# rating), so that its COPYs load rows rather than find the seed's objects already loaded.
PROD_BACKFILL_MONTHS, PROD_BACKFILL_ROWS = ["1995-01", "1995-02", "1995-03"], 150
PROD_DB_NAME = "dagster_prod"

TIMINGS: dict[str, float] = {}  # start-up figures, printed at the end of the module (pytest -s / -rA)


# --- PostgreSQL from its server binaries ---------------------------------------------------------


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db: str
    root: Path  # data dir, socket dir, log
    as_user: list[str]  # prefix that runs a command as the server's OS user

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def psql(self) -> list[str]:
        """psql as the superuser over the unix socket (local connections are trusted)."""
        return [*self.as_user, "/usr/bin/psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-q"]

    def create_database(self, name: str) -> "Postgres":
        """Another database owned by the Dagster role, in the same server."""
        _run([*self.psql(), "-c", f"CREATE DATABASE {name} OWNER {self.user}"], "create database")
        return replace(self, db=name)

    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_USER": self.user,
                "DAGSTER_PG_PASSWORD": self.password, "DAGSTER_PG_DB": self.db}

    def query(self, sql: str) -> list[tuple]:
        """Run ``sql`` over TCP as the Dagster role with its password (what the processes do)."""
        import sqlalchemy as sa

        url = sa.engine.URL.create("postgresql+psycopg2", username=self.user, password=self.password,
                                   host=self.host, port=self.port, database=self.db)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(sa.text(sql))]
        finally:
            engine.dispose()


def _run(argv: list[str], what: str, timeout: float = 120) -> str:
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout)
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {' '.join(argv)}\n{output[-3000:]}")
    return output


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def postgres_server() -> Iterator[Postgres]:
    """A PostgreSQL 15 cluster in a temporary folder, listening on 127.0.0.1 (and a unix socket
    in that folder), with a role and database for Dagster; stopped and removed on exit."""
    initdb = PG_BIN / "initdb"
    if not initdb.exists():
        pytest.fail(f"{initdb} is missing: `make test` installs postgresql-15 (apt-get) when it is")
    is_root = os.geteuid() == 0
    as_user = ["runuser", "-u", PG_USER, "--"] if is_root else []
    root = Path(tempfile.mkdtemp(prefix="netflix-elt-pg-"))
    data_dir, socket_dir, log = root / "data", root / "socket", root / "postgres.log"
    socket_dir.mkdir()
    if is_root:
        owner = pwd.getpwnam(PG_USER)
        for path in (root, socket_dir):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    root.chmod(0o700)
    superuser_password = secrets.token_urlsafe(16)
    server = Postgres(host="127.0.0.1", port=free_port(), user=DB_ROLE, password=secrets.token_urlsafe(16),
                      db=DB_NAME, root=root, as_user=as_user)
    pwfile = root / "pwfile"
    pwfile.write_text(superuser_password + "\n")
    if is_root:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    pwfile.chmod(0o600)
    started = False
    try:
        t0 = time.monotonic()
        _run([*as_user, str(initdb), "-D", str(data_dir), "-U", "postgres", f"--pwfile={pwfile}",
              "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], "initdb")
        pwfile.unlink()
        options = (f"-c listen_addresses=127.0.0.1 -p {server.port} -k {socket_dir} "
                   # A throwaway cluster: durability off makes it start and write faster.
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        _run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-o", options, "-w",
              "-t", "60", "start"], "pg_ctl start")
        started = True
        _run([*server.psql(), "-c", f"CREATE ROLE {DB_ROLE} LOGIN PASSWORD '{server.password}'"], "create role")
        server.create_database(DB_NAME)
        TIMINGS["postgres: initdb + start + database (s)"] = time.monotonic() - t0
        yield server
    finally:
        pid = _postmaster_pid(data_dir)
        if started:
            try:
                _run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
                     "pg_ctl stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                if pid and pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)  # children (backends) exit with their postmaster
        deadline = time.monotonic() + 15
        while pid and pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
        if pid and pid_alive(pid):
            raise RuntimeError(f"postgres (pid {pid}) outlived its fixture")


# --- the three Dagster processes -----------------------------------------------------------------


@dataclass
class Topology:
    stack: Stack  # the webserver, for graphql_api.py
    home: Path  # NETFLIX_ELT_HOME
    dagster_home: Path
    postgres: Postgres
    processes: dict[str, subprocess.Popen]
    logs: dict[str, Path]
    target: str = "local"
    # `netflix-elt <args>` over the same home and environment as the code server; returns its output
    cli: Callable[..., str] = field(default=None, repr=False)
    settings: Settings | None = None  # prod: the code server's settings (to query the emulator)

    def tails(self, lines: int = 40) -> str:
        return "\n".join(f"--- {name}: {path} ---\n{log_tail(path, lines)}" for name, path in self.logs.items())


def _start(name: str, argv: list[str], env: dict, logs_dir: Path) -> tuple[subprocess.Popen, Path]:
    log = logs_dir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def _wait_code_server(port: int, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Until ``dagster api grpc-health-check`` answers SERVING (what the Helm chart's probe runs)."""
    deadline = time.monotonic() + timeout
    argv = [str(venv_bin() / "dagster"), "api", "grpc-health-check", "-h", "127.0.0.1", "-p", str(port)]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"the code server exited with {process.returncode}\n{log_tail(log)}")
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=60)
        if done.returncode == 0:
            return
        time.sleep(0.5)
    raise StackError(f"the code server did not answer within {timeout:.0f} s\n{log_tail(log)}")


def seed(code_env: dict, target: str) -> None:
    """``netflix-elt run`` where a deployment runs it: in the code location's environment, with
    ``NETFLIX_ELT_DAGSTER_HOME`` naming the deployment's instance (as deploy/docker-compose.yml
    sets it), so the run and every asset it materializes are recorded in PostgreSQL, where the
    daemon's automation reads them.

    Seeded into an instance of its own instead, the deployment's instance would know none of the
    assets the warehouse holds: automation (eager: nothing is requested while a dependency is
    missing) would then hold ``fct_user_ratings_yearly`` back after a backfill (its parents
    ``bridge_movie_genres`` and the ``genres`` seed never materialized there) and rebuild
    ``fct_movie_ratings_yearly`` alone, leaving the other rollup's years stale."""
    t0 = time.monotonic()
    done = subprocess.run([str(venv_bin() / "netflix-elt"), "run"], cwd=REPO_ROOT, env=code_env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    TIMINGS[f"{target}: netflix-elt run (seeding the home{' and the emulators' if target == 'prod' else ''}, "
            "recorded in PostgreSQL) (s)"] = time.monotonic() - t0
    assert done.returncode == 0 and "netflix-elt run SUCCEEDED" in done.stdout, (done.stdout[-3000:], done.stderr[-3000:])
    if target == "prod":
        print("\n" + done.stdout[done.stdout.index("netflix-elt run SUCCEEDED"):])  # the summary a user sees


@contextmanager
def production_topology(home: Path, postgres: Postgres, work: Path, code_env: dict | None = None,
                        dagster_env: dict | None = None, target: str = "local") -> Iterator[Topology]:
    """The three processes over ``postgres``. The code server (and its run workers) runs with
    ``code_env`` (default: the embedded default over ``home``), the webserver and the daemon with
    ``dagster_env`` (default: the same); both get the PostgreSQL and workspace variables. Before
    they start, ``netflix-elt run`` seeds the home (and on prod the emulators) in the code
    server's environment, recorded in the deployment's instance (``seed``)."""
    dagster_home = work / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copy(DEPLOY / "dagster.yaml", dagster_home / "dagster.yaml")
    logs_dir = work / "logs"
    logs_dir.mkdir()
    grpc_port = free_port()  # the webserver's is chosen when it starts
    code_env = dict(code_env) if code_env is not None else settings_env(home)  # default: the embedded default over `home`
    dagster_env = dict(dagster_env) if dagster_env is not None else dict(code_env)
    dagster_vars = dict(
        postgres.env(),
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_CODE_SERVER_HOST="127.0.0.1",
        DAGSTER_CODE_SERVER_PORT=str(grpc_port),
        DAGSTER_EVENT_BATCH_SIZE="1000",
        # The run workers run dbt from this venv's bin folder, as under `netflix-elt dev`.
        PATH=str(venv_bin()) + os.pathsep + code_env.get("PATH", os.environ.get("PATH", "")),
    )
    code_env.update(dagster_vars)
    dagster_env.update(dagster_vars)
    # Only the code location runs `netflix-elt`: it records into this instance (compose sets it too).
    code_env["NETFLIX_ELT_DAGSTER_HOME"] = str(dagster_home)
    seed(code_env, target)
    workspace = str(DEPLOY / "workspace.yaml")
    bin_ = venv_bin()
    processes: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    try:
        t0 = time.monotonic()
        processes["code-server"], logs["code-server"] = _start(
            "code-server",
            [str(bin_ / "dagster"), "code-server", "start", "-m", "netflix_elt.definitions",
             "--location-name", "netflix_elt", "-h", "127.0.0.1", "-p", str(grpc_port)],
            code_env, logs_dir)
        # As deploy/docker-compose.yml orders them (`depends_on: code-location: service_healthy`):
        # the webserver and the daemon start once the code server answers its health check. Started
        # together, the webserver's first load of the workspace can find the code server not yet
        # listening and show the location as unreachable until Dagster's watcher reloads it
        # (seen in CI under load).
        _wait_code_server(grpc_port, processes["code-server"], logs["code-server"])
        TIMINGS[f"{target}: code server: start to SERVING (s)"] = time.monotonic() - t0
        # Chosen now, not before the seeding run: a port found free a minute or two earlier may
        # since have been taken (in CI a gRPC server answered on the webserver's port).
        web_port = free_port()
        while web_port == grpc_port:
            web_port = free_port()
        processes["webserver"], logs["webserver"] = _start(
            "webserver",
            [str(bin_ / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", str(web_port)],
            dagster_env, logs_dir)
        processes["daemon"], logs["daemon"] = _start(
            "daemon", [str(bin_ / "dagster-daemon"), "run", "-w", workspace], dagster_env, logs_dir)
        stack = Stack(url=f"http://127.0.0.1:{web_port}", home=home, log=logs["webserver"],
                      process=processes["webserver"])
        _wait_until_loaded(stack, timeout=180)
        TIMINGS[f"{target}: three processes: start to location LOADED in the webserver (s)"] = time.monotonic() - t0
        topology = Topology(stack=stack, home=home, dagster_home=dagster_home, postgres=postgres,
                            processes=processes, logs=logs, target=target,
                            cli=lambda *args, timeout=120: netflix_elt(home, *args, timeout=timeout))
        yield topology
        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}\n{topology.tails()}"
    finally:
        # The daemon first (it launches runs), then the webserver, then the code server and the
        # run workers it started (same process group).
        for name in ("daemon", "webserver", "code-server"):
            if name in processes:
                stop_group(processes[name])


@pytest.fixture(scope="module")
def postgres():
    with postgres_server() as server:
        yield server


def _prod_cli_output(prod: dict, *args: str, timeout: float = 120) -> str:
    done = prod_cli(prod, *args, timeout=timeout)
    assert done.returncode == 0, f"netflix-elt {' '.join(args)}: {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


# Variables only the code location needs; the webserver and the daemon on prod run without them.
CODE_ONLY_PREFIXES = ("SNOWFLAKE_", "AWS_", "NETFLIX_ELT_")


@pytest.fixture(scope="module", params=["local", "prod"])
def topology(request, postgres, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"dagster-{request.param}")
    if request.param == "local":
        home = tmp_path_factory.mktemp("production-topology") / "home"  # seeded by production_topology
        with production_topology(home, postgres, work) as topo:
            yield topo
    else:
        prod = request.getfixturevalue("prod")  # fakesnow + moto, the required variables only
        code_env = prod_process_env(prod)
        dagster_env = {k: v for k, v in code_env.items() if not k.startswith(CODE_ONLY_PREFIXES)}
        with production_topology(prod["settings"].home, postgres.create_database(PROD_DB_NAME), work,
                                 code_env=code_env, dagster_env=dagster_env, target="prod") as topo:
            topo.cli = lambda *args, timeout=120: _prod_cli_output(prod, *args, timeout=timeout)
            topo.settings = prod["settings"]
            yield topo
    print(f"\nproduction topology timings ({request.param}): "
          + ", ".join(f"{k}: {v:.1f}" for k, v in TIMINGS.items()))


# --- the tests -----------------------------------------------------------------------------------

INSTANCE_QUERY = """
query InstanceInfo {
  instance {
    info
    runQueuingSupported
    runLauncher { name }
    poolConfig { poolGranularity defaultPoolLimit opGranularityRunBuffer }
    daemonHealth { allDaemonStatuses { daemonType required healthy } }
  }
}
"""


def test_the_deploy_files_are_what_the_local_instance_is_for_pools_and_hold_no_secret():
    deployed = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    from netflix_elt.instance import INSTANCE_YAML

    local = yaml.safe_load(INSTANCE_YAML.replace("{home}", "/h"))
    assert deployed["concurrency"] == local["concurrency"]
    assert deployed["run_monitoring"] == local["run_monitoring"]
    ecs = yaml.safe_load((DEPLOY / "ecs" / "dagster.yaml").read_text())
    helm = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())["additionalInstanceConfig"]
    assert deployed["freshness"] == ecs["freshness"] == helm["freshness"] == local["freshness"] == {"enabled": True}
    assert deployed["telemetry"] == {"enabled": False}
    pg = deployed["storage"]["postgres"]["postgres_db"]
    connection = {k: v for k, v in pg.items() if k != "scheme"}
    assert set(connection) == {"hostname", "port", "username", "password", "db_name"}, pg
    assert all(isinstance(value, dict) and set(value) == {"env"} for value in connection.values()), pg
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    [entry] = workspace["load_from"]
    assert entry["grpc_server"]["location_name"] == "netflix_elt"


PG_ENV_NAMES = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


@pytest.mark.parametrize("folder", ["deploy", "deploy/ecs"])
def test_the_instance_files_pass_dagsters_own_config_validation(folder, monkeypatch):
    """Both instance files against the schemas of the installed Dagster: the instance, the
    PostgreSQL storage, the queued run coordinator and the run launcher's (EcsRunLauncher's
    from dagster-aws for deploy/ecs; it is validated, not started: that needs AWS)."""
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import DagsterPostgresStorage

    for name in PG_ENV_NAMES:
        monkeypatch.setenv(name, "5432" if name.endswith("PORT") else f"value-of-{name.lower()}")
    config, _ = dagster_instance_config(str(REPO_ROOT / folder))
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert storage.value["postgres_db"]["password"] == "value-of-dagster_pg_password"  # read from the env
    coordinator = process_config(QueuedRunCoordinator.config_type(), config["run_coordinator"]["config"])
    assert coordinator.success, coordinator.errors
    launcher = config["run_launcher"]
    klass = getattr(importlib.import_module(launcher["module"]), launcher["class"])
    if launcher.get("config") is not None:
        checked = process_config(klass.config_type(), launcher["config"])
        assert checked.success, checked.errors


def test_the_compose_file_has_the_topology_and_no_literal_secret():
    """deploy/docker-compose.yml parsed as YAML (Docker is not run by the tests; see
    docs/production-deployment.md): its services, and every secret taken from the environment."""
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "s3", "create-bucket", "code-location", "webserver", "daemon"} <= set(services)
    code = services["code-location"]
    assert code["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / "Dockerfile").exists()
    for name in ("webserver", "daemon", "code-location"):
        env = services[name]["environment"]
        assert env["DAGSTER_CODE_SERVER_HOST"] == "code-location" and env["DAGSTER_PG_HOST"] == "postgres", name
    assert code["environment"]["NETFLIX_ELT_STORE"] == "s3"
    assert code["environment"]["NETFLIX_ELT_S3_ENDPOINT_URL"].endswith("http://s3:9000}")
    secrets_seen = 0
    for service in services.values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "PASSPHRASE")):
                assert str(value).startswith("${") and str(value).endswith("}"), (key, value)
                secrets_seen += 1
    assert secrets_seen >= 4
    assert "/opt/dagster/dagster_home/workspace.yaml" in services["webserver"]["command"]
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "constraints.txt" in dockerfile and '"code-server", "start"' in dockerfile and '"0.0.0.0", "-p", "4000"' in dockerfile


def test_the_helm_values_name_the_k8s_run_launcher_and_our_code_server():
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"][:2] == ["--module-name", "netflix_elt.definitions"]
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["global"]["postgresqlSecretName"] and "postgresqlPassword" not in values["postgresql"]
    assert values["concurrency"]["pools"]["granularity"] == "op"


def test_webserver_daemon_and_code_server_run_as_three_processes_over_postgres(topology):
    instance = topology.stack.graphql(INSTANCE_QUERY)["instance"]
    assert "PostgresRunStorage" in instance["info"] and "PostgresEventLogStorage" in instance["info"], instance["info"]
    assert instance["runQueuingSupported"] is True
    assert instance["runLauncher"]["name"] == "DefaultRunLauncher"
    assert instance["poolConfig"] == {"poolGranularity": "op", "defaultPoolLimit": 1, "opGranularityRunBuffer": 1}
    # The daemon is a process of its own and reports its heartbeats through PostgreSQL.
    deadline = time.monotonic() + 90
    while True:
        statuses = topology.stack.graphql(INSTANCE_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
        unhealthy = [s["daemonType"] for s in statuses if s["required"] and not s["healthy"]]
        if not unhealthy:
            break
        assert time.monotonic() < deadline, f"daemons not healthy: {unhealthy}\n{topology.tails()}"
        time.sleep(2)
    assert {s["daemonType"] for s in statuses} >= {"SENSOR", "QUEUED_RUN_COORDINATOR", "BACKFILL"}
    pids = {name: p.pid for name, p in topology.processes.items()}
    assert len({os.getpgid(pid) for pid in pids.values()}) == 3, pids
    assert not (topology.dagster_home / "history").exists()  # no SQLite storage beside PostgreSQL
    if topology.target == "prod":  # the code server is on prod; the others never see its credentials
        environ = {name: _environ(pid) for name, pid in pids.items()}
        assert environ["code-server"]["NETFLIX_ELT_TARGET"] == "prod"
        assert "SNOWFLAKE_PASSWORD" in environ["code-server"] and "AWS_SECRET_ACCESS_KEY" in environ["code-server"]
        for name in ("webserver", "daemon"):
            leaked = sorted(k for k in environ[name] if k.startswith(CODE_ONLY_PREFIXES))
            assert not leaked, (name, leaked)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)



def test_a_backfill_of_three_months_completes_through_the_queue(topology):
    stack = topology.stack
    months = BACKFILL_MONTHS
    # Automation is on (as shipped): after the backfill it rebuilds the yearly rollups of its months.
    assert ui.sensor(stack, AUTOMATION_SENSOR)["sensorState"]["status"] == "RUNNING"
    if topology.target == "prod":
        # Three months delivered to S3 first (the sensor is off), so the backfill's COPYs load them.
        months = PROD_BACKFILL_MONTHS
        for month in months:
            from netflix_elt.deliveries import deliver_ratings_month
            from netflix_elt.resources.factory import build_object_store

            settings = topology.settings
            deliver_ratings_month(build_object_store(settings), settings.source / "movies.csv", month,
                                  rows=PROD_BACKFILL_ROWS, work_dir=settings.work_dir)
    t0 = time.monotonic()
    backfill_id = ui.launch_backfill(stack, BACKFILL_SELECTION, months)
    status = ui.wait_backfill(stack, backfill_id, timeout=600)
    TIMINGS[f"{topology.target}: backfill of 3 months, raw/ratings + core/fct_ratings (s)"] = time.monotonic() - t0
    failed = {r["runId"]: ui.failure_messages(stack, r["runId"]) for r in status["runs"] if r["status"] != "SUCCESS"}
    assert not failed, failed
    assert status["status"] in ("COMPLETED_SUCCESS", "COMPLETED"), (status["status"], status["error"])
    run_ids = [r["runId"] for r in status["runs"]]
    assert run_ids, status
    missing = ui.unmaterialized(stack, BACKFILL_SELECTION, months, run_ids)
    assert not missing, f"backfill {backfill_id}: not materialized {missing}; per asset {status['assets']}"
    # Every run went through the run queue (the daemon dequeued it) and is in PostgreSQL.
    quoted = ", ".join(f"'{r}'" for r in run_ids)
    [(enqueued,)] = topology.postgres.query(
        f"select count(distinct run_id) from event_logs where dagster_event_type = 'PIPELINE_ENQUEUED' "
        f"and run_id in ({quoted})")
    assert enqueued == len(run_ids)
    if topology.target == "prod":  # the rows, per month, in the emulator
        settings = topology.settings
        quoted_months = ", ".join(f"'{m}'" for m in months)
        raw = {key.split("month=")[1].split("/")[0]: n for key, n in warehouse_query(settings, """
            select _SOURCE_OBJECT, count(*) from NETFLIX_ELT.RAW.RATINGS
            where _SOURCE_OBJECT like 'raw/ratings/month=1995-%' group by 1""")}
        ledger = dict(warehouse_query(settings, f"""
            select PARTITION_KEY, sum(ROWS_LOADED) from NETFLIX_ELT.RAW._LOAD_LEDGER
            where DATASET = 'ratings' and PARTITION_KEY in ({quoted_months}) group by 1"""))
        fct = {f"{month:%Y-%m}": n for month, n in warehouse_query(settings, """
            select rated_month, count(*) from NETFLIX_ELT.CORE.FCT_RATINGS
            where rated_month < '1996-01-01'::date group by 1""")}
        expected = {m: PROD_BACKFILL_ROWS for m in months}
        assert (raw, ledger, fct) == (expected, expected, expected), (raw, ledger, fct)
    _automation_rebuilds_the_rollups(topology, months, set(run_ids))


ROLLUPS = ["core/fct_movie_ratings_yearly", "core/fct_user_ratings_yearly"]


def reconcile_check(rollup: str) -> str:
    """The check that holds ``rollup`` (an asset key path) equal to fct_ratings, year by year."""
    return f"assert_{rollup.split('/')[-1]}_reconciles_with_fct_ratings"


def _automation_rebuilds_the_rollups(topology: Topology, months: list[str], backfill_runs: set[str]) -> None:
    """The backfill stopped at fct_ratings: automation (the daemon's ``keep_downstream_fresh``)
    rebuilds both yearly rollups for its months, in runs that succeed, their reconcile check
    passing (on prod: in the emulator, 3 x 150 rows more in 1995 than before)."""
    stack = topology.stack
    loaded_at = max(float(m["timestamp"]) for m in ui.latest_materializations(stack, "core/fct_ratings", partitions=months)
                    if m["runId"] in backfill_runs)
    t0 = time.monotonic()
    deadline = t0 + 420
    stale = set(ROLLUPS)
    while True:
        later = [r for r in ui.runs(stack, limit=50) if r["runId"] not in backfill_runs]
        failed = {r["runId"]: (r["tags"], ui.failure_messages(stack, r["runId"])[:4]) for r in later if r["status"] == "FAILURE"}
        assert not failed, f"a run after the backfill failed: {failed}"
        stale = {asset for asset in stale
                 if set(months) - {m["partition"] for m in ui.latest_materializations(stack, asset, partitions=months)
                                   if float(m["timestamp"]) > loaded_at}}
        if not stale:
            break
        assert time.monotonic() < deadline, (f"not rebuilt by automation within 7 min: {sorted(stale)}; "
                                             f"runs since: {[(r['runId'][:8], r['status'], r['tags']) for r in later]}")
        time.sleep(3)
    TIMINGS[f"{topology.target}: automation after the backfill: both rollups rebuilt (s)"] = time.monotonic() - t0
    rebuilt_by = {m["runId"] for asset in ROLLUPS for m in ui.latest_materializations(stack, asset, partitions=months)
                  if float(m["timestamp"]) > loaded_at}
    for run_id in rebuilt_by:  # nothing but automation launched a run since the backfill
        assert ui.wait_run(stack, run_id, timeout=300) == "SUCCESS"
    # Evaluated in those runs and passed (a run may also leave a planned record SKIPPED beside the evaluated one).
    for rollup in ROLLUPS:
        checks = [(e["status"], e.get("partition"), e["runId"][:8])
                  for e in ui.asset_check_executions(stack, rollup, reconcile_check(rollup)) if e["runId"] in rebuilt_by]
        statuses = {status for status, _, _ in checks}
        assert "SUCCEEDED" in statuses and not statuses & {"FAILED", "EXECUTION_FAILED"}, (rollup, checks)
    if topology.target == "prod":  # the rollups' 1995 rows in the emulator: the three months, and all of them
        for table in ("FCT_MOVIE_RATINGS_YEARLY", "FCT_USER_RATINGS_YEARLY"):
            assert warehouse_one(topology.settings, f"select sum(ratings_count) from NETFLIX_ELT.CORE.{table} "
                                                    "where rated_year = '1995-01-01'::date") == \
                warehouse_one(topology.settings, "select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS "
                                                 "where rated_month < '1996-01-01'::date") == len(months) * PROD_BACKFILL_ROWS, table


def test_the_sensor_run_by_the_daemon_loads_a_delivered_month(topology):
    stack = topology.stack
    # The backfill's deliveries (prod) were written just before: the sensor's first tick takes
    # them as there before it was switched on, not as deliveries.
    state = ui.start_sensor(stack, SENSOR)
    assert state["sensorState"]["status"] == "RUNNING"
    try:
        # The first tick starts the sensor's cursor at "now"; deliver after it.
        ticks = ui.wait_ticks(stack, SENSOR, lambda ts: any(t["status"] != "STARTED" for t in ts), 120, "first tick")
        assert not any(t["status"] == "FAILURE" for t in ticks), [t["error"] for t in ticks]
        first = {t["tickId"] for t in ticks}
        delivered = topology.cli("deliver", "ratings", "--month", DELIVERED_MONTH, "--rows", str(DELIVERED_ROWS))
        assert f"month={DELIVERED_MONTH}" in delivered, delivered
        t0 = time.monotonic()
        ticks = ui.wait_ticks(stack, SENSOR, lambda ts: any(t["runIds"] or t["status"] == "FAILURE" for t in ts
                                                   if t["tickId"] not in first), 240, "tick requesting a run")
        new = [t for t in ticks if t["tickId"] not in first]
        assert not [t["error"] for t in new if t["status"] == "FAILURE"], new
        [run_id] = [r for t in new for r in t["runIds"]]
        assert ui.wait_run(stack, run_id, timeout=300) == "SUCCESS"
        TIMINGS[f"{topology.target}: sensor: tick after delivery to run SUCCESS (s)"] = time.monotonic() - t0
        run = ui.run(stack, run_id)
        assert run["tags"].get("dagster/partition") == DELIVERED_MONTH, run["tags"]
        assert "raw/ratings" in run["assetSelection"], run["assetSelection"]
        if topology.target == "prod":  # the month's rows in the emulator, raw and fact
            key = f"raw/ratings/month={DELIVERED_MONTH}/ratings.csv"
            assert warehouse_one(topology.settings, "select count(*) from NETFLIX_ELT.RAW.RATINGS "
                                                    f"where _SOURCE_OBJECT = '{key}'") == DELIVERED_ROWS
            assert warehouse_one(topology.settings, "select count(*) from NETFLIX_ELT.CORE.FCT_RATINGS "
                                                    f"where rated_month = '{DELIVERED_MONTH}-01'::date") == DELIVERED_ROWS
    finally:
        ui.stop_sensor(stack, SENSOR)
    # The sensor's state and ticks live in PostgreSQL's schedule storage.
    [(ticks_stored,)] = topology.postgres.query(
        f"select count(*) from job_ticks where type = 'SENSOR' and status = 'SUCCESS' and tick_body like '%{SENSOR}%'")
    assert ticks_stored >= 1


def test_runs_events_and_pool_slots_are_in_postgres(topology):
    stack = topology.stack
    ui.wait_no_active_runs(stack, timeout=300)
    listed = ui.runs(stack, limit=500)
    graphql_runs = {r["runId"]: r["status"] for r in listed}
    failed = {r["runId"]: (r["tags"], ui.failure_messages(stack, r["runId"])[:3]) for r in listed if r["status"] == "FAILURE"}
    assert graphql_runs and not failed, failed
    stored = dict(topology.postgres.query("select run_id, status from runs"))
    assert set(graphql_runs) <= set(stored), set(graphql_runs) - set(stored)
    assert all(stored[run_id] == status for run_id, status in graphql_runs.items()), (graphql_runs, stored)
    quoted = ", ".join(f"'{r}'" for r in graphql_runs)
    [(events, runs_with_events)] = topology.postgres.query(
        f"select count(*), count(distinct run_id) from event_logs where run_id in ({quoted})")
    assert runs_with_events == len(graphql_runs) and events > 20 * len(graphql_runs), (events, runs_with_events)
    # The warehouse pool: its slot is a row in PostgreSQL, and it is free again.
    slots = topology.postgres.query(
        "select run_id from concurrency_slots where concurrency_key = 'duckdb_warehouse' and not deleted")
    assert len(slots) == 1 and slots[0][0] is None, slots
