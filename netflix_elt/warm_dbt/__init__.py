"""Warm dbt: dbt invocations forked from a process that has already imported dbt.

Every dbt invocation is a new process, and on a 2-core machine ~2 s of each one goes to
importing dbt and its adapter and to the one-time set-up of its first command, before any
model runs. A full run makes three invocations and a new month of ratings two (see
netflix_elt/assets/dbt.py).

dagster-dbt is unchanged: it still starts a process per invocation and streams its JSON
logs. That process is ``netflix_elt/warm_dbt/dbt``, a small stdlib client; when the
environment names a server (``NETFLIX_ELT_WARM_DBT_SOCKET``) and it answers, the client has
it fork a dbt that takes over the client's stdin/stdout/stderr, environment, working
directory and arguments. Otherwise it becomes the real dbt, so correctness never depends on a
server.

Lifetime (docs/warm-dbt.md): a server belongs to the command that started it, its *owner*.
``netflix-elt run`` and ``netflix-elt dev`` start one (``owned_server``) and stop it before
they exit; it is never shared with another command or checkout. Its files live in a private
folder of the checkout's home (``$NETFLIX_ELT_HOME/warm-dbt``), named after the owner's pid.
If the owner dies without stopping it (SIGKILL), the server follows: Linux sends it SIGTERM
(``PR_SET_PDEATHSIG``), and elsewhere it notices within a second that its parent changed; it
removes its files as it goes, and any owner starting later removes the files of servers whose
process is gone. A Dagster run finds its command's server through the environment (the run
worker of ``netflix-elt dev`` inherits it); without one (plain ``dagster dev``, a test,
production) it runs dbt cold.

POSIX only (Unix sockets carrying file descriptors, and fork): elsewhere ``supported()`` is
False and dbt runs cold. Importing this package imports nothing POSIX-only, so the code
location loads on any OS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netflix_elt.processes import pid_alive

CLIENT = Path(__file__).with_name("dbt")
SOCKET_ENV = "NETFLIX_ELT_WARM_DBT_SOCKET"  # names shared with the client (it imports nothing)
EXECUTABLE_ENV = "NETFLIX_ELT_DBT_EXECUTABLE"
# One invocation's own environment values, in its target folder (resources/dbt_cli.py writes it)
INVOCATION_ENV_FILE = "netflix_elt_invocation_env.json"
FOLDER_ENV = "NETFLIX_ELT_WARM_DBT_DIR"  # no longer read (servers live in their home); kept for stop_servers callers
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # dbt's saved parse, in a target folder
SOCKET_PATH_MAX = 100  # AF_UNIX: 108 bytes on Linux, 104 on macOS, the final NUL included
POLL_S = 1.0  # how often a server checks that its owner is still there


def supported() -> bool:
    """Can this OS run a warm server (fork, and Unix sockets that carry file descriptors)?"""
    return os.name == "posix" and hasattr(os, "fork") and hasattr(socket, "AF_UNIX") and hasattr(socket, "send_fds")


def dbt_executable() -> str:
    """The dbt installed next to this interpreter, so a venv works without being activated."""
    for name in ("dbt", "dbt.exe"):
        beside = Path(sys.executable).with_name(name)
        if beside.exists():
            return str(beside)
    return "dbt"


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


def servers_folder(home: str | Path | None = None, folder: str | Path | None = None) -> Path:
    """Where a home's servers keep their socket, pid and log files: ``folder`` if given, else
    ``<home>/warm-dbt``; if a socket there would be too long for AF_UNIX, a private temporary
    folder named by a hash of that path instead (so still one per home). Whoever can connect
    to a socket can run dbt as this user, so a folder that is not private (0700, this user's,
    not a symlink) is refused. (``$NETFLIX_ELT_WARM_DBT_DIR`` is no longer read: a folder
    shared by several homes is what this replaced.)"""
    chosen = folder
    if chosen is None:
        if home is None:
            raise ValueError("warm dbt: a server's folder is its home's (pass home=)")
        chosen = Path(home).resolve() / "warm-dbt"
    chosen = Path(chosen)
    if len(str(chosen / (_base_name(4_194_304) + ".sock"))) > SOCKET_PATH_MAX:
        digest = hashlib.sha256(str(chosen.resolve()).encode()).hexdigest()[:16]
        chosen = Path(tempfile.gettempdir()) / f"nfx-wdbt-{os.getuid()}-{digest}"
    chosen.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(chosen)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"warm dbt: {chosen} must be a folder of this user's with mode 0700")
    return chosen


def _base_name(owner_pid: int) -> str:
    """A server's files: ``server-<owner pid>-<random>.{sock,pid,log}`` (a process may own several)."""
    return f"server-{owner_pid}-{secrets.token_hex(3)}"


