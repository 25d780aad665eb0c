"""The warm dbt server: dbt imported once, every invocation forked from it.

    python -m netflix_elt.warm_dbt.server LISTENING_FD OWNER_PID SAVED_PARSE [MODULE ...]

A dbt process spends ~2 s of every invocation before it touches a model, most of it
importing dbt and its adapter. This server pays that once for its owner's lifetime: it loads
dbt's ``dbt`` console-script entry point (the documented way a program finds it) and MODULEs
(e.g. the adapter), then forks one child per connection. The child takes the client's stdin,
stdout, stderr, working directory, environment and arguments and runs the entry point exactly
as the ``dbt`` script would. That much uses public interfaces only (``importlib.metadata``,
``os.fork``, ``socket.send_fds``, click's ``Command.main``). The optional private speed-ups
(a warm-up from SAVED_PARSE, a frozen heap, a fork that skips the interpreter's teardown)
live in netflix_elt/warm_dbt/private_hooks.py and are applied only where it says so.

Fork safety: the server never opens a connection, starts a thread or reads the warehouse;
it only imports (and, with the warm-up, reads one file). Each child is a copy of that clean,
single-threaded state.

Lifetime: it exits on SIGTERM (its owner's ``stop()``), when its owner dies (Linux: the
kernel sends SIGTERM, ``PR_SET_PDEATHSIG``; anywhere: it checks every second that its parent
is still OWNER_PID), and removes its socket, pid and log files as it goes. A dbt it forked
gets SIGTERM when the server goes (Linux), so nothing outlives the owner.

The protocol (over a Unix socket in a private 0700 folder, see netflix_elt/warm_dbt/__init__.py):
- client -> server: 8-byte big-endian length, with the client's fds 0, 1, 2 attached, then
  that many bytes of JSON ``{"argv": [...], "cwd": "...", "env": {...}}``; a connection that
  sends nothing is ignored;
- child -> client: ``pid <n>\\n`` once it owns the fds, ``exit <code>\\n`` when dbt returns;
  then the connection closes when the child process has fully exited (after its exit
  handlers: dbt-duckdb's closes the warehouse file before the client returns).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib
import json
import os
import signal
import socket
import struct
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path

from netflix_elt.warm_dbt import POLL_S, private_hooks

HEADER = struct.Struct(">Q")
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send ``sig`` to this process when its parent dies (prctl(2)).
    False where that is not available (the owner poll still applies). Safe between fork and
    exec (``preexec_fn``) once ``_prctl()`` has been called before the fork."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


@functools.cache
def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # libc's, already loaded by this process
    except (OSError, AttributeError):
        return None


def main(argv: list[str]) -> int:
    fd, owner, saved_parse, *preload = argv
    owner = int(owner)
    me = os.getpid()
    listener = socket.socket(fileno=int(fd))
    sock_path = listener.getsockname()
    # The owner's stop(), or its death: leave through the finally below (files removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if os.environ.get("NETFLIX_ELT_WARM_DBT_NO_PDEATHSIG") != "1":  # a test of the poll alone
            die_with_parent()
        if os.getppid() != owner:  # the owner died before the line above
            return 0
        # The starter bound and listens on the socket before starting this process, so a client
        # that connects while dbt is still importing waits in the backlog.
        hooks = private_hooks.enabled()
        prepare(preload, None if saved_parse == "-" else saved_parse, hooks)
        print(f"warm dbt: ready (private hooks: {', '.join(sorted(hooks)) or 'none'})", file=sys.stderr, flush=True)
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
        listener.settimeout(POLL_S)
        while os.getppid() == owner:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            if os.fork() == 0:
                listener.close()
                child(conn, hooks)  # never returns
            conn.close()
        return 0
    finally:
        if os.getpid() == me:  # not in a forked dbt on its way out
            _remove_own_files(sock_path, me)


def child(conn: socket.socket, hooks: frozenset[str]):
    """In the forked process: become the client's dbt, then exit with its code."""
    die_with_parent()  # fork clears it: a dbt still running goes with the server
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)  # dbt may wait on its own subprocesses
    # Ctrl-C (dagster-dbt's cancel, forwarded by the client) interrupts dbt, even when the
    # server was started with SIGINT ignored (a background job of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 1
    try:
        code = serve_one(conn)
    except BaseException:  # noqa: BLE001 - reported to the client's stderr, then exit
        traceback.print_exc()
    if "fast_exit" in hooks:
        private_hooks.exit_fork(code)
    sys.exit(code)  # the interpreter's ordinary shutdown: exit handlers, then teardown


def _remove_own_files(sock_path: str, me: int) -> None:
    """The socket, pid and log file, if this server's (the pid file names its pid)."""
    base = Path(sock_path).with_suffix("")
    pid_file = base.with_suffix(".pid")
    with contextlib.suppress(OSError, ValueError, IndexError):
        if int(pid_file.read_text().split()[0]) != me:
            return
    for suffix in (".sock", ".pid", ".log"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(base.with_suffix(suffix))


def dbt_entry_point():
    """dbt's ``dbt`` console script, as installed (a click command)."""
    (script,) = entry_points(group="console_scripts", name="dbt")
    return script.load()


def prepare(preload: list[str], saved_parse: str | None = None, hooks: frozenset[str] = frozenset()) -> None:
    """The state every child starts from: dbt's entry point and ``preload`` imported; with the
    private hooks enabled, warmed up and frozen (netflix_elt/warm_dbt/private_hooks.py)."""
    dbt_entry_point()
    for module in preload:
        importlib.import_module(module)
    if "warm_up" in hooks:
        private_hooks.warm_up(preload, saved_parse)
    if "freeze" in hooks:
        private_hooks.freeze_heap()


def _receive(conn: socket.socket) -> tuple[dict, list[int]] | None:
    """The client's request, or None for a connection that sent nothing."""
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


def run_dbt(args: list[str]) -> int:
    """What the ``dbt`` console script does (``sys.exit(cli())``), returning the exit code."""
    cli = dbt_entry_point()
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
