"""Time limits with real workers: soft limits raise inside the task; hard limits
stop it, replacing the worker process when the task is stuck in a C call; async
tasks are cancelled. Issue #7."""

from __future__ import annotations

from typing import Any

import pytest
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


def _dead(app: rpqueue.RPQueue, queue: str, taskid: str) -> dict[str, Any]:
    return wait_until(lambda: next((r for r in dead_records(app, queue) if r["id"] == taskid),
                                   None), message=f"{taskid} dead-lettered")


def test_soft_limit_raises_inside_the_task(app: rpqueue.RPQueue, ops: OpsWorkers,
                                           ledger: Ledger) -> None:
    worker = ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.soft_spin").execute("soft")
    [hit] = ledger.wait_for(1, "soft-limit", tag="soft")
    # Raised at the soft limit (0.5 s), in the task, which wrapped up and returned.
    assert 0.45 <= hit["after"] < 2.0
    wait_until(lambda: et.status == "done", message="soft_spin done")
    assert ledger.events("not-stopped") == []
    assert app.queue_info("ops")["stats"].get("failed", 0) == 0  # type: ignore[attr-defined]
    assert "passed its soft time limit of 0.5s" in worker.stderr()


def test_soft_limit_not_caught_fails_the_task(app: rpqueue.RPQueue, ops: OpsWorkers,
                                              ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.soft_ignored").execute("ignored")
    dead = _dead(app, "ops", et.taskid)
    assert dead["reason"] == "time limit exceeded"
    assert "SoftTimeLimitExceeded" in dead["error"]


def test_hard_limit_replaces_a_process_stuck_in_a_c_call(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                         ledger: Ledger) -> None:
    worker = ops.start("ops_limits", "limits")
    et = task_ref(app, "ops_limits.sleep_hard").execute("stuck")
    [start] = ledger.wait_for(1, "start", tag="stuck")
    dead = _dead(app, "limits", et.taskid)
    assert dead["reason"] == "time limit exceeded"
    assert "did not stop" in dead["error"]
    # The supervisor replaced the process the task was stuck in ...
    worker.wait_log("exited with 70; starting another")
    worker.wait_log("serving", count=2)
    task_ref(app, "ops_limits.whoami").execute("after")
    [after] = ledger.wait_for(1, "whoami", tag="after")
    assert after["pid"] != start["pid"]
    assert ledger.events("not-stopped") == []


def test_hard_limit_stops_python_code_without_a_restart(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                        ledger: Ledger) -> None:
    worker = ops.start("ops_limits", "limits")
    et = task_ref(app, "ops_limits.spin_hard").execute("spin")
    [start] = ledger.wait_for(1, "start", tag="spin")
    dead = _dead(app, "limits", et.taskid)
    assert dead["reason"] == "time limit exceeded"
    assert "TimeLimitExceeded" in dead["error"]
    task_ref(app, "ops_limits.whoami").execute("after")
    [after] = ledger.wait_for(1, "whoami", tag="after")
    assert after["pid"] == start["pid"]  # the same process went on
    assert "exited with" not in worker.stderr()


def test_hard_limit_counts_as_a_failed_attempt(app: rpqueue.RPQueue, ops: OpsWorkers,
                                               ledger: Ledger) -> None:
    ops.start("ops_limits", "limits")
    et = task_ref(app, "ops_limits.sleep_once").execute("once")
    runs = ledger.wait_for(2, "start", tag="once", timeout=20)
    assert [r["left"] for r in runs] == [2, 1]
    assert runs[0]["pid"] != runs[1]["pid"]  # the stuck process was replaced
    ledger.wait_for(1, "finished", tag="once")
    wait_until(lambda: et.status == "done", message="done on the second attempt")
    assert dead_records(app, "limits") == []
    stats = app.queue_info("limits")["stats"]  # type: ignore[attr-defined]
    assert stats.get("retried") == 1 and stats.get("done") == 1


def test_async_task_hard_limit(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger) -> None:
    ops.start("ops_limits", "limits")
    et = task_ref(app, "ops_limits.async_hard").execute("async")
    [start] = ledger.wait_for(1, "start", tag="async")
    ledger.wait_for(1, "cancelled", tag="async")
    dead = _dead(app, "limits", et.taskid)
    assert dead["reason"] == "time limit exceeded"
    assert "TimeLimitExceeded" in dead["error"]
    # Cancelled by its event loop: no process was replaced, other async tasks still run.
    task_ref(app, "ops_limits.async_quick").execute("quick")
    [quick] = ledger.wait_for(1, "async-quick", tag="quick")
    assert quick["pid"] == start["pid"]


def test_async_task_soft_limit_cancels_it(app: rpqueue.RPQueue, ops: OpsWorkers,
                                          ledger: Ledger) -> None:
    ops.start("ops_limits", "limits")
    et = task_ref(app, "ops_limits.async_soft").execute("asoft")
    [start] = ledger.wait_for(1, "start", tag="asoft")
    [cancelled] = ledger.wait_for(1, "cancelled", tag="asoft")
    # A coroutine's soft limit cancels it: clean-up code runs (and may await).
    assert 0.45 <= cancelled["t"] - start["t"] < 2.0
    dead = _dead(app, "limits", et.taskid)
    assert dead["reason"] == "time limit exceeded"
