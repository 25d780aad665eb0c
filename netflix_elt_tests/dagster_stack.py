"""The whole Dagster stack a user gets from ``netflix-elt dev``: webserver, daemon, code server.

Tests that drive the pipeline the way a user does (the UI's GraphQL calls, a browser on the
UI) start it with ``running_stack(home)``::

    with running_stack(tmp_path / "home") as stack:
        data = stack.graphql("{ version }")

It is the real command (``<venv>/bin/netflix-elt dev --port <free port>``) over the home's own
Dagster instance (``<home>/dagster_home``), in a process group of its own, with its output in
``<home>/dagster-dev-<port>.log``. Entering waits until the webserver answers and the code
location ``netflix_elt`` is loaded; leaving stops the whole process group (webserver, daemon,
code servers, run workers): SIGTERM, a grace period, then SIGKILL for stragglers. Nothing it
started outlives the block.

The warm dbt servers are the suite's (``conftest.warm_dbt_servers`` sets the folder in this
process's environment; it is passed through explicitly), so they are stopped with the suite.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from netflix_elt.settings import REPO_ROOT
from netflix_elt.warm_dbt import FOLDER_ENV

LOCATION = "netflix_elt"
REPOSITORY = "__repository__"
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 20.0

WORKSPACE_QUERY = """
query StackWorkspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


class StackError(RuntimeError):
    """The stack did not start, or it answered a GraphQL request with errors."""


class GraphQLError(StackError):
    def __init__(self, errors: list, query: str, variables: dict | None):
        self.errors = errors
        messages = "; ".join(str(e.get("message", e)) for e in errors)
        super().__init__(f"GraphQL errors: {messages}\nvariables: {json.dumps(variables)[:2000]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_bin() -> Path:
    """The bin folder of the interpreter running the tests (the project's venv)."""
    return Path(sys.executable).parent


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    url: str
    home: Path
    log: Path
    process: subprocess.Popen = field(repr=False)
    timeout: float = 60.0

    def graphql(self, query: str, variables: dict | None = None, timeout: float | None = None) -> dict:
        """POST one GraphQL request to the webserver (as the UI does, on ``/graphql``) and return
        its ``data``; raise ``GraphQLError`` when the answer has ``errors``."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # GraphQL validation errors come back as HTTP 400
            text = exc.read().decode(errors="replace")
            try:
                payload = json.loads(text)
            except ValueError:
                raise StackError(f"HTTP {exc.code} from {self.url}/graphql: {text[:2000]}") from exc
        if payload.get("errors"):
            raise GraphQLError(payload["errors"], query, variables)
        return payload["data"]

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log, lines)


def _location_state(stack: Stack) -> tuple[str | None, str | None]:
    """(loadStatus, load error message) of our code location, or (None, why) if not listed yet."""
    data = stack.graphql(WORKSPACE_QUERY, timeout=10)
    workspace = data["workspaceOrError"]
    if workspace["__typename"] != "Workspace":
        return None, workspace.get("message")
    for entry in workspace["locationEntries"]:
        if entry["name"] == LOCATION:
            located = entry["locationOrLoadError"] or {}
            error = located.get("message") if located.get("__typename") == "PythonError" else None
            return entry["loadStatus"], error
    return None, f"no location {LOCATION!r} yet"


def _wait_until_loaded(stack: Stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "not started"
    while time.monotonic() < deadline:
        if not stack.alive():
            raise StackError(
                f"`netflix-elt dev` exited with {stack.process.returncode} before the code location loaded\n"
                f"--- {stack.log} (tail) ---\n{stack.log_tail()}"
            )
        try:
            status, error = _location_state(stack)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, StackError) as exc:
            last = f"webserver not answering: {exc}"
        except http.client.HTTPException as exc:  # not HTTP/1.1: something else holds the port
            last = f"the port is answered by something other than the webserver: {exc!r}"
        else:
            if error and status == "LOADED":
                raise StackError(f"code location {LOCATION!r} failed to load: {error}\n"
                                 f"--- {stack.log} (tail) ---\n{stack.log_tail()}")
            if status == "LOADED":
                return
            last = f"location {LOCATION!r}: {status} {error or ''}"
        time.sleep(0.5)
    raise StackError(f"the stack was not ready within {timeout:.0f} s ({last})\n"
                     f"--- {stack.log} (tail) ---\n{stack.log_tail()}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid`` (from /proc), zombies included."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry.name))
    return members


def stop_group(process: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM the process group ``process`` leads, wait for it (and every member) to end,
    SIGKILL whatever is left. ``dagster dev`` forwards the signal to its webserver, daemon and
    code servers and waits for them; run workers are in the same group."""
    pgid = process.pid  # start_new_session=True: the leader's pid is the group id
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        process.poll()  # reap the leader so it does not stay in the group as a zombie
        if not _group_alive(pgid):
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    # Members reparented to init are reaped by it; give them a moment, then insist.
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.5)
        left = _group_members(pgid)
        if left:
            raise StackError(f"processes of the stack's group {pgid} survived SIGKILL: {left}")


