"""The warm dbt server: dbt imported once, every invocation forked from it.

    python -m netflix_elt.warm_dbt.server LISTENING_FD IDLE_SECONDS SAVED_PARSE [MODULE ...]

A dbt process spends ~2 s of every invocation before it touches a model: importing dbt and
its adapter (~1.4 s on a 2-core machine) and the imports and one-time set-up of its first
command. This server pays that once for many runs: it imports dbt (and MODULEs, e.g. the
adapter), builds the schemas dbt validates its configuration against, and reads a saved
parse (SAVED_PARSE, a ``partial_parse.msgpack``; ``-`` for none) to build what reading one
and running its macros builds; then it forks one child per connection. The child takes the
client's stdin, stdout, stderr, working directory, environment and arguments, runs ``dbt``
exactly as the console script would, and runs the interpreter's exit handlers before it
exits (dbt-duckdb's one closes the warehouse file before the client sees the end of the
connection).

Fork safety: the server never opens a connection, starts a thread or reads the warehouse;
it only imports and reads one file. Each child is a copy of that clean, single-threaded state.

The protocol (over a Unix socket in a private 0700 folder, see netflix_elt/warm_dbt/__init__.py):
- client -> server: 8-byte big-endian length, with the client's fds 0, 1, 2 attached, then
  that many bytes of JSON ``{"argv": [...], "cwd": "...", "env": {...}}``; a connection that
  sends nothing is a starter checking that the server is there;
- child -> client: ``pid <n>\\n`` once it owns the fds, ``exit <code>\\n`` when dbt returns;
  then the connection closes when the child process has fully exited (after its exit
  handlers, see ``exit_without_teardown``).

The server exits after IDLE_SECONDS without a connection (see ``retire``) or on SIGTERM.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import struct
import sys
import traceback
from typing import NoReturn

from netflix_elt.warm_dbt import lock_path, locked, pid_path  # the package is imported first anyway, by -m

HEADER = struct.Struct(">Q")


def main(argv: list[str]) -> int:
    fd, idle_s, saved_parse, *preload = argv
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # stop() ends it, whatever its starter ignored
    # The starter bound and listens on the socket before starting this process, so a client
    # that connects while dbt is still importing waits in the backlog (never slower than a
    # cold dbt of its own) instead of finding no socket and falling back.
    listener = socket.socket(fileno=int(fd))
    sock_path = listener.getsockname()
    prepare(preload, None if saved_parse == "-" else saved_parse)
    # Children are reaped by the kernel; each reports its exit code to its own client.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener.settimeout(float(idle_s))
    while True:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            conn = retire(listener, sock_path)
            if conn is None:
                return 0
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # dbt may wait on its own subprocesses
            # Ctrl-C (dagster-dbt's cancel, forwarded by the client) interrupts dbt, even when the
            # run was started from a shell that ignores SIGINT in background jobs: a Python
            # started with SIGINT ignored keeps ignoring it, and so would this fork.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = 1
            try:
                code = serve_one(conn)
            except BaseException:
                traceback.print_exc()
            exit_without_teardown(code)
        conn.close()


def prepare(preload: list[str], saved_parse: str | None = None) -> None:
    """The state every child starts from: dbt and ``preload`` imported, warmed up (see
    ``warm_up``), and frozen.

    Frozen: all of it (~145,000 objects: dbt's modules, classes, schemas, compiled macros)
    lives as long as any child, so the cyclic garbage collector is told never to scan it
    again, in the server or in a child (``gc.freeze``, Python's advice for a process that
    forks without exec). Each child's collections then walk only what its dbt builds: a
    month's two dbt steps ~0.35 s sooner.
    """
    for module in ["dbt.cli.main", *preload]:
        importlib.import_module(module)
    warm_up(preload, saved_parse)
    gc.collect()  # the saved parse read for the warm-up goes before the rest is frozen
    gc.freeze()


def retire(listener: socket.socket, sock_path: str) -> socket.socket | None:
    """Idle for the whole timeout: leave (None), unless a client came in the meantime.

    Under the starters' lock, so no starter takes this server for alive while it goes: the
    socket file and pid file are removed before the lock is released. A client that connected
    just before and is still in the backlog is served; one connecting after the socket file is
    gone finds none and starts its dbt cold.
    """
    idle_s = listener.gettimeout()
    with locked(lock_path(sock_path)):
        listener.setblocking(False)
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            for path in (sock_path, pid_path(sock_path)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            listener.close()
            return None
        listener.settimeout(idle_s)
        conn.setblocking(True)
        return conn


def warm_up(preload: list[str], saved_parse: str | None = None) -> None:
    """Build, once, what every dbt invocation builds before its first model:

    - the JSON schemas dbt validates its flags, project, packages, selectors and profile
      against (each class caches its ``json_schema()``; ~0.25 s per invocation otherwise), the
      credentials' of each preloaded adapter included;
    - what reading a saved parse builds, see ``load_saved_parse``.
    """
    from dbt.contracts.project import Configuration, PackageConfig, ProfileConfig, Project, ProjectFlags
    from dbt.contracts.selection import SelectorFile

    classes = [ProjectFlags, ProfileConfig, Project, PackageConfig, SelectorFile, Configuration]
    classes += [sys.modules[m].Plugin.credentials for m in preload if hasattr(sys.modules[m], "Plugin")]
    for cls in classes:
        cls.json_schema()
    if saved_parse is not None:
        load_saved_parse(saved_parse)


def load_saved_parse(saved_parse: str) -> None:
    """Read and write a saved parse (``partial_parse.msgpack``) as dbt does, compile its
    macros' Jinja templates, and drop the result. What stays is what dbt would otherwise
    build in every invocation, the first time it needs it (~0.25 s each on a 2-core machine):

    - mashumaro's (de)serializer of each manifest class, compiled on first use;
    - dbt's cache of compiled macro templates (``dbt_common.clients.jinja.template_cache``,
      keyed by each macro's source text: a macro changed since is compiled afresh).

    Any project's parse will do: the classes are dbt's, and most macros are dbt's and the
    adapter's. A parse that cannot be read (none yet, another dbt version) is skipped with the
    reason in the server's log; each invocation then builds these itself, as it would without
    a server.
    """
    try:  # dbt's own reader and writer, and its template cache: a dbt that renamed them is skipped
        from dbt.contracts.graph.manifest import Manifest
        from dbt.parser.manifest import extended_mashumaro_encoder, extended_mashumuro_decoder  # sic: dbt's spelling
        from dbt_common.clients.jinja import template_cache

        with open(saved_parse, "rb") as saved:
            manifest = Manifest.from_msgpack(saved.read(), decoder=extended_mashumuro_decoder)
        manifest.to_msgpack(extended_mashumaro_encoder)
    except Exception as error:  # noqa: BLE001 - a warm-up: dbt reports a bad parse when it reads one
        print(f"warm dbt: saved parse {saved_parse} not used for the warm-up: {error!r}", file=sys.stderr, flush=True)
        return
    for macro in manifest.macros.values():
        with contextlib.suppress(Exception):  # a macro that does not compile fails where dbt uses it
            template_cache.get_node_template(macro)


def _receive(conn: socket.socket) -> tuple[dict, list[int]] | None:
    """The client's request, or None for a starter's check (a connection that sent nothing)."""
    data, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
    if not data and not fds:
        return None
    while len(data) < HEADER.size:
        more = conn.recv(HEADER.size - len(data))
        if not more:
            raise ConnectionError("client closed the connection mid-request")
        data += more
    (length,) = HEADER.unpack(data)
    body = bytearray()
    while len(body) < length:
        more = conn.recv(min(1 << 16, length - len(body)))
        if not more:
            raise ConnectionError("client closed the connection mid-request")
        body += more
    if len(fds) != 3:
        raise ConnectionError(f"expected the client's stdin, stdout and stderr, got {len(fds)} fds")
    return json.loads(body), fds


def serve_one(conn: socket.socket) -> int:
    """In the forked child: become the client's dbt process and run one invocation."""
    conn.settimeout(None)
    received = _receive(conn)
    if received is None:
        return 0
    request, fds = received
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    # The console script runs unbuffered under dagster-dbt (PYTHONUNBUFFERED): events reach
    # the run as dbt emits them. Streams inherited from the server need telling.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)
    # A copy of the connection that only the kernel closes, as this process ends: the client
    # sees the end of the connection only when this dbt is gone, not when Python's shutdown
    # collects the socket object.
    os.set_inheritable(os.dup(conn.fileno()), False)
    conn.sendall(f"pid {os.getpid()}\n".encode())
    code = run_dbt(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(f"exit {code}\n".encode())
    return code


def exit_without_teardown(code: int) -> NoReturn:
    """End the forked dbt as its interpreter's shutdown would, minus the teardown.

    The exit handlers do what matters: dbt-duckdb closes (and checkpoints) the warehouse,
    logging flushes dbt's log file, multiprocessing releases what it holds. What shutdown does
    after them, freeing dbt's thousands of modules and objects one by one, cost ~0.4 s of
    every invocation (measured: 0.50 s from dbt's last log line to the client's exit, 0.13 s
    without it); the OS frees the process's memory at once.
    """
    atexit._run_exitfuncs()  # CPython's own shutdown step (registration order reversed, errors printed)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run_dbt(args: list[str]) -> int:
    """What the ``dbt`` console script does (``sys.exit(cli())``), returning the exit code."""
    from dbt.cli.main import cli

    try:
        cli.main(args=args, prog_name="dbt")
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        print(stop.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