class WarmDbtServer:
    """A warm dbt server owned by this process, started now (``preload``: modules to import up
    front, e.g. the adapter; ``saved_parse``: a project's ``target/partial_parse.msgpack``, for
    the optional warm-up in netflix_elt/warm_dbt/private_hooks.py). ``env()`` holds what a dbt
    invocation needs to reach it; ``stop()`` ends it and removes its files. It also ends, and
    removes its files, if this process dies first."""

    def __init__(self, real_executable: str, preload: list[str] | None = None, home: str | Path | None = None,
                 folder: str | Path | None = None, saved_parse: Path | None = None):
        if not supported():
            raise OSError("warm dbt needs fork and Unix sockets (POSIX); run dbt cold instead")
        self.real_executable = real_executable
        self.folder = servers_folder(home, folder)
        remove_stale(self.folder)
        self.owner = os.getpid()
        self.base = self.folder / _base_name(self.owner)
        self.socket_path = self.base.with_suffix(".sock")
        self.pid_path = self.base.with_suffix(".pid")
        self.log_path = self.base.with_suffix(".log")
        self.process = self._start(preload or [], saved_parse)

    def _start(self, preload: list[str], saved_parse: Path | None) -> subprocess.Popen:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # Listening before the server process exists: a client never finds no socket.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(str(self.socket_path))
                listener.listen(64)
                process = subprocess.Popen(
                    [sys.executable, "-m", "netflix_elt.warm_dbt.server", str(listener.fileno()), str(os.getpid()),
                     str(saved_parse or "-"), *preload],
                    pass_fds=[listener.fileno()],
                    # No terminal, pipe or folder of the owner's: a caller reading the owner's
                    # output to its end does not wait for the server, and Ctrl-C in the
                    # terminal reaches the owner, which stops it.
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    cwd=Path(__file__).parents[2],  # where this netflix_elt package is found
                    start_new_session=True,
                )
        finally:
            os.close(log)
        self.pid_path.write_text(f"{process.pid} {os.getpid()}\n")
        return process

    def wait_ready(self, timeout: float = 120) -> None:
        """Wait until the server has imported dbt (and warmed up): for benchmarks and tests."""
        deadline = time.monotonic() + timeout
        while "warm dbt: ready" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"warm dbt server not ready: {self.log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: str(self.socket_path), EXECUTABLE_ENV: self.real_executable}

    def stop(self) -> None:
        """Stop the server (and any dbt it forked that is still running), and remove its files."""
        _terminate(self.process)
        _remove_files(self.base)


def server_for_project(project_dir: str | Path, home: str | Path, profiles_dir: str | Path | None = None,
                       profile: str | None = None, target: str | None = None) -> WarmDbtServer:
    """A new warm dbt server owned by this process, for a dbt project's target: the target's
    adapter preloaded, its saved parse handed over for the warm-up."""
    preload = adapter_modules(Path(project_dir), Path(profiles_dir or project_dir), profile, target)
    return WarmDbtServer(dbt_executable(), preload, home=home, saved_parse=saved_parse_path(project_dir))


@contextlib.contextmanager
def owned_server(project_dir: str | Path, home: str | Path, target: str | None = None):
    """For a command's lifetime: a warm dbt server, named in this process's environment (so
    this process's runs and its child processes' find it), stopped and unnamed at the end.
    Yields None (dbt runs cold) where warm dbt is not supported."""
    if not supported():
        yield None
        return
    server = server_for_project(project_dir, home, target=target)
    saved = {name: os.environ.get(name) for name in server.env()}
    os.environ.update(server.env())
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stop_servers(folder: str | Path) -> None:
    """Stop every warm dbt server whose files are in ``folder`` and remove their files (a
    clean-up for callers that want to be sure; servers stop with their owners anyway)."""
    folder = Path(folder)
    for pid_file in folder.glob("server-*.pid"):
        server, _owner = _read_pids(pid_file)
        if server is not None and _is_server(server):
            _terminate_pid(server)
        _remove_files(pid_file.with_suffix(""))


def remove_stale(folder: Path) -> list[int]:
    """Remove the files of servers whose owner is gone (a killed owner's server follows it
    within a second; one still there is stopped). Returns the owners' pids."""
    removed = []
    for pid_file in folder.glob("server-*.pid"):
        server, owner = _read_pids(pid_file)
        if owner is None:
            with contextlib.suppress(ValueError, IndexError):
                owner = int(pid_file.stem.split("-")[1])
        if owner is not None and _running(owner) and (owner != os.getpid() or server is not None and _running(server)):
            continue  # a live command's (this process's own, if it is running)
        if server is not None and _is_server(server):
            _terminate_pid(server)
        _remove_files(pid_file.with_suffix(""))
        if owner is not None:
            removed.append(owner)
    return removed


def _remove_files(base: Path) -> None:
    for suffix in (".sock", ".pid", ".log"):
        base.with_suffix(suffix).unlink(missing_ok=True)


def _read_pids(pid_file: Path) -> tuple[int | None, int | None]:
    try:
        server, owner = (int(word) for word in pid_file.read_text().split())
        return server, owner
    except (OSError, ValueError):
        return None, None


def _terminate(process: subprocess.Popen) -> None:
    """SIGTERM our server, SIGKILL if it is still there after 5 s; reap it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _terminate_pid(pid: int) -> None:
    """The same for a server that is not our child."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _running(pid):
            time.sleep(0.05)
        if not _running(pid):
            return


def _is_server(pid: int) -> bool:
    """Is ``pid`` a warm dbt server (and not another process that has reused a dead one's pid)?"""
    try:
        return b"netflix_elt.warm_dbt.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): trust the pid file
        return _running(pid)


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): alive as far as we can tell