def settings_env(home: Path, env: dict | None = None) -> dict:
    """The environment the stack runs with, for other ``netflix-elt`` commands over the same
    home (``run``, ``deliver``): the embedded default, the suite's warm dbt servers, ``env``."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("NETFLIX_ELT_") or k.startswith("NETFLIX_ELT_WARM_DBT")}
    full_env["NETFLIX_ELT_HOME"] = str(home)
    if os.environ.get(FOLDER_ENV):  # the suite's warm dbt servers (conftest.warm_dbt_servers)
        full_env[FOLDER_ENV] = os.environ[FOLDER_ENV]
    full_env.update(env or {})
    full_env.pop("DAGSTER_HOME", None)  # `netflix-elt` sets it under NETFLIX_ELT_HOME
    return full_env


def netflix_elt(home: Path, *args: str, env: dict | None = None, timeout: float = 600) -> str:
    """Run ``<venv>/bin/netflix-elt <args>`` over ``home`` as a user would (e.g. ``run``,
    ``deliver ratings --month 2026-11``); returns its output, raises with it on failure."""
    argv = [str(venv_bin() / "netflix-elt"), *args]
    done = subprocess.run(argv, cwd=REPO_ROOT, env=settings_env(home, env), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    output = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-60:])
        raise StackError(f"`netflix-elt {' '.join(args)}` exited with {done.returncode}:\n{tail}")
    return output


@contextmanager
def running_stack(home: Path, env: dict | None = None, port: int | None = None,
                  timeout: float = START_TIMEOUT_S) -> Iterator[Stack]:
    """``netflix-elt dev`` over ``home`` (NETFLIX_ELT_HOME), ready to take GraphQL requests.

    The environment is this process's minus its ``NETFLIX_ELT_*`` settings (except the warm
    dbt ones), plus ``NETFLIX_ELT_HOME=home``, plus ``env``: the embedded default unless
    ``env`` says otherwise. Use ``settings_env(home, env)`` for other commands over the same home.
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    full_env = settings_env(home, env)
    argv = [str(venv_bin() / "netflix-elt"), "dev", "--port", str(port)]
    log = home / f"dagster-dev-{port}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, env=full_env, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    stack = Stack(url=f"http://127.0.0.1:{port}", home=home, log=log, process=process)
    try:
        _wait_until_loaded(stack, timeout)
        yield stack
    finally:
        stop_group(process)


def built_home(tmp_path_factory, name: str) -> Path:
    """A fresh home after `netflix-elt run`: every asset materialized, the warehouse populated."""
    home = tmp_path_factory.mktemp(name) / "home"
    output = netflix_elt(home, "run", timeout=900)
    assert "netflix-elt run SUCCEEDED" in output, output[-3000:]
    return home
