"""Idle workers: few commands while waiting, yet a new task starts at once.

The command rate is the issue's explicit bound (~10 commands a second). Pickup
latency is measured and printed, and only checked against a loose sanity bound:
speed belongs to the benchmarks.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

import basic
import pytest
from harness import (
    Ledger,
    WorkerProcess,
    Workers,
    blocked_clients,
    top_level_commands,
    wait_until,
)

import rpqueue

WINDOW = 2.0


def _idle(rcli: Any, threads: int = 1, queues: tuple[str, ...] = (),
          all_queues: bool = False) -> None:
    """Wait until start-up is over: queues registered, wake-ups consumed, workers blocked.

    Only a worker serving all queues consumes the new-queue wake-up token.
    """
    app = rpqueue.default_app()

    def settled() -> bool:
        return (set(queues) <= set(rpqueue.known_queues())
                and (not all_queues or rcli.llen(app.keys.queues_wake) == 0)
                and blocked_clients(rcli) >= threads)

    wait_until(settled, message="worker idle")


def _idle_commands(redis_url: str) -> list[dict[str, Any]]:
    # The measurement window itself: not a wait for something to happen.
    return top_level_commands(redis_url, lambda: time.sleep(WINDOW))


@pytest.mark.parametrize("setup", ["one-queue", "three-queues", "all-queues", "periodic"])
def test_idle_worker_sends_few_commands(app: rpqueue.RPQueue, redis_url: str, rcli: Any,
                                        workers: Workers, setup: str) -> None:
    for q in ("q1", "q2", "q3"):
        rpqueue.set_priority(q, 1)
    if setup == "one-queue":
        workers.start("basic", "q1")
    elif setup == "three-queues":
        workers.start("basic", "q1", "q2", "q3")
    elif setup == "all-queues":
        workers.start("basic")
    else:
        workers.start("mytasks.usertasks2")  # the README's 25 s periodic task
    # The periodic task's queue is registered by the worker's scheduler at start.
    _idle(rcli, queues=("low",) if setup == "periodic" else (),
          all_queues=setup in ("all-queues", "periodic"))
    sent = _idle_commands(redis_url)
    rate = len(sent) / WINDOW
    kinds = Counter(c["command"].split()[0].upper() for c in sent)
    print(f"idle worker ({setup}): {rate:.1f} commands/s {dict(kinds)}")
    assert rate <= 10, f"{rate:.1f} commands/s while idle: {dict(kinds)}"


def test_idle_worker_with_threads_stays_quiet(app: rpqueue.RPQueue, redis_url: str,
                                              rcli: Any, workers: Workers) -> None:
    workers.start("basic", "default", args=["--threads", "2"])
    _idle(rcli, threads=2)
    sent = _idle_commands(redis_url)
    rate = len(sent) / WINDOW
    print(f"idle worker (2 threads): {rate:.1f} commands/s")
    # ~10 a second per worker thread at most.
    assert rate <= 20


def _pickup(ledger: Ledger, rcli: Any, tag: str, **execute: Any) -> float:
    _idle(rcli)
    started = time.monotonic()
    basic.record.execute(tag, **execute)
    ledger.wait_for(1, "ran", tag=tag, timeout=5)
    return time.monotonic() - started


def test_idle_worker_picks_up_a_new_task_at_once(app: rpqueue.RPQueue, rcli: Any,
                                                 workers: Workers, ledger: Ledger) -> None:
    workers.start("basic", "default")
    took = [_pickup(ledger, rcli, f"t{i}") for i in range(10)]
    print(f"pickup (incl. the test's own polling): median {statistics.median(took) * 1000:.1f}"
          f" ms, max {max(took) * 1000:.1f} ms")
    assert max(took) < 0.5


def test_worker_serving_all_queues_picks_up_a_new_queue_at_once(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, ledger: Ledger) -> None:
    workers.start("basic")
    took = [_pickup(ledger, rcli, f"n{i}", _queue=f"new-queue-{i}") for i in range(3)]
    print(f"pickup on a new queue: max {max(took) * 1000:.1f} ms")
    assert max(took) < 0.5


def test_worker_wakes_for_a_delayed_task(app: rpqueue.RPQueue, rcli: Any, workers: Workers,
                                         ledger: Ledger) -> None:
    workers.start("basic", "default")
    _idle(rcli)
    # Due between two of the idle worker's 1 s wake-ups.
    et = basic.record.execute("soon", delay=0.3)
    started = time.monotonic()
    ledger.wait_for(1, "ran", tag="soon", timeout=5)
    took = time.monotonic() - started
    print(f"delayed 0.3 s task ran after {took * 1000:.0f} ms")
    assert 0.25 <= took < 0.8
    assert et.status == "done"


def test_worker_keeps_running_tasks_leased(app: rpqueue.RPQueue, workers: Workers,
                                           ledger: Ledger, rcli: Any) -> None:
    """A long 0/1 task stays 'started' (its lease is renewed), and is not run twice."""
    w: WorkerProcess = workers.start("basic", "default", args=["--threads", "2"])
    et = basic.gate.execute("long")
    ledger.wait_for(1, "started", tag="long")
    assert et.status == "started"
    assert rpqueue.default_app().queue_info("default")["running"] == 1
    ledger.release("long")
    ledger.wait_for(1, "finished", tag="long")
    wait_until(lambda: et.status == "done", message="done")
    assert len(ledger.events("started", tag="long")) == 1
    assert w.alive()
