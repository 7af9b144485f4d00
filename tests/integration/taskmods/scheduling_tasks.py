"""Tasks for the anti-starvation tests (test_worker_scheduling.py)."""

from __future__ import annotations

import time

from ledger import hold, note

from rpqueue import task


@task
def work(tag: str, seconds: float = 0.0) -> None:
    """Note the start (with the wall clock, to measure waits), then be busy."""
    note("ran", tag=tag, at=time.time())
    if seconds:
        time.sleep(seconds)


@task
def gate(tag: str, seconds: float = 10.0) -> None:
    """Hold the worker until the test releases ``tag``, and at least 20 ms: a
    task that long makes the worker re-read its settings before the next
    take (worker.loop.FRESH_AFTER), however quickly the test releases it."""
    note("started", tag=tag)
    start = time.monotonic()
    hold(tag, seconds)
    time.sleep(max(0.0, 0.02 - (time.monotonic() - start)))


# Queues of async tasks only: a worker takes from them in batches (worker/aio.py).
@task(queue="async_a")
async def awork_a(tag: str) -> None:
    note("ran", tag=tag)


@task(queue="async_b")
async def awork_b(tag: str) -> None:
    note("ran", tag=tag)
