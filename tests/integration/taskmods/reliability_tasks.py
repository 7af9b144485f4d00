"""Tasks for tests/integration/test_reliability_two.py."""

from __future__ import annotations

from ledger import hold, note

import rpqueue
from rpqueue import task


@task
def record(tag: str) -> None:
    note("ran", tag=tag)


@task(queue="other")
def record_other(tag: str) -> None:
    note("ran", tag=tag)


FILLER = "test:filler"


@task(attempts=3, retry_on=(ValueError,), backoff=0.05, use_dead=True, save_results=60)
def fills_then_fails(tag: str, fill: int, _attempts: int = 1) -> str:
    """A 0/1 task retried on ValueError. Its first run fills Redis past its
    maxmemory, then raises: the failure (with its retry) must be written to a
    full Redis. The retry waits for the test to free memory (a BLPOP, which a
    full Redis allows) before it writes anything."""
    if _attempts == 3:
        note("run", tag=tag, left=_attempts)
        rpqueue.default_app().client.setrange(FILLER, fill, "x")
        raise ValueError("first run")
    hold(tag, 30)
    note("run", tag=tag, left=_attempts)
    return "second run"
