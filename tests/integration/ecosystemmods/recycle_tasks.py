"""Tasks for the worker-recycling tests (test_recycling.py)."""

from __future__ import annotations

import os
import time

from eco_ledger import note

from rpqueue import task

_held: list[bytes] = []


@task(queue="recycle")
def record(n: int, pause: float = 0.0) -> None:
    """Note which process ran call ``n``; ``pause`` keeps it running a while."""
    if pause:
        time.sleep(pause)
    note("recycle", n=n, pid=os.getpid())


@task(queue="recycle_mem")
def grow(n: int, mib: int) -> None:
    """Hold ``mib`` MiB more for the life of the process (a leak), then note the run."""
    _held.append(os.urandom(mib * 1024 * 1024))
    note("recycle_mem", n=n, pid=os.getpid())
