"""A bound on how long a dbt invocation may go without saying anything.

dbt-snowflake hands the connector no network timeout, so a request that Snowflake (or the
network) never answers after dbt has logged in is retried without end
(netflix_elt_tests/test_dbt_snowflake_waits.py; docs/production.md). Every statement is bounded
by the warehouse's STATEMENT_TIMEOUT_IN_SECONDS, and dbt logs each node as it starts and
finishes, so a dbt process silent for longer than the longest statement plus one request's
bound is stuck: the watchdog stops it, and the step fails saying so, instead of hanging the run.
"""

from __future__ import annotations

import subprocess
import threading
import time

import dagster as dg

TERMINATE_GRACE_S = 10.0


class SilentDbt(dg.Failure):
    pass


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (the warm client forwards it to the dbt it forked), then SIGKILL after a grace period."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(TERMINATE_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Watchdog:
    """Stops ``process`` once ``beat()`` has not been called for ``limit_s`` seconds (0: never)."""

    def __init__(self, process: subprocess.Popen, limit_s: float, what: str):
        self.process, self.limit_s, self.what = process, limit_s, what
        self.last = time.monotonic()
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="dbt-watchdog", daemon=True)

    def __enter__(self) -> "Watchdog":
        if self.limit_s > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()

    def beat(self) -> None:
        self.last = time.monotonic()

    def _watch(self) -> None:
        step = min(1.0, self.limit_s / 4)
        while not self._done.wait(step):
            if self.process.poll() is not None:
                return
            if time.monotonic() - self.last > self.limit_s:
                self.fired = True
                stop(self.process)
                return

    def failure(self) -> SilentDbt:
        return SilentDbt(
            f"{self.what} printed nothing for {self.limit_s:.0f} s and was stopped: a warehouse request "
            "that never returns (the bound is the warehouse's statement timeout plus one request's, "
            "NETFLIX_ELT_SNOWFLAKE_STATEMENT_TIMEOUT_S + NETFLIX_ELT_SNOWFLAKE_NETWORK_TIMEOUT_S)",
            allow_retries=False,
        )
