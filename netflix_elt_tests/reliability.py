"""Helpers for the reliability tests: a real Dagster instance with its daemon, in a temp home.

``RealDagster`` writes the project's own ``dagster.yaml`` (``netflix_elt.instance``) into a
throwaway ``NETFLIX_ELT_HOME``, starts ``dagster-daemon run`` as a subprocess on a workspace
that loads ``netflix_elt.definitions`` (the daemon starts its own code server), and submits
runs to the run queue exactly the way the sensor daemon does (``submit_asset_run``), so the
queue, the run launcher, the run worker processes and the pools are all the real ones.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb

from netflix_elt.instance import ensure_dagster_home
from netflix_elt.settings import REPO_ROOT, Settings

LOCATION = "netflix_elt"


def elt_environment(settings: Settings) -> dict[str, str]:
    """What a code server / daemon of this home needs: the settings as environment variables."""
    return {
        "NETFLIX_ELT_HOME": str(settings.home),
        "NETFLIX_ELT_SOURCE": str(settings.source),
        "NETFLIX_ELT_SYNTHETIC_GENOME_TAGS": str(settings.synthetic_genome_tags),
        "DAGSTER_HOME": str(ensure_dagster_home(settings)),
        "PYTHONPATH": os.pathsep.join(p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p),
    }


def write_workspace(settings: Settings) -> Path:
    path = settings.home / "workspace.yaml"
    path.write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: netflix_elt.definitions\n"
        f"      location_name: {LOCATION}\n"
        f"      working_directory: {REPO_ROOT}\n"
    )
    return path


class RealDagster:
    """Instance + daemon subprocess + a workspace context to submit runs through the queue."""

    def __init__(self, settings: Settings, monkeypatch):
        self.settings = settings
        for key, value in elt_environment(settings).items():
            monkeypatch.setenv(key, value)
        self.workspace_file = write_workspace(settings)
        self.log_path = settings.home / "daemon.log"
        self.daemon: subprocess.Popen | None = None

    def __enter__(self) -> "RealDagster":
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        self.instance = dg.DagsterInstance.get()
        self._log = open(self.log_path, "wb")
        daemon = Path(sys.executable).with_name("dagster-daemon")
        self.daemon = subprocess.Popen(
            [str(daemon), "run", "-w", str(self.workspace_file)],
            cwd=str(REPO_ROOT), env=dict(os.environ), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server is in the same group: stopped together
        )
        self.workspace_context = WorkspaceProcessContext(self.instance, WorkspaceFileTarget(paths=[str(self.workspace_file)]))
        self.workspace_context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.workspace_context.__exit__(*exc)
        finally:
            if self.daemon and self.daemon.poll() is None:
                os.killpg(self.daemon.pid, signal.SIGTERM)
                try:
                    self.daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.daemon.pid, signal.SIGKILL)
                    self.daemon.wait()
            self._log.close()
            self.instance.dispose()

    def submit(self, request: dg.RunRequest) -> str:
        """Create and submit a run for an asset-selection run request, as the sensor daemon does."""
        from dagster._core.execution.submit_asset_runs import submit_asset_run

        if request.partition_key is not None:  # the sensor daemon resolves this tag the same way
            request = request.with_replaced_attrs(tags={**request.tags, "dagster/partition": request.partition_key})
        workspace = self.workspace_context.create_request_context()
        run = asyncio.run(
            submit_asset_run(None, request, 0, self.instance, self.workspace_context, workspace, {}, {},
                             logging.getLogger("netflix_elt_tests"))
        )
        return run.run_id

    def wait_for(self, run_ids: list[str], timeout: float) -> dict[str, dg.DagsterRun]:
        deadline = time.monotonic() + timeout
        while True:
            runs = {r.run_id: r for r in self.instance.get_runs(dg.RunsFilter(run_ids=run_ids))}
            if all(r.is_finished for r in runs.values()) and len(runs) == len(run_ids):
                return runs
            if time.monotonic() > deadline:
                states = {rid: r.status.value for rid, r in runs.items()}
                raise AssertionError(f"runs not finished after {timeout} s: {states}\n{self.daemon_log_tail()}")
            if self.daemon.poll() is not None:
                raise AssertionError(f"dagster-daemon exited with {self.daemon.returncode}\n{self.daemon_log_tail()}")
            time.sleep(0.5)

    def daemon_log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def run_failure(self, run_id: str) -> str:
        """The error messages of a run, to make an assertion failure readable."""
        records = self.instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}).records
        lines = []
        for r in records:
            data = r.event_log_entry.dagster_event.event_specific_data
            error = getattr(data, "error", None)
            lines.append(error.to_string()[-3000:] if error else (r.event_log_entry.message or ""))
        return "\n".join(lines)


def step_windows(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) timestamps of each step of a run."""
    starts, ends = {}, {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    ).records
    for r in records:
        entry = r.event_log_entry
        target = starts if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START else ends
        target[entry.step_key] = entry.timestamp
    return {k: (starts[k], ends.get(k, float("inf"))) for k in starts}


def file_rows(path: Path) -> int:
    with duckdb.connect() as con:
        return con.execute("select count(*) from read_csv(?, header=true, all_varchar=true)", [str(path)]).fetchone()[0]
