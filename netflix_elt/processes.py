"""Whether a process is still there, for the code that cleans up after killed processes (the
instance's dead-run recovery, the warm dbt server's stale files, the tests' process groups)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (also one of another user's: signalling it is
    refused, which still says it exists). POSIX: signal 0 checks without signalling."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
