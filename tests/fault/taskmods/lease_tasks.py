"""Tasks for tests/integration/test_leases.py: leases, fencing, extend, dead letters.

They report through the integration harness's ledger (``ledger.note``,
``ledger.hold``), which the workers import from their working directory.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ledger import hold, note

import rpqueue
from rpqueue import task

# 0/1 tasks hold a lease of app.running_lease, renewed while they run; the
# tests' workers get a short one (3 s) to show what happens after a worker
# vanished. The test process, which imports this module too, keeps the default.
if os.environ.get("LEASE_TASKS_RUNNING_LEASE"):
    rpqueue.default_app().running_lease = float(os.environ["LEASE_TASKS_RUNNING_LEASE"])


def _running() -> Any:
    running = rpqueue.current_task()
    assert running is not None
    return running


@task(vis_timeout=1, attempts=3, save_results=30)
def fenced(tag: str, **kwargs: Any) -> str:
    """The first delivery outlives its lease and finishes after the second."""
    running = _running()
    note("started", tag=tag, attempts=kwargs.get("_attempts"))
    if kwargs.get("_attempts") == 3:
        hold(f"{tag}:first", 15)
        note("first_returns", tag=tag, extended=running.extend(5))
        return "first"
    return "second"


@task(vis_timeout=1, attempts=2)
def extends(tag: str, work: float, **kwargs: Any) -> None:
    """Works ``work`` seconds on a 1 s lease, extending it as it goes."""
    running = _running()
    note("started", tag=tag, attempts=kwargs.get("_attempts"))
    deadline = time.monotonic() + work
    while time.monotonic() < deadline:
        time.sleep(0.25)
        if not running.extend(1.0):
            note("extend_refused", tag=tag)
    note("finished", tag=tag)


@task(vis_timeout=1, attempts=2)
def no_extend(tag: str, work: float, **kwargs: Any) -> None:
    """The same work without extending: the default renews nothing."""
    note("started", tag=tag, attempts=kwargs.get("_attempts"))
    time.sleep(work)
    note("finished", tag=tag)


@task
def once(tag: str) -> None:
    """0/1: runs until released (or its worker is killed)."""
    note("started", tag=tag)
    hold(tag, 30)
    note("finished", tag=tag)


@task(use_dead=True)
def once_dead(tag: str) -> None:
    """0/1 with a dead-letter queue: a vanished worker's task is buried, not rerun."""
    note("started", tag=tag)
    hold(tag, 30)


@task(vis_timeout=5, attempts=2, use_dead=True)
def flaky(tag: str, **kwargs: Any) -> str:
    """Fails until the test 'heals' it (sets the key), then succeeds."""
    note("ran", tag=tag, attempts=kwargs.get("_attempts"))
    if not rpqueue.default_app().client.exists(f"test:healed:{tag}"):
        raise ValueError(f"flaky {tag} is broken")
    return "ok"


@task(use_dead=True)
def flaky_once(tag: str) -> str:
    note("ran", tag=tag)
    if not rpqueue.default_app().client.exists(f"test:healed:{tag}"):
        raise KeyError(tag)
    return "ok"
