"""Warm dbt: dbt invocations forked from one long-lived process that has already imported dbt.

Every dbt invocation is a new process, and on a 2-core machine ~2 s of each one goes to
importing dbt and its adapter and to the one-time set-up of its first command, before any
model runs. A full run makes three invocations and a new month of ratings two (see
netflix_elt/assets/dbt.py), so that start-up was the largest fixed cost left in both.

dagster-dbt is unchanged: it still starts a process per invocation and streams its JSON
logs. That process is ``netflix_elt/warm_dbt/dbt``, a small stdlib client; when a server is
there, the client has it fork a dbt that takes over the client's stdin/stdout/stderr,
environment, working directory and arguments. Without a server it becomes the real dbt, so
correctness never depends on one.

The same trick as Ruby's Spring, Android's zygote or Gradle's daemon, kept small: one server
per user, Python interpreter and dbt installation, shared by every run on the machine. The
dbt resource of the first run that finds none starts it as the run begins (it imports while
extract and load run); later runs fork from it at once, which is what a run of one new month
needs (its load takes 0.1 s, so nothing else would hide the import). It exits after
``NETFLIX_ELT_WARM_DBT_IDLE_S`` (default 900) seconds without a connection. It holds no
project, profile or environment of its own, so runs of different projects, warehouses and
environments share it safely (the saved parse of the project whose run started it is read
once, to compile code and macro templates that dbt caches by their source text); a new dbt,
adapter or Python gets a server of its own (the socket name is a hash of their versions), and
the old one idles out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

CLIENT = Path(__file__).with_name("dbt")
SOCKET_ENV = "NETFLIX_ELT_WARM_DBT_SOCKET"  # names shared with the client (it imports nothing)
EXECUTABLE_ENV = "NETFLIX_ELT_DBT_EXECUTABLE"
FOLDER_ENV = "NETFLIX_ELT_WARM_DBT_DIR"
IDLE_ENV = "NETFLIX_ELT_WARM_DBT_IDLE_S"
DEFAULT_IDLE_S = 900.0
DBT_DISTRIBUTIONS = ("dbt-core", "dbt-adapters", "dbt-common")
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # dbt's saved parse, in a target folder


def dbt_executable() -> str:
    """The dbt installed next to this interpreter, so a venv works without being activated."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else "dbt"


def adapter_modules(project_dir: Path, profiles_dir: Path, profile: str | None = None, target: str | None = None) -> list[str]:
    """The dbt adapter a target uses (e.g. ``dbt.adapters.duckdb``), for a server to import up
    front; [] if the profile cannot be read (dbt will say why when it runs)."""
    import yaml

    try:
        project = yaml.safe_load((Path(project_dir) / "dbt_project.yml").read_text())
        profiles = yaml.safe_load((Path(profiles_dir) / "profiles.yml").read_text())
        chosen = profiles[profile or project["profile"]]
        adapter = chosen["outputs"][target or chosen["target"]]["type"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return []
    return [f"dbt.adapters.{adapter}"]


def saved_parse_path(project_dir: str | Path) -> Path:
    """Where dbt keeps a project's saved parse (its default target folder)."""
    return Path(project_dir) / "target" / PARTIAL_PARSE_FILE


def lock_path(sock_path: str) -> str:
    """The lock held while a server is looked for, started, stopped or retires."""
    return sock_path.removesuffix(".sock") + ".lock"


def pid_path(sock_path: str) -> str:
    return sock_path.removesuffix(".sock") + ".pid"


def servers_folder(folder: str | Path | None = None) -> Path:
    """Where the servers' sockets live: ``folder``, else ``$NETFLIX_ELT_WARM_DBT_DIR``, else a
    folder of this user's in ``$XDG_RUNTIME_DIR`` or the temporary folder. Whoever can connect
    to a socket can run dbt as this user, so a folder that is not private (0700, this user's,
    not a symlink) is refused."""
    folder = Path(folder or os.environ.get(FOLDER_ENV) or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), f"netflix-elt-warm-dbt-{os.getuid()}"
    ))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"warm dbt: {folder} must be a folder of this user's with mode 0700")
    return folder


def server_key(preload: list[str]) -> str:
    """What a server's forks run: this interpreter, the dbt packages it would import, the
    modules it preloads and the server's own code. Any change means another server."""
    parts = [os.path.realpath(sys.executable), *preload, Path(__file__).with_name("server.py").read_text()]
    adapters = [f"dbt-{module.rsplit('.', 1)[-1]}" for module in preload if module.startswith("dbt.adapters.")]
    for dist in (*DBT_DISTRIBUTIONS, *adapters):
        try:
            parts.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} absent")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


