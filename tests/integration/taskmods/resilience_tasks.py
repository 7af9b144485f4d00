"""Tasks for the worker resilience tests (test_worker_resilience.py)."""

from __future__ import annotations

import multiprocessing
import sys
import time

from ledger import hold, note

from rpqueue import task


@task
def exits(tag: str, code: int) -> None:
    """Ends with ``sys.exit(code)``: a failure of this task, not of its worker."""
    note("run", tag=tag)
    sys.exit(code)


@task
def interrupted(tag: str) -> None:
    note("run", tag=tag)
    raise KeyboardInterrupt


@task(attempts=2, retry_on=(SystemExit,), backoff=0.05)
def exits_then_retried(tag: str, _attempts: int = 1) -> None:
    """Retried per its settings, like any failure it names in retry_on."""
    note("run", tag=tag, left=_attempts)
    sys.exit(1)


@task
def record(tag: str) -> None:
    note("ran", tag=tag)


@task(save_results=60)
def held(tag: str, linger: float) -> str:
    """Runs until the test releases it, then ``linger`` seconds more."""
    note("started", tag=tag)
    hold(tag, 30)
    time.sleep(linger)
    return "finished"


@task(save_results=60)
def fork_and_terminate() -> int | None:
    """A child process of the task, stopped with terminate(): its exit code."""
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
    child.start()
    time.sleep(0.2)
    child.terminate()
    child.join(5)
    code = child.exitcode
    if child.is_alive():  # ignored SIGTERM: do not leave it behind
        child.kill()
        child.join()
    return code
