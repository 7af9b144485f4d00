"""Inspection and calling by name: known_queues, queue_sizes, clear_queue, get_page,
delete_item, the task registry in Redis, call_task, known_tasks, get_task."""

from __future__ import annotations

import sys
from typing import Any

import basic
import pytest
from harness import Ledger, Workers, wait_until

import rpqueue
from rpqueue import EnqueuedTask


def _redis_now(rcli: Any) -> float:
    secs, micros = rcli.time()
    return int(secs) + int(micros) / 1e6


# -- queues -------------------------------------------------------------------------


def test_known_queues_lists_used_queues_as_str(app: rpqueue.RPQueue) -> None:
    assert rpqueue.known_queues() == []
    basic.record.execute("a")
    basic.record.execute("b", _queue=b"bytes-queue")
    basic.record_low.execute("c")
    rpqueue.set_priority("prioritised-only", 3)
    queues = rpqueue.known_queues()
    assert queues == ["bytes-queue", "default", "low", "prioritised-only"]
    assert all(isinstance(q, str) for q in queues)


def test_queue_sizes_rows(app: rpqueue.RPQueue, rcli: Any) -> None:
    before = _redis_now(rcli)
    for i in range(3):
        basic.record.execute(i)
    basic.record.execute("later", delay=30)
    basic.record_low.execute("low")
    rows = rpqueue.queue_sizes()
    after = _redis_now(rcli)
    assert sorted((q, n) for q, n, _ in rows) == [("default", 4), ("low", 1)]
    for queue, size, seen in rows:
        assert isinstance(queue, str) and isinstance(size, int)
        assert before - 1 <= seen <= after + 1


def test_clear_queue_removes_waiting_and_delayed(app: rpqueue.RPQueue, workers: Workers,
                                                 ledger: Ledger) -> None:
    workers.start("basic", "default")
    running = basic.gate.execute("keep-running")
    ledger.wait_for(1, "started", tag="keep-running")
    for i in range(5):
        basic.record.execute(i, _queue="busy")
    basic.record.execute("delayed", delay=30, _queue="busy")
    basic.record.execute("waits-behind-gate")
    assert rpqueue.clear_queue("busy") == 6
    assert rpqueue.clear_queue(b"default") == 1
    sizes = {q: n for q, n, _ in rpqueue.queue_sizes()}
    assert sizes == {"busy": 0, "default": 0}
    assert "busy" in rpqueue.known_queues()
    # The running task is left to finish.
    assert running.status == "started"
    ledger.release("keep-running")
    ledger.wait_for(1, "finished", tag="keep-running")
    wait_until(lambda: running.status == "done", message="done")
    assert rpqueue.clear_queue("busy", delete=True) == 0
    assert "busy" not in rpqueue.known_queues()
    assert ledger.events("ran") == []


def test_get_page_pages_waiting_then_delayed(app: rpqueue.RPQueue) -> None:
    waiting = [basic.record.execute(i, k=i) for i in range(5)]
    delayed = [basic.record.execute(f"d{i}", delay=100 - i * 10) for i in range(2)]
    page0 = rpqueue.get_page("default", 0, per_page=3)
    page1 = rpqueue.get_page(b"default", 1, per_page=3)
    page2 = rpqueue.get_page("default", 2, per_page=3)
    assert rpqueue.get_page("default", 3, per_page=3) == []
    ids = [p["id"] for p in page0 + page1 + page2]
    # Waiting in run order, then delayed by due time (the second is due first).
    assert ids == [t.taskid for t in waiting] + [delayed[1].taskid, delayed[0].taskid]
    assert [p["status"] for p in page0 + page1 + page2] == ["waiting"] * 5 + ["delayed"] * 2
    assert page0[1]["name"] == "basic.record"
    assert page0[1]["args"] == [1] and page0[1]["kwargs"] == {"k": 1}
    assert (len(page0), len(page1), len(page2)) == (3, 3, 1)
    assert page1[2]["due"] < page2[0]["due"]
    assert rpqueue.get_page("default", 0)[:5] == page0 + page1[:2]
    assert rpqueue.get_page("nonexistent", 0) == []


def test_get_page_bad_arguments(app: rpqueue.RPQueue) -> None:
    with pytest.raises(ValueError):
        rpqueue.get_page("default", -1)
    with pytest.raises(ValueError):
        rpqueue.get_page("default", 0, per_page=0)


