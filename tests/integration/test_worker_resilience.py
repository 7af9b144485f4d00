"""A worker keeps serving whatever its tasks and Redis do: a task that calls
sys.exit() is a failed task, an outcome survives errors between the task's
end and its write, and processes a task forks stop when told to."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import resilience_tasks as rt
from harness import Ledger, Workers, wait_until

import rpqueue

# Long enough for several of the worker's backoff retries to meet BUSY.
BUSY_SECONDS = 2.5


@pytest.fixture
def busy_threshold(rcli: Any) -> Iterator[None]:
    """Redis answers BUSY to everyone after 100 ms of a long script."""
    old = rcli.config_get("busy-reply-threshold")["busy-reply-threshold"]
    rcli.config_set("busy-reply-threshold", 100)
    yield
    rcli.config_set("busy-reply-threshold", old)


def test_sys_exit_in_a_task_fails_the_task_not_the_thread(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    worker = workers.start("resilience_tasks", "default")
    first = rt.exits.execute("a", 3)
    ledger.wait_for(1, "run", tag="a")
    rt.interrupted.execute("b")
    ledger.wait_for(1, "run", tag="b")
    # The only worker thread is still there to run the next task...
    rt.record.execute("after")
    ledger.wait_for(1, "ran", tag="after")
    # ...and the task that exited is recorded (failed, no attempt left), not
    # left started until its lease runs out.
    wait_until(lambda: first.status == "done", message="the exited task recorded")
    assert "SystemExit: 3" in worker.stderr()
    assert worker.alive()


def test_sys_exit_is_retried_per_the_task_settings(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    workers.start("resilience_tasks", "default")
    handle = rt.exits_then_retried.execute("r")
    ledger.wait_for(2, "run", tag="r")
    wait_until(lambda: handle.status == "done", message="the last attempt recorded")


def test_outcome_survives_redis_busy_after_the_task_ends(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any,
        redis_url: str, busy_threshold: None) -> None:
    worker = workers.start("resilience_tasks", "default")
    handle = rt.held.execute("busy", 0.4)
    ledger.wait_for(1, "started", tag="busy")
    ledger.release("busy")
    # While the task lingers, a script makes Redis answer BUSY: the worker's
    # refresh of its queue order after the task meets it.
    busy = redis.Redis.from_url(redis_url, socket_timeout=30)
    script = ("local s = tonumber(redis.call('TIME')[1]) "
              "while tonumber(redis.call('TIME')[1]) - s < tonumber(ARGV[1]) do end return 1")
    t = threading.Thread(target=busy.eval, args=(script, 0, BUSY_SECONDS), daemon=True)
    t.start()
    t.join(BUSY_SECONDS + 10)
    busy.close()
    worker.wait_log("BUSY")
    wait_until(lambda: handle.status == "done", timeout=10,
               message="the outcome written once Redis answers again")
    assert handle.result == "finished"


def test_a_process_forked_by_a_task_stops_on_terminate(
        app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("resilience_tasks", "default")
    handle = rt.fork_and_terminate.execute()
    wait_until(lambda: handle.status == "done", message="the task done")
    assert handle.result == -15
