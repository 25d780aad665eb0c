"""dagster-dbt's ``DbtCliResource``, minus two start-up costs this project never uses.

Measured per run worker on a 2-core machine (dbt-core 1.11, dagster-dbt 0.29):

- ``dbt --version`` in a subprocess (~2.4 s, once per process), only to learn whether the
  executable is dbt Core or the Fusion engine. dbt here is the dbt-core installed beside this
  interpreter, so its package version answers the same question.
- an in-process dbt adapter, profile and macro manifest built before every invocation (~1.7 s
  each), only used by ``fetch_row_counts()`` / ``fetch_column_metadata()``. The assets do not
  call those, and with DuckDB the adapter would open the warehouse file read-only next to the
  dbt subprocess that writes it.

Both are private hooks of dagster-dbt (pinned in constraints.txt); netflix_elt_tests checks
that they still exist, so an upgrade that renames them fails a test instead of silently
bringing the cost back.

And one it does not pay every time: with ``warm_start`` (on unless NETFLIX_ELT_WARM_DBT=0, see
resources/factory.py) each run finds the machine's warm dbt server as it begins, or starts it
(netflix_elt/warm_dbt), so every invocation is forked from a process that has already imported
dbt and its adapter (~2 s less per invocation, measured the same way). The server outlives the
run and exits when it has been idle for a while.

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
import os
import shutil
import tempfile
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Mapping

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version
from pydantic import Field, PrivateAttr

from netflix_elt.warm_dbt import (
    CLIENT, EXECUTABLE_ENV, PARTIAL_PARSE_FILE, WarmDbtServer, dbt_executable, saved_parse_path, server_for_project,
)

# dbt settings for every invocation unless the environment sets them (see the module's docstring)
DBT_DEFAULTS = {"DBT_WRITE_JSON": "false", "DBT_LOG_LEVEL_FILE": "info"}


class LeanDbtCliResource(DbtCliResource):
    """Build it with ``lean_dbt_resource``: with ``warm_start`` its executable is the warm
    client (netflix_elt/warm_dbt/dbt), which becomes the real dbt when no server runs."""

    warm_start: bool = Field(
        default=False, description="Fork every dbt invocation of a run from one process that has already imported dbt."
    )
    profile_env: dict[str, str] = Field(
        default_factory=dict,
        description="The values profiles.yml reads (Settings.dbt_env: no secrets), handed to every invocation.",
    )
    _warm: WarmDbtServer | None = PrivateAttr(default=None)

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(package_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
        return None  # dagster-dbt then streams events exactly as before, without table metadata

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        if self.warm_start:  # at the start of the run: a new server imports while extract and load run
            self._warm = server_for_project(self.project_dir, self.profiles_dir, self.profile, self.target)

    def cli(self, args, **kwargs) -> DbtCliInvocation:
        # dagster-dbt hands the dbt process this process's environment as it starts it.
        env = self._warm.env() if self._warm is not None else {EXECUTABLE_ENV: dbt_executable()}
        defaults = {name: value for name, value in DBT_DEFAULTS.items() if name not in os.environ}
        with environment({**defaults, **self.profile_env, **env}):
            return super().cli(args, **kwargs)


def lean_dbt_resource(project_dir: Path, target: str, warm_start: bool = True,
                      profile_env: Mapping[str, str] | None = None) -> LeanDbtCliResource:
    return LeanDbtCliResource(
        project_dir=str(project_dir), profiles_dir=str(project_dir), target=target, warm_start=warm_start,
        profile_env=dict(profile_env or {}),
        dbt_executable=str(CLIENT) if warm_start else dbt_executable(),
    )


@contextlib.contextmanager
def environment(values: Mapping[str, str]):
    """Set variables for a dbt subprocess about to start (dagster-dbt passes it os.environ),
    then restore them."""
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
