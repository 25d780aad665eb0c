"""dagster-dbt's ``DbtCliResource``, minus two start-up costs this project never uses.

Measured per run worker on a 2-core machine (dbt-core 1.11, dagster-dbt 0.29): ``dbt
--version`` in a subprocess (~2.4 s, once per process) and an in-process dbt adapter built
before every invocation (~1.7 s each) for metadata the assets never fetch. Skipping them
overrides private dagster-dbt members, so that lives in netflix_elt/warm_dbt/private_hooks.py
(the ``dagster_dbt`` hook: checked versions, a stock fallback, tests that fail when an upgrade
changes them); this resource only inherits from what it returns.

With ``warm_start`` (on unless NETFLIX_ELT_WARM_DBT=0, see resources/factory.py) its
executable is the warm dbt client (netflix_elt/warm_dbt/dbt): when the command that started
this process owns a warm dbt server (``netflix-elt run``, ``netflix-elt dev``; its socket is
named in the environment), every invocation is forked from that server, which has already
imported dbt and its adapter (~2 s less per invocation); without one, the client becomes the
real dbt. The resource never starts a server itself: a server lives exactly as long as the
command that owns it.

Two dbt outputs nothing here reads are trimmed by default (each stays a setting: an
environment variable of the same name wins):

- ``DBT_WRITE_JSON=false``: no ``manifest.json`` (written twice per ``build``, 1.2 MB),
  ``run_results.json`` or ``graph.gpickle`` per invocation. dagster-dbt turns dbt's structured
  stdout into events, so each node's status, timing and failure is in Dagster's event log;
  the project's own ``target/manifest.json`` (from ``netflix-elt prepare``) is untouched.
- ``DBT_LOG_LEVEL_FILE=info``: each invocation's ``dbt.log`` keeps what the console shows
  (every node started and finished, errors, the thread count), not dbt's debug events (every
  SQL statement and connection, ~1,000 JSON lines per month step). The SQL dbt ran is still
  in the invocation's ``run/`` folder.

Together: a new month's two steps ~0.45 s sooner (4.65 s -> 4.2 s from the tick to fresh
marts, ml-25m, three runs each).

Also: every invocation hands its fresh ``partial_parse.msgpack`` back to the project's
``target/`` (dagster-dbt copies it from there into each invocation's target folder), so only
the first invocation after a change of project, profile or environment parses the whole
project (~2.5 s); the others parse nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Mapping

from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from pydantic import Field

from netflix_elt.warm_dbt import (CLIENT, EXECUTABLE_ENV, INVOCATION_ENV_FILE, PARTIAL_PARSE_FILE, SOCKET_ENV,
                                  dbt_executable, saved_parse_path, supported)
from netflix_elt.warm_dbt.private_hooks import dagster_dbt_base

# dbt settings for every invocation unless the environment sets them (see the module's docstring)
DBT_DEFAULTS = {"DBT_WRITE_JSON": "false", "DBT_LOG_LEVEL_FILE": "info"}


class LeanDbtCliResource(dagster_dbt_base()):
    """Build it with ``lean_dbt_resource``. Its executable is the client netflix_elt/warm_dbt/dbt
    (where the OS runs it), which forks dbt from the owning command's warm server when
    ``warm_start`` allows and one runs, and otherwise becomes the real dbt."""

    warm_start: bool = Field(
        default=False,
        description="Fork every dbt invocation from the warm dbt server of the command that started this process, if any.",
    )
    profile_env: dict[str, str] = Field(
        default_factory=dict,
        description="The values profiles.yml reads (Settings.dbt_env: no secrets), handed to every invocation.",
    )
    idle_timeout_s: int = Field(
        default=0,
        description="Stop a dbt invocation that prints nothing for this long (0: never); see assets/dbt_watchdog.py.",
    )

    def setup_for_execution(self, context) -> None:
        super().setup_for_execution(context)
        # dbt-duckdb creates the warehouse file but not its folder: on a fresh home a run that
        # starts with dbt (the UI's "Materialize" on a seed) makes it here, at run time.
        home = self.profile_env.get("NETFLIX_ELT_HOME")
        if home and self.target == "local":
            Path(home).mkdir(parents=True, exist_ok=True)

    def invocation_env(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """What one invocation's dbt process gets on top of this process's environment: the
        trimmed outputs' defaults, the profile's values, the real dbt for the client, and the
        invocation's own values (the ratings window)."""
        values = {name: value for name, value in DBT_DEFAULTS.items() if name not in os.environ}
        values.update(self.profile_env)
        values[EXECUTABLE_ENV] = os.environ.get(EXECUTABLE_ENV) or dbt_executable()
        if not self.warm_start:
            values[SOCKET_ENV] = ""  # cold, even where this process names a server
        values.update(env or {})
        return values

    def cli(self, args, *, env: Mapping[str, str] | None = None, target_path: Path | None = None,
            context=None, **kwargs) -> DbtCliInvocation:
        """``DbtCliResource.cli``, plus ``env``: values for this invocation's dbt process only.

        dagster-dbt starts dbt with a copy of this process's environment and takes no other
        (0.29). So the values go in a file in the invocation's own target folder (a ``cli``
        parameter), which the client reads into its process before it becomes or forks dbt:
        nothing is written to this process's environment, so no other invocation (another
        thread, another step) can see them, and dbt sees plain environment variables, which
        keep its saved parse valid (a new --vars value would make it re-parse the project).
        """
        values = self.invocation_env(env)
        if not passes_env_by_file(self.dbt_executable):
            # Only where the client is not the executable (Windows: no POSIX scripts; stock
            # dagster-dbt, see client_can_be_executable): the values are in this process's
            # environment while dagster-dbt copies it, then restored.
            with environment(values):
                return super().cli(args, target_path=target_path, context=context, **kwargs)
        target_path = Path(target_path) if target_path else unique_target_path(context)
        folder = target_path if target_path.is_absolute() else Path(self.project_dir) / target_path
        folder.mkdir(parents=True, exist_ok=True)
        (folder / INVOCATION_ENV_FILE).write_text(json.dumps(values, sort_keys=True))
        return super().cli(args, target_path=target_path, context=context, **kwargs)


