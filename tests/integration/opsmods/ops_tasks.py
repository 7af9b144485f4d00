"""Tasks for tests/integration/test_ops_*.py without a hard time limit, so a worker
for this module runs in one process unless given --processes."""

from __future__ import annotations

import logging
import time
from typing import Any

from ops_ledger import hold, note, spin

import rpqueue
from rpqueue import SoftTimeLimitExceeded, TaskAborted, task

log = logging.getLogger("ops.tasks")

EVIL_NAME = "ops.evil\x1b[31m\nname\x07"
EVIL_SOFT_NAME = "ops.evil\x1b[31m\nsoft\x07"


class Flaky(Exception):
    pass


@task(queue="ops")
def record(tag: str) -> str:
    note("record", tag=tag)
    return f"result-{tag}"


@task(queue="ops")
def gate(tag: str) -> None:
    note("gate", tag=tag)
    hold(tag)
    note("gate-released", tag=tag)


@task(queue="ops")
def boom(tag: str) -> None:
    note("boom", tag=tag)
    raise RuntimeError("boom")


@task(queue="ops")
def pause(tag: str, seconds: float) -> None:
    time.sleep(seconds)
    note("pause", tag=tag)


@task(queue="ops", soft_timeout=0.5)
def soft_spin(tag: str) -> str:
    started = time.monotonic()
    note("start", tag=tag)
    try:
        spin(20)
    except SoftTimeLimitExceeded:
        note("soft-limit", tag=tag, after=time.monotonic() - started)
        return "wrapped up"
    note("not-stopped", tag=tag)
    return "ran to the end"


@task(queue="ops", soft_timeout=0.5, use_dead=True)
def soft_ignored(tag: str) -> None:
    note("start", tag=tag)
    spin(20)


# -- retry_on with backoff ---------------------------------------------------

@task(queue="ops", vis_timeout=30, attempts=3, retry_on=(Flaky,), backoff=0.5,
      max_backoff=60, use_dead=True)
def flaky_vis(tag: str, _attempts: Any = None) -> None:
    note("run", tag=tag, left=_attempts)
    raise Flaky(f"flaky {tag}")


@task(queue="ops", attempts=3, retry_on=(Flaky,), backoff=0.5, max_backoff=60,
      use_dead=True)
def flaky_01(tag: str, _attempts: Any = None) -> None:
    note("run", tag=tag, left=_attempts)
    raise Flaky(f"flaky {tag}")


@task(queue="ops", vis_timeout=30, attempts=3, retry_on=(Flaky,), backoff=0.1,
      use_dead=True)
def wrong_error_vis(tag: str, _attempts: Any = None) -> None:
    note("run", tag=tag, left=_attempts)
    raise ValueError(f"not flaky {tag}")


@task(queue="ops", attempts=3, retry_on=(Flaky,), backoff=0.1, use_dead=True)
def wrong_error_01(tag: str, _attempts: Any = None) -> None:
    note("run", tag=tag, left=_attempts)
    raise ValueError(f"not flaky {tag}")


@task(queue="ops", attempts=3, retry_delay=0.2)
def manual_retry(tag: str, _attempts: Any = None) -> None:
    """The README's default: no retry_on, the task retries itself."""
    note("run", tag=tag, left=_attempts)
    manual_retry.retry(tag, _attempts=_attempts)


# -- abort --------------------------------------------------------------------

@task(queue="ops", save_results=60)
def cooperative(tag: str) -> str:
    note("start", tag=tag)
    running = rpqueue.current_task()
    assert running is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if running.abort_requested:
            note("saw-abort", tag=tag)
            return "stopped early"
        time.sleep(0.02)
    note("not-aborted", tag=tag)
    return "ran to the end"


@task(queue="ops", vis_timeout=30, attempts=3, use_dead=True)
def abortable(tag: str, _attempts: Any = None) -> None:
    note("start", tag=tag, left=_attempts)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            time.sleep(0.02)
    except TaskAborted:
        note("aborted-inside", tag=tag)
        raise
    note("not-aborted", tag=tag)


@task(queue="ops", save_results=60)
def saved(tag: str) -> str:
    note("saved", tag=tag)
    return f"kept-{tag}"


# -- logs ----------------------------------------------------------------------

@task(queue="ops", name=EVIL_NAME)
def evil(secret: str) -> None:
    log.info("working inside the task")
    raise ValueError("evil failed")


@task(queue="ops", name=EVIL_SOFT_NAME, soft_timeout=0.3)
def evil_soft(secret: str) -> None:
    try:
        spin(20)
    except SoftTimeLimitExceeded:
        note("evil-soft", tag="evil-soft")
