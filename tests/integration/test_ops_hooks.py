"""Lifecycle hooks with real workers (issue #7): before_task(running),
after_task(running, result, error), on_retry(task, taskid, delay),
on_dead(task, taskid, reason, error). The worker module ops_hooks registers a
hook that raises everywhere, then one that writes each event to Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from ops_ledger import HOOK_EVENTS
from ops_support import (
    Ledger,
    OpsWorkers,
    dead_records,
    task_ref,
    wait_until,
)

import rpqueue

# The ledger fixture reads what the ops task modules noted (ops_ledger.py).
pytestmark = pytest.mark.ops_ledger


def _events(rcli: Any, taskid: str | None = None) -> list[dict[str, Any]]:
    out = [json.loads(raw) for raw in rcli.lrange(HOOK_EVENTS, 0, -1)]
    return [e for e in out if taskid is None or e.get("id") == taskid]


def _wait_events(rcli: Any, names: list[str], taskid: str) -> list[dict[str, Any]]:
    def complete() -> list[dict[str, Any]] | None:
        found = _events(rcli, taskid)
        return found if [e["event"] for e in found] == names else None

    return wait_until(complete,
                      message=lambda: f"hook events {names} for {taskid}; have {_events(rcli)}")


def test_success_and_a_broken_hook(app: rpqueue.RPQueue, ops: OpsWorkers, rcli: Any) -> None:
    worker = ops.start("ops_hooks", "ops", "limits")
    et = task_ref(app, "ops_tasks.record").execute("ok")
    before, after = _wait_events(rcli, ["before_task", "after_task"], et.taskid)
    assert before["task"] == after["task"] == "ops_tasks.record"
    assert before["queue"] == after["queue"] == "ops"
    assert isinstance(before["started"], float)
    assert before["abort_requested"] is False
    assert before["is_current"] is True  # before_task runs where the task will run
    assert after["result"] == "result-ok" and after["error"] is None
    # The hook registered first raises in every event: logged, and nothing else is disturbed.
    wait_until(lambda: et.status == "done", message="done")
    log = worker.wait_log("failed in after_task")
    assert "BrokenHook" in log and "failed in before_task" in log
    assert app.queue_info("ops")["stats"].get("failed", 0) == 0  # type: ignore[attr-defined]


def test_retry_and_dead_events(app: rpqueue.RPQueue, ops: OpsWorkers, rcli: Any) -> None:
    worker = ops.start("ops_hooks", "ops", "limits")
    et = task_ref(app, "ops_tasks.flaky_vis").execute("vis")
    events = _wait_events(rcli, ["before_task", "after_task", "on_retry"] * 2
                          + ["before_task", "after_task", "on_dead"], et.taskid)
    retries = [e for e in events if e["event"] == "on_retry"]
    assert [e["task"] for e in retries] == ["ops_tasks.flaky_vis"] * 2
    assert 0.25 <= retries[0]["delay"] <= 0.5 and 0.5 <= retries[1]["delay"] <= 1.0
    afters = [e for e in events if e["event"] == "after_task"]
    assert {e["error_type"] for e in afters} == {"Flaky"}
    assert all(e["result"] is None for e in afters)
    [dead] = [e for e in events if e["event"] == "on_dead"]
    assert dead["reason"] == "task raised an exception"
    assert "Flaky: flaky vis" in dead["error"]
    worker.wait_log("failed in on_dead")


def test_retry_event_of_a_0_1_task_names_the_failed_call(app: rpqueue.RPQueue,
                                                         ops: OpsWorkers, rcli: Any,
                                                         ledger: Ledger) -> None:
    ops.start("ops_hooks", "ops", "limits")
    et = task_ref(app, "ops_tasks.flaky_01").execute("zero-one")
    ledger.wait_for(2, "run", tag="zero-one")
    # The retries keep the task's id (issue #17): the first three events are the first run's.
    names = ["before_task", "after_task", "on_retry"]

    def first_run() -> list[dict[str, Any]] | None:
        found = _events(rcli, et.taskid)[:3]
        return found if [e["event"] for e in found] == names else None

    events = wait_until(first_run, message="the first run's events")
    assert 0.25 <= events[2]["delay"] <= 0.5


def test_time_limit_and_abort_events(app: rpqueue.RPQueue, ops: OpsWorkers, rcli: Any,
                                     ledger: Ledger) -> None:
    ops.start("ops_hooks", "ops", "limits")
    limited = task_ref(app, "ops_limits.spin_hard").execute("spin")
    aborted = task_ref(app, "ops_tasks.abortable").execute("abort")
    ledger.wait_for(1, "start", tag="abort")
    aborted.abort(hard=True)
    events = _wait_events(rcli, ["before_task", "after_task", "on_dead"], limited.taskid)
    assert events[1]["error_type"] == "TimeLimitExceeded"
    assert events[2]["reason"] == "time limit exceeded"
    events = _wait_events(rcli, ["before_task", "after_task", "on_dead"], aborted.taskid)
    assert events[1]["error_type"] == "TaskAborted"
    assert events[2]["reason"] == "aborted"


def test_async_task_events(app: rpqueue.RPQueue, ops: OpsWorkers, rcli: Any) -> None:
    ops.start("ops_hooks", "ops", "limits")
    et = task_ref(app, "ops_limits.async_quick").execute("aq")
    before, after = _wait_events(rcli, ["before_task", "after_task"], et.taskid)
    assert before["is_current"] is True
    assert after["result"] == "aq" and after["error"] is None


def test_dead_event_when_a_stuck_process_is_replaced(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                     rcli: Any, ledger: Ledger) -> None:
    worker = ops.start("ops_hooks", "ops", "limits")
    et = task_ref(app, "ops_limits.sleep_hard").execute("stuck")
    wait_until(lambda: dead_records(app, "limits"), message="dead-lettered")
    worker.wait_log("exited with 70")
    task_ref(app, "ops_tasks.record").execute("after")
    ledger.wait_for(1, "record", tag="after")
    events = [e["event"] for e in _events(rcli, et.taskid)]
    assert "on_dead" in events