def test_delete_item(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    gone = basic.record.execute("gone")
    gone_later = basic.record.execute("gone-later", delay=0.3)
    kept = basic.record.execute("kept")
    assert rpqueue.delete_item("default", gone.taskid) is True
    assert rpqueue.delete_item(b"default", gone_later.taskid) is True
    assert rpqueue.delete_item("default", gone.taskid) is False
    assert rpqueue.delete_item("default", "never-existed") is False
    assert [p["id"] for p in rpqueue.get_page("default", 0)] == [kept.taskid]
    workers.start("basic", "default")
    ledger.wait_for(1, "ran", tag="kept")
    marker = basic.record.execute("marker", delay=0.5)
    assert marker.wait(10)
    ledger.wait_for(1, "ran", tag="marker")
    assert sorted(e["tag"] for e in ledger.events("ran")) == ["kept", "marker"]


def test_delete_item_refuses_a_running_task(app: rpqueue.RPQueue, workers: Workers,
                                            ledger: Ledger) -> None:
    workers.start("basic", "default")
    et = basic.gate.execute("del-running")
    ledger.wait_for(1, "started", tag="del-running")
    assert rpqueue.delete_item("default", et.taskid) is False
    ledger.release("del-running")
    ledger.wait_for(1, "finished", tag="del-running")


# -- calling by name ---------------------------------------------------------------


@pytest.fixture
def remote_worker(app: rpqueue.RPQueue, workers: Workers) -> Any:
    assert "remote_only" not in sys.modules, "tests must not import remote_only"
    worker = workers.start("remote_only", "remote_q", "default")
    wait_until(lambda: "remote_only.remote_add" in rpqueue.known_tasks,
               message="worker published its tasks")
    return worker


def test_registry_is_kept_in_redis(remote_worker: Any, rcli: Any) -> None:
    names = set(rcli.hkeys("rpqueue:tasks"))
    assert {"remote_only.remote_add", "remote_only.remote_plain"} <= names
    assert "remote_only.remote_add" in list(rpqueue.known_tasks)
    assert len(rpqueue.known_tasks) >= 2


def test_get_task_from_registry(remote_worker: Any) -> None:
    ref = rpqueue.get_task("remote_only.remote_add")
    assert ref is not None
    assert (ref.name, ref.queue, ref.attempts, ref.save_results) == (
        "remote_only.remote_add", "remote_q", 2, 30)
    assert rpqueue.get_task("no.such.task") is None
    # Local tasks are found without Redis's help.
    assert rpqueue.get_task("basic.record") is basic.record


def test_known_tasks_execute(remote_worker: Any, ledger: Ledger) -> None:
    et = rpqueue.known_tasks["remote_only.remote_add"].execute(2, 5)
    assert isinstance(et, EnqueuedTask)
    assert et.queue == "remote_q"
    wait_until(lambda: et.result == 7, message="remote ran")
    [run] = ledger.events("ran", tag="remote_add")
    assert run["kwargs"] == {"_attempts": 2}
    with pytest.raises(KeyError):
        rpqueue.known_tasks["no.such.task"]


def test_call_task_by_name(remote_worker: Any, ledger: Ledger) -> None:
    a = rpqueue.call_task("remote_only.remote_add", None, 1, 2)
    b = rpqueue.call_task("remote_only.remote_add", "default", 3, 4)
    c = rpqueue.call_task("remote_only.remote_plain", b"default", "by-name",
                          _verify_call=True)
    assert (a.queue, b.queue, c.queue) == ("remote_q", "default", "default")
    wait_until(lambda: (a.result, b.result) == (3, 7), message="both ran")
    ledger.wait_for(1, "ran", tag="by-name")


def test_call_task_unknown_name(app: rpqueue.RPQueue, workers: Workers) -> None:
    with pytest.raises(ValueError):
        rpqueue.call_task("no.such.task", "default", _verify_call=True)
    assert rpqueue.queue_sizes() == []
    # Without verification it is queued, and a worker dead-letters it.
    et = rpqueue.call_task("no.such.task", "default", 1)
    assert et.status == "waiting"
    workers.start("basic", "default")
    wait_until(lambda: rpqueue.read_deadletter(), message="dead-lettered")
    [dead] = rpqueue.read_deadletter()
    assert dead["id"] == et.taskid
    assert dead["reason"] == "unknown task"
