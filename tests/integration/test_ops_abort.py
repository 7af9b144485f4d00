"""Cancelling running tasks (issue #7): cooperative abort, hard abort, and abort of
a task that has not started."""

from __future__ import annotations

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


def test_cooperative_abort(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.cooperative").execute("coop")
    ledger.wait_for(1, "start", tag="coop")
    assert et.abort() is True
    ledger.wait_for(1, "saw-abort", tag="coop", timeout=5)
    wait_until(lambda: et.status == "done", message="the task returned")
    # The task decided how to stop: it returned normally, with its result.
    assert et.result == "stopped early"
    assert ledger.events("not-aborted") == []
    assert dead_records(app, "ops") == []


def test_hard_abort_is_recorded_and_not_retried(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                ledger: Ledger) -> None:
    worker = ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.abortable").execute("hard")
    [start] = ledger.wait_for(1, "start", tag="hard")
    assert start["left"] == 3  # three attempts, none of which an abort may use up
    assert et.abort(hard=True) is True
    ledger.wait_for(1, "aborted-inside", tag="hard", timeout=5)
    dead = wait_until(lambda: dead_records(app, "ops"), message="dead-lettered")[0]
    assert dead["id"] == et.taskid
    assert dead["reason"] == "aborted"
    assert "TaskAborted" in dead["error"]
    # Not retried although attempts were left; the same process goes on.
    task_ref(app, "ops_tasks.record").execute("after")
    [after] = ledger.wait_for(1, "record", tag="after")
    assert after["pid"] == start["pid"]
    assert len(ledger.events("start", tag="hard")) == 1
    assert "aborting task ops_tasks.abortable" in worker.stderr()


def test_abort_before_start_cancels(app: rpqueue.RPQueue, ops: OpsWorkers,
                                    ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")  # one thread: the gate holds it
    task_ref(app, "ops_tasks.gate").execute("busy")
    ledger.wait_for(1, "gate", tag="busy")
    waiting = task_ref(app, "ops_tasks.record").execute("never")
    later = task_ref(app, "ops_tasks.record").execute("later")
    assert waiting.status == "waiting"
    assert waiting.abort() is True
    assert waiting.abort() is False  # gone: nothing left to abort
    ledger.release("busy")
    ledger.wait_for(1, "record", tag="later")  # queued after the aborted one
    assert ledger.events("record", tag="never") == []
    wait_until(lambda: later.status == "done", message="the later one done")


def test_abort_of_a_finished_task_returns_false(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.record").execute("finished")
    wait_until(lambda: et.status == "done", message="done")
    assert et.abort() is False
    assert et.abort(hard=True) is False


def test_abort_of_a_finished_task_keeps_its_result(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                   ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.saved").execute("keep")
    wait_until(lambda: et.status == "done", message="done")
    assert et.result == "kept-keep"
    assert et.abort() is False
    assert et.result == "kept-keep"


def test_abort_flag_does_not_outlive_the_run(app: rpqueue.RPQueue, ops: OpsWorkers,
                                             ledger: Ledger) -> None:
    # Two threads: the marker below runs beside the second cooperative run.
    ops.start("ops_tasks", "ops", args=["--threads", "2"])
    cooperative = task_ref(app, "ops_tasks.cooperative")
    first = cooperative.execute("first", taskid="fixed-id")
    ledger.wait_for(1, "start", tag="first")
    assert first.abort() is True
    ledger.wait_for(1, "saw-abort", tag="first")
    wait_until(lambda: first.status == "done", message="first run done")
    second = cooperative.execute("second", taskid="fixed-id")
    ledger.wait_for(1, "start", tag="second")
    task_ref(app, "ops_tasks.record").execute("marker", delay=1.0)
    ledger.wait_for(1, "record", tag="marker")  # past the 0.5 s abort poll
    assert ledger.events("saw-abort", tag="second") == []
    second.abort()  # let it end
