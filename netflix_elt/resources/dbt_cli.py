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

Also: every invocation hands its fresh ``partial_parse.msgpack`` back to the project's
``target/`` (dagster-dbt copies it from there into each invocation's target folder), so only
the first invocation after a change of project, profile or environment parses the whole
project (~2.5 s); the others parse nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path

from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging import version

PARTIAL_PARSE_FILE = "partial_parse.msgpack"


class LeanDbtCliResource(DbtCliResource):
    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(package_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ARG002 - dagster-dbt's signature
        return None  # dagster-dbt then streams events exactly as before, without table metadata


def keep_partial_parse(invocation: DbtCliInvocation, project_dir: Path) -> None:
    """Make this invocation's parse the one the next invocation starts from (atomic replace)."""
    fresh = Path(invocation.target_path) / PARTIAL_PARSE_FILE
    if not fresh.exists():
        return
    target = Path(project_dir) / "target"
    target.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".partial_parse-")
    os.close(fd)
    shutil.copyfile(fresh, tmp)
    os.replace(tmp, target / PARTIAL_PARSE_FILE)
