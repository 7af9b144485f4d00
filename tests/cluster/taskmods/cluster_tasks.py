"""Tasks for tests/cluster, imported by the workers and by the tests.

Every task notes what it did in a ledger: a list on a plain redis-server
named by $RPQUEUE_TEST_LEDGER (never the cluster under test, so the ledger
survives failovers and shows exactly what ran).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis

import rpqueue
from rpqueue import current_task

LEDGER_ENV = "RPQUEUE_TEST_LEDGER"
LEDGER_KEY = "ledger"

_ledger: redis.Redis | None = None


def ledger() -> redis.Redis:
    global _ledger
    if _ledger is None:
        _ledger = redis.Redis.from_url(os.environ[LEDGER_ENV], socket_timeout=10)
    return _ledger


def note(event: str, **fields: Any) -> None:
    record: dict[str, Any] = {"event": event, "pid": os.getpid(), "t": time.time(), **fields}
    running = current_task()
    if running is not None:
        record["id"] = running.taskid
        record["queue"] = running.queue
    ledger().rpush(LEDGER_KEY, json.dumps(record))


@rpqueue.task
def record(tag: Any = None) -> None:
    note("ran", tag=tag)


@rpqueue.task(save_results=60)
def add(a: int, b: int) -> int:
    note("ran", tag="add")
    return a + b


@rpqueue.task(save_results=60)
async def async_mul(a: int, b: int) -> int:
    note("ran", tag="async_mul")
    return a * b


@rpqueue.task(vis_timeout=0.5, attempts=3, use_dead=True)
def vanish(tag: Any = None, **kwargs: Any) -> None:
    """Never finishes in time: its lease runs out, it is retried, then dead-lettered."""
    note("ran", tag=tag, attempts=kwargs.get("_attempts"))
    time.sleep(1.5)


@rpqueue.task(vis_timeout=5, attempts=2, use_dead=True)
def fail_then_pass(tag: Any = None, **kwargs: Any) -> str:
    """Raises until the ledger holds a 'pass' flag for ``tag`` (set by the test)."""
    note("ran", tag=tag, attempts=kwargs.get("_attempts"))
    if not ledger().get(f"pass:{tag}"):
        raise ValueError(f"not yet: {tag}")
    return "passed"


@rpqueue.task
def slow(tag: Any = None, seconds: float = 0.05) -> None:
    note("ran", tag=tag)
    time.sleep(seconds)


@rpqueue.task
def work(n: int, seconds: float = 0.01) -> None:
    """The busy queue of the failover tests: noted when taken and when done."""
    note("start", tag=n)
    time.sleep(seconds)
    note("ran", tag=n)
