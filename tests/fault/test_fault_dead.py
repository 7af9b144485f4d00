"""Figure 3: tasks that always fail use exactly their attempts, then die once each."""

from __future__ import annotations

import time
from collections.abc import Callable

import fault_tasks
import pytest
import redis
from faultlib import Ledger, WorkerPool, drained, queue_state, report, use, wait_until

import rpqueue
from rpqueue import admin

pytestmark = pytest.mark.fault

TASKS = 1_000
ATTEMPTS = 3


def test_always_failing_tasks_use_their_attempts_then_die(
        redis_url: str, pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    assert (fault_tasks.always_fails.attempts, fault_tasks.always_fails.use_dead) == (ATTEMPTS, True)
    app = use(redis_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    pool = pools(redis_url, size=2, threads=4, work=0)
    began = time.time()
    ids = [fault_tasks.always_fails.execute(n).taskid for n in range(TASKS)]
    wait_until(lambda: queue_state(client)["dead"] == TASKS and drained(queue_state(client)),
               timeout=90, interval=0.2, message=lambda: f"{TASKS} dead: {queue_state(client)}")
    time.sleep(1.0)  # nothing may run after the last death
    tally = ledger.tally()
    state = queue_state(client)
    records = admin.dead_records(app.ctx, limit=10 * TASKS)
    report("3 always-failing tasks (attempts=3, use_dead)", tasks=TASKS,
           executions=tally.executions, dead=len(records))
    assert tally.executions == ATTEMPTS * TASKS
    assert all(n == ATTEMPTS for n in tally.starts.values()) and set(tally.starts) == set(ids)
    assert len(records) == TASKS and {r["id"] for r in records} == set(ids)
    assert state["stats"].get("dead") == TASKS
    by_id = {r["id"]: r for r in records}
    for n, taskid in enumerate(ids):
        r = by_id[taskid]
        assert r["name"] == "fault_tasks.always_fails"
        assert r["args"] == [n]
        assert r["attempts_used"] == ATTEMPTS
        assert r["reason"] == "task raised an exception"
        assert r["error"] == f"RuntimeError: always fails (call {n})"
        assert began - 1 <= r["time"] <= time.time() + 1
    # The module-level reader sees the same records.
    assert len(rpqueue.read_deadletter(limit=10 * TASKS)) == TASKS
    assert pool.unexpected_exits() == []
    client.close()
