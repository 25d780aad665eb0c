"""Warm dbt: a run's dbt invocations forked from one process that has already imported dbt.

Every dbt invocation is a new process, and on a 2-core machine ~2 s of each one goes to
importing dbt and its adapter and to the one-time set-up of its first command, before any
model runs. A full run makes three invocations and a new month of ratings two (see
netflix_elt/assets/dbt.py), so that start-up was the largest fixed cost left in both.

dagster-dbt is unchanged: it still starts a process per invocation and streams its JSON
logs. That process is ``netflix_elt/warm_dbt/dbt``, a small stdlib client; when the run has a
server (``WarmDbtServer``, started by the dbt resource when the run begins, so dbt imports
while extract and load run), the client has it fork a dbt that takes over the client's
stdin/stdout/stderr, environment, working directory and arguments. Without a server it
becomes the real dbt, so correctness never depends on one.

The same trick as Ruby's Spring or Android's zygote, kept small: one server per run worker,
private to its user (a 0700 temporary folder), gone when the run ends or its worker dies.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

CLIENT = Path(__file__).with_name("dbt")
SOCKET_ENV = "NETFLIX_ELT_WARM_DBT_SOCKET"  # names shared with the client (it imports nothing)
EXECUTABLE_ENV = "NETFLIX_ELT_DBT_EXECUTABLE"


class WarmDbtServer:
    """One server process; ``env()`` holds what a dbt invocation needs to reach it."""

    def __init__(self, real_executable: str, preload: list[str] | None = None):
        self.real_executable = real_executable
        self.folder = Path(tempfile.mkdtemp(prefix="netflix-elt-dbt-"))  # 0700: this user only
        self.socket_path = self.folder / "server.sock"
        try:
            # Listening before the server process exists: a client never finds no socket.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(str(self.socket_path))
                listener.listen(64)
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "netflix_elt.warm_dbt.server", str(listener.fileno()), str(os.getpid()),
                     *(preload or [])],
                    pass_fds=[listener.fileno()],
                    stdin=subprocess.DEVNULL,
                    # A terminal's Ctrl-C reaches the run and, through the client, the dbt it
                    # started; the server is stopped by stop() or by noticing its parent is gone.
                    start_new_session=True,
                )
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: str(self.socket_path), EXECUTABLE_ENV: self.real_executable}

    def stop(self) -> None:
        """Stop the server (a dbt it forked and still running finishes on its own)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