def client_can_be_executable() -> bool:
    """Where the OS runs the client, and dagster-dbt will not probe the executable on its own:
    stock dagster-dbt (its private hook off, NETFLIX_ELT_PRIVATE_HOOKS) first runs
    ``<executable> --version`` with nothing but this process's environment, in which the client
    cannot know where the real dbt is; there the real dbt is the executable."""
    from dagster_dbt import DbtCliResource

    return supported() and LeanDbtCliResource.__bases__[0] is not DbtCliResource


def passes_env_by_file(executable: str) -> bool:
    return Path(executable) == CLIENT


def unique_target_path(context) -> Path:
    """A target folder of its own for one invocation, named as dagster-dbt names them
    (``<op>-<run id>-<random>`` under DBT_TARGET_PATH or ``target``)."""
    name = uuid.uuid4().hex[:7]
    if context is not None:
        name = f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{name}"
    return Path(os.environ.get("DBT_TARGET_PATH") or "target") / name


def lean_dbt_resource(project_dir: Path, target: str, warm_start: bool = True,
                      profile_env: Mapping[str, str] | None = None, idle_timeout_s: int = 0) -> LeanDbtCliResource:
    # The client (a POSIX script) is the executable wherever it can be, warm or cold: it is what
    # hands each invocation its own values (LeanDbtCliResource.cli).
    client = client_can_be_executable()
    return LeanDbtCliResource(
        project_dir=str(project_dir), profiles_dir=str(project_dir), target=target,
        warm_start=warm_start and client, profile_env=dict(profile_env or {}), idle_timeout_s=idle_timeout_s,
        dbt_executable=str(CLIENT) if client else dbt_executable(),
    )


@contextlib.contextmanager
def environment(values: Mapping[str, str]):
    """Set variables for a dbt subprocess about to start (dagster-dbt passes it os.environ),
    then restore them. Only where the client cannot carry them (see LeanDbtCliResource.cli)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def keep_partial_parse(invocation: DbtCliInvocation, project_dir: Path) -> None:
    """Make this invocation's parse the one the next invocation starts from (atomic replace)."""
    fresh = Path(invocation.target_path) / PARTIAL_PARSE_FILE
    if not fresh.exists():
        return
    saved = saved_parse_path(project_dir)
    saved.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=saved.parent, prefix=".partial_parse-")
    os.close(fd)
    shutil.copyfile(fresh, tmp)
    os.replace(tmp, saved)