class WarmDbtServer:
    """A handle on the warm dbt server for ``preload``: the running one, or one started now
    (warmed up with ``saved_parse``, a project's ``target/partial_parse.msgpack``, see
    server.warm_up). ``env()`` holds what a dbt invocation needs to reach it."""

    def __init__(self, real_executable: str, preload: list[str] | None = None,
                 folder: str | Path | None = None, idle_s: float | None = None, saved_parse: Path | None = None):
        self.real_executable = real_executable
        self.folder = servers_folder(folder)
        key = server_key(preload or [])
        self.socket_path = self.folder / f"{key}.sock"
        self.pid_path = Path(pid_path(str(self.socket_path)))
        self.process: subprocess.Popen | None = None  # set when this handle started the server
        with locked(lock_path(str(self.socket_path))):  # one starter at a time; a retiring server waits
            if not _answers(self.socket_path):
                self.process = self._start(preload or [], _idle_seconds(idle_s), key, saved_parse)

    def _start(self, preload: list[str], idle_s: float, key: str, saved_parse: Path | None) -> subprocess.Popen:
        self.socket_path.unlink(missing_ok=True)  # a server that was killed leaves its socket
        log = os.open(self.folder / f"{key}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Listening before the server process exists: a client never finds no socket.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(str(self.socket_path))
                listener.listen(64)
                process = subprocess.Popen(
                    [sys.executable, "-m", "netflix_elt.warm_dbt.server", str(listener.fileno()), str(idle_s),
                     str(saved_parse or "-"), *preload],
                    pass_fds=[listener.fileno()],
                    # It outlives this run: it holds no terminal, pipe or folder of the run's (a
                    # caller reading this process's output to its end must not wait for it).
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    cwd=Path(__file__).parents[2],  # where this netflix_elt package is found
                    start_new_session=True,
                )
        finally:
            os.close(log)
        self.pid_path.write_text(f"{process.pid}\n")
        return process

    @property
    def pid(self) -> int | None:
        return _read_pid(self.pid_path)

    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: str(self.socket_path), EXECUTABLE_ENV: self.real_executable}

    def stop(self) -> None:
        """Stop the server now (a dbt it forked and still running finishes on its own)."""
        _stop(self.socket_path, self.process)


def server_for_project(project_dir: str | Path, profiles_dir: str | Path | None = None,
                       profile: str | None = None, target: str | None = None) -> WarmDbtServer:
    """The machine's warm dbt server for a dbt project's target, started if none is up: the
    target's adapter preloaded, warmed up with the project's saved parse."""
    preload = adapter_modules(Path(project_dir), Path(profiles_dir or project_dir), profile, target)
    return WarmDbtServer(dbt_executable(), preload, saved_parse=saved_parse_path(project_dir))


def stop_servers(folder: str | Path | None = None) -> None:
    """Stop every warm dbt server in ``folder`` (tests and benchmarks start from none)."""
    for pid_file in servers_folder(folder).glob("*.pid"):
        _stop(pid_file.with_suffix(".sock"))


def _stop(socket_path: Path, process: subprocess.Popen | None = None) -> None:
    with locked(lock_path(str(socket_path))):
        pid_file = Path(pid_path(str(socket_path)))
        pid = _read_pid(pid_file)
        # Only a server that still listens is signalled: the pid of one that was killed
        # may belong to another process by now.
        if pid is not None and _answers(socket_path):
            _terminate(pid, process)
        socket_path.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text())
    except (OSError, ValueError):
        return None


def _idle_seconds(idle_s: float | None) -> float:
    if idle_s is not None:
        return idle_s
    try:
        return float(os.environ.get(IDLE_ENV) or DEFAULT_IDLE_S)
    except ValueError:
        raise ValueError(f"{IDLE_ENV} must be a number of seconds, not {os.environ[IDLE_ENV]!r}") from None


def _answers(path: Path) -> bool:
    """Is a server listening? (It sees a connection that sends nothing and ignores it.)"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:  # no socket file, or nobody listening on it (the server was killed)
            return False
    return True


@contextlib.contextmanager
def locked(path: str):
    """Hold the exclusive lock at ``path`` (see ``lock_path``) for the ``with`` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _terminate(pid: int, process: subprocess.Popen | None) -> None:
    """SIGTERM, and SIGKILL if the server is still there after 5 s; returns once it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if process is not None:  # our child: reap it
            try:
                process.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)
        if not _running(pid):
            return


def _running(pid: int) -> bool:
    """Alive and not a zombie (a server started by another handle of this process, which has
    ended but is not reaped yet, has stopped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): alive as far as we can tell
