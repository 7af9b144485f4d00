"""Tasks that stop their own worker process while they run."""

from __future__ import annotations

import os
import signal
import time

from ledger import note

from rpqueue import task


@task(save_results=60)
def finish_during_shutdown(size: int) -> str:
    """Ask this worker process to stop, then return a large result.

    The worker must still write the outcome (done + saved result) of a task
    that completed within --wait before it exits.
    """
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)  # the signal handler runs: the worker is now stopping
    note("returning", size=size)
    return "x" * size
