"""Tasks for the task-state and event tests (test_task_state.py, test_events.py)."""

from __future__ import annotations

from typing import Any

from ledger import hold, note

import rpqueue
from rpqueue import current_task, task


class Flaky(Exception):
    pass


@task(queue="st", save_results=60)
def double(x: int) -> int:
    return x * 2


@task(queue="st")
def raises(text: str) -> None:
    raise ValueError(text)


@task(queue="st", use_dead=True)
def raises_dead(text: str) -> None:
    raise KeyError(text)


@task(queue="st", attempts=3, retry_on=(Flaky,), backoff=0.05, max_backoff=0.1,
      save_results=60)
def flaky(tag: str, fail_until: int, _attempts: Any = None) -> str:
    """A 0/1 task retried by retry_on: fails while attempts left > fail_until."""
    note("run", tag=tag, left=_attempts)
    if _attempts > fail_until:
        raise Flaky(f"attempt with {_attempts} left")
    return f"ok after {_attempts}"


@task(queue="st", attempts=3, retry_on=(Flaky,), backoff=0.05, max_backoff=0.1, use_dead=True)
def always_flaky(tag: str, _attempts: Any = None) -> None:
    note("run", tag=tag, left=_attempts)
    raise Flaky(f"no luck {tag}")


@task(queue="st", save_results=60)
def with_progress(tag: str, steps: int) -> str:
    running = current_task()
    assert running is not None
    for i in range(1, steps + 1):
        running.progress(i, steps, note=f"step {i} ✓")
    note("progressed", tag=tag)
    hold(tag, 30)  # the test reads the progress while the task still runs
    return "done"


@task(queue="st", save_results=60)
async def async_progress(tag: str) -> str:
    running = current_task()
    assert running is not None
    await running.aprogress(1, 2, note="half")
    await running.aprogress(2, 2, note="all")
    return "async done"


@task(queue="st")
def blocks(tag: str) -> None:
    """Runs until released (or aborted, when the test asks)."""
    note("started", tag=tag)
    running = current_task()
    for _ in range(600):
        if hold(tag, 0.05) or (running is not None and running.abort_requested):
            break
    if running is not None and running.abort_requested:
        raise rpqueue.TaskAborted("stopped on request")


@task(queue="st", vis_timeout=1.0, attempts=2, save_results=60)
def dies_once(tag: str, _attempts: Any = None) -> str:
    """Blocks on its first attempt (the test SIGKILLs the worker), returns on the next."""
    note("run", tag=tag, left=_attempts)
    if _attempts == 2:
        hold(tag, 60)
    return "second attempt"


@task(queue="st", vis_timeout=1.0, attempts=1, use_dead=True)
def dies_for_good(tag: str) -> None:
    note("run", tag=tag)
    hold(tag, 60)


@task(queue="st", attempts=3, retry_on=(Flaky,), backoff=30, max_backoff=60)
def retries_later(tag: str, _attempts: Any = None) -> None:
    note("run", tag=tag, left=_attempts)
    raise Flaky(f"later {tag}")
