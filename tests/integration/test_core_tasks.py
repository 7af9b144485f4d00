"""@task, Task.execute / retry, EnqueuedTask (status, wait, cancel, result), results."""

from __future__ import annotations

import datetime
from typing import Any

import basic
import pytest
from harness import Ledger, Workers, wait_until

import rpqueue
from rpqueue import EnqueuedTask, Task

# -- declaring tasks ------------------------------------------------------------


def test_bare_task_decorator_makes_a_task_with_defaults() -> None:
    t = basic.record
    assert isinstance(t, Task)
    assert t.name == "basic.record"
    assert t.queue == rpqueue.DEFAULT_QUEUE == "default"
    assert t.attempts == 1
    assert t.retry_delay == 30
    assert t.save_results == 0
    assert t.vis_timeout == 0
    assert t.use_dead is False
    # .function is the original callable, and the task is still callable inline.
    assert t.function.__name__ == "record"
    assert t.__name__ == "record"


def test_task_decorator_with_arguments() -> None:
    t = basic.fail_until_zero_fast
    assert (t.attempts, t.retry_delay, t.queue) == (3, 0.2, "default")
    assert basic.add.save_results == 30
    assert basic.record_low.queue == "low"
    assert basic.named_task.name == "custom.name.for.task"

    @rpqueue.task(queue="q1", attempts=2, retry_delay=5, save_results=7, vis_timeout=3,
                  use_dead=True, name="tests.local.all_args")
    def all_args() -> int:
        return 42

    assert (all_args.queue, all_args.attempts, all_args.retry_delay, all_args.save_results,
            all_args.vis_timeout, all_args.use_dead, all_args.name) == (
        "q1", 2, 5, 7, 3, True, "tests.local.all_args")
    assert all_args() == 42
    assert all_args.function() == 42


def test_bytes_queue_name_in_decorator_becomes_str() -> None:
    assert basic.record_bytes_queue.queue == "bytesq"
    assert isinstance(basic.record_bytes_queue.queue, str)


# -- execute --------------------------------------------------------------------


def test_execute_returns_enqueued_task(app: rpqueue.RPQueue) -> None:
    et = basic.record.execute("a", 1, key="v")
    assert isinstance(et, EnqueuedTask)
    assert isinstance(et.taskid, str) and et.taskid
    assert et.queue == "default"
    assert et.name == "basic.record"
    assert tuple(et.args) == ("a", 1)
    assert et.status == "waiting"
    page = rpqueue.get_page("default", 0)
    assert [(p["id"], p["name"], p["args"], p["kwargs"]) for p in page] == [
        (et.taskid, "basic.record", ["a", 1], {"key": "v"})]


def test_execute_with_explicit_taskid(app: rpqueue.RPQueue) -> None:
    et = basic.record.execute("x", taskid="my-own-id")
    assert et.taskid == "my-own-id"
    assert et.status == "waiting"
    assert [p["id"] for p in rpqueue.get_page("default", 0)] == ["my-own-id"]


def test_execute_queue_override_moves_one_call(app: rpqueue.RPQueue, workers: Workers,
                                               ledger: Ledger) -> None:
    moved = basic.record_low.execute("moved", _queue="elsewhere")
    bmoved = basic.record_low.execute("bmoved", _queue=b"elsewhere")
    stays = basic.record_low.execute("stays")
    assert (moved.queue, bmoved.queue, stays.queue) == ("elsewhere", "elsewhere", "low")
    sizes = {q: n for q, n, _ in rpqueue.queue_sizes()}
    assert sizes == {"elsewhere": 2, "low": 1}
    # The task's own queue is not changed for later calls.
    assert basic.record_low.queue == "low"
    workers.start("basic", "elsewhere", "low")
    runs = ledger.wait_for(3, "ran")
    assert {(r["tag"], r["queue"]) for r in runs} == {
        ("moved", "elsewhere"), ("bmoved", "elsewhere"), ("stays", "low")}


def test_execute_with_delay_is_early_then_late(app: rpqueue.RPQueue) -> None:
    et = basic.record.execute("later", delay=0.3)
    assert et.status == "early"
    # Due but no worker has moved it yet.
    wait_until(lambda: et.status == "late", timeout=5, message="status 'late'")
    assert et.wait(0.05) is False


def test_execute_delay_accepts_timedelta(app: rpqueue.RPQueue, rcli: Any) -> None:
    et = basic.record.execute("td", delay=datetime.timedelta(seconds=100))
    assert et.status == "early"
    [item] = rpqueue.get_page("default", 0)
    now = float(rcli.time()[0])
    assert item["status"] == "delayed"
    assert 98 <= item["due"] - now <= 101


def test_delayed_task_runs_once_due(app: rpqueue.RPQueue, workers: Workers,
                                    ledger: Ledger) -> None:
    workers.start("basic", "default")
    et = basic.record.execute("delayed", delay=0.5)
    assert et.status == "early"
    assert et.wait(10)
    ledger.wait_for(1, "ran", tag="delayed")
    wait_until(lambda: et.status == "done", message="status done")


def test_execute_inline_now_runs_in_caller(app: rpqueue.RPQueue, rcli: Any) -> None:
    et = basic.echo.execute({"k": [1, 2]}, execute_inline_now=True)
    assert isinstance(et, EnqueuedTask)
    assert et.status == "done"
    assert et.result == {"k": [1, 2]}
    assert et.wait(0) is True
    # Nothing went to Redis for it.
    assert rpqueue.queue_sizes() == []
    assert rcli.dbsize() == 0


def test_execute_inline_now_propagates_exceptions(app: rpqueue.RPQueue) -> None:
    with pytest.raises(ValueError, match="inline boom"):
        basic.boom.execute("inline boom", execute_inline_now=True)
    assert rpqueue.queue_sizes() == []


def test_attempts_are_passed_to_the_function(app: rpqueue.RPQueue) -> None:
    et = basic.fail_until_zero_fast.execute(5)
    [item] = rpqueue.get_page(et.queue, 0)
    assert item["kwargs"] == {"_attempts": 3}
    # attempts=1 tasks get no _attempts.
    et1 = basic.record.execute("no-attempts")
    item1 = next(p for p in rpqueue.get_page("default", 0) if p["id"] == et1.taskid)
    assert item1["kwargs"] == {}


# -- status, wait, cancel ---------------------------------------------------------


def test_status_lifecycle_waiting_started_done(app: rpqueue.RPQueue, workers: Workers,
                                               ledger: Ledger) -> None:
    et = basic.gate.execute("life")
    assert et.status == "waiting"
    assert et.wait(0.05) is False
    workers.start("basic", "default")
    assert et.wait(10) is True
    ledger.wait_for(1, "started", tag="life")
    assert et.status == "started"
    ledger.release("life")
    ledger.wait_for(1, "finished", tag="life")
    wait_until(lambda: et.status == "done", message="status done")
    assert et.wait(0) is True


def test_wait_times_out_without_a_worker(app: rpqueue.RPQueue) -> None:
    et = basic.record.execute("nobody")
    assert et.wait(0.2) is False
    assert et.status == "waiting"


def test_cancel_before_run_removes_it(app: rpqueue.RPQueue, workers: Workers,
                                      ledger: Ledger) -> None:
    doomed = basic.record.execute("doomed")
    doomed_later = basic.record.execute("doomed-later", delay=0.2)
    assert doomed.cancel() is True
    assert doomed_later.cancel() is True
    assert doomed.status == "done"
    assert doomed.cancel() is False  # unknown now
    basic.record.execute("after")
    workers.start("basic", "default")
    ledger.wait_for(1, "ran", tag="after")
    # Past the delay of the cancelled delayed one, and nothing else ran.
    marker = basic.record.execute("marker", delay=0.4)
    assert marker.wait(10)
    ledger.wait_for(1, "ran", tag="marker")
    assert sorted(r["tag"] for r in ledger.events("ran")) == ["after", "marker"]


def test_cancel_unknown_task_is_false(app: rpqueue.RPQueue) -> None:
    et = EnqueuedTask(app, "basic.record", "default", "no-such-id", [])
    assert et.cancel() is False


def test_cancel_running_task_is_false(app: rpqueue.RPQueue, workers: Workers,
                                      ledger: Ledger) -> None:
    workers.start("basic", "default")
    et = basic.gate.execute("running")
    ledger.wait_for(1, "started", tag="running")
    assert et.cancel() is False
    ledger.release("running")
    ledger.wait_for(1, "finished", tag="running")


def test_cancel_after_done_deletes_saved_result(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("basic", "default")
    et = basic.add.execute(2, 3)
    wait_until(lambda: et.result is not None, message="result saved")
    assert et.result == 5
    assert et.cancel() == -1
    assert et.result is None
    assert et.cancel() is False


def test_cancel_after_done_without_saved_result_is_false(app: rpqueue.RPQueue,
                                                         workers: Workers,
                                                         ledger: Ledger) -> None:
    workers.start("basic", "default")
    et = basic.record.execute("plain")
    ledger.wait_for(1, "ran", tag="plain")
    wait_until(lambda: et.status == "done", message="status done")
    assert et.cancel() is False


# -- results ----------------------------------------------------------------------


def test_save_results_keeps_result_for_n_seconds(app: rpqueue.RPQueue, workers: Workers,
                                                 rcli: Any) -> None:
    workers.start("basic", "default")
    et = basic.add.execute(20, 22)
    wait_until(lambda: et.status == "done", message="done")
    assert et.result == 42
    key = app.keys.queue("default").result(et.taskid)
    ttl = rcli.pttl(key)
    assert 25_000 < ttl <= 30_000


def test_saved_result_expires(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("basic", "default")
    et = basic.short_lived_result.execute()
    wait_until(lambda: et.result == "soon gone", message="result saved")
    wait_until(lambda: et.result is None, timeout=5, message="result expired")


def test_no_result_without_save_results(app: rpqueue.RPQueue, workers: Workers,
                                        ledger: Ledger, rcli: Any) -> None:
    workers.start("basic", "default")
    et = basic.record.execute("noresult")
    ledger.wait_for(1, "ran", tag="noresult")
    wait_until(lambda: et.status == "done", message="done")
    assert et.result is None
    assert rcli.keys("*result*") == []


def test_result_is_none_before_the_task_ran(app: rpqueue.RPQueue) -> None:
    et = basic.add.execute(1, 1)
    assert et.result is None
    assert rpqueue.result(et.taskid) is None


def test_module_level_result_and_results(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("basic", "default", "other")
    a = basic.add.execute(1, 2)
    b = basic.add.execute(10, 20, _queue="other")
    c = basic.echo.execute(["x", {"y": None}])
    for et in (a, b, c):
        wait_until(lambda et=et: et.status == "done", message=f"{et} done")
    assert rpqueue.result(a.taskid) == 3
    assert rpqueue.result(b.taskid) == 30
    assert rpqueue.results([a.taskid, b.taskid, c.taskid, "unknown"]) == [
        3, 30, ["x", {"y": None}], None]
    assert rpqueue.results([]) == []


def test_unjsonable_result_is_saved_as_null_and_worker_goes_on(
        app: rpqueue.RPQueue, workers: Workers) -> None:
    w = workers.start("basic", "default")
    bad = basic.unjsonable_result.execute()
    good = basic.add.execute(1, 1)
    wait_until(lambda: good.result == 2, message="next task ran")
    assert bad.status == "done"
    assert bad.result is None
    assert w.alive()


# -- retries --------------------------------------------------------------------


def _runs(ledger: Ledger) -> list[tuple[int, int]]:
    return [(r["value"], r["attempts"]) for r in ledger.events("ran", tag="fuz")]


def test_retry_value_3_never_succeeds(app: rpqueue.RPQueue, workers: Workers,
                                      ledger: Ledger) -> None:
    """README: value=3 -> runs with attempts 3, 2, 1, and 'succeeded' never happens."""
    workers.start("basic", "default")
    basic.fail_until_zero_fast.execute(3)
    ledger.wait_for(3, "ran", tag="fuz")
    # The third run's retry returned without queueing anything.
    wait_until(lambda: rpqueue.queue_sizes()[0][1] == 0 and app.queue_info("default")[
        "running"] == 0, message="queue drained")
    assert _runs(ledger) == [(3, 3), (2, 2), (1, 1)]
    assert ledger.events("succeeded") == []


def test_retry_value_2_succeeds_on_third_run(app: rpqueue.RPQueue, workers: Workers,
                                             ledger: Ledger) -> None:
    workers.start("basic", "default")
    basic.fail_until_zero_fast.execute(2)
    ledger.wait_for(1, "succeeded", tag="fuz")
    wait_until(lambda: rpqueue.queue_sizes()[0][1] == 0, message="queue drained")
    assert _runs(ledger) == [(2, 3), (1, 2), (0, 1)]
    # The success is recorded right after the third run.
    assert [e["event"] for e in ledger.entries()] == ["ran", "ran", "ran", "succeeded"]


def test_retry_returns_none_when_no_attempts_left(app: rpqueue.RPQueue) -> None:
    assert basic.fail_until_zero_fast.retry(1, _attempts=1) is None
    assert basic.record.retry("x") is None  # attempts=1: no retry at all
    assert rpqueue.queue_sizes() == []


def test_retry_queues_with_one_attempt_fewer(app: rpqueue.RPQueue, rcli: Any) -> None:
    et = basic.fail_until_zero_fast.retry(7, _attempts=3)
    assert isinstance(et, EnqueuedTask)
    assert et.status == "early"
    [item] = rpqueue.get_page("default", 0)
    assert item["args"] == [7]
    assert item["kwargs"] == {"_attempts": 2}


def test_retry_honours_retry_delay(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger,
                                   rcli: Any) -> None:
    workers.start("basic", "default")
    basic.retry_with_delay.execute(None)
    ledger.wait_for(1, "ran", tag="rwd")
    item = wait_until(lambda: rpqueue.get_page("default", 0), message="the retry queued")[0]
    secs, micros = rcli.time()
    now = int(secs) + int(micros) / 1e6
    assert item["status"] == "delayed"
    assert item["kwargs"] == {"_attempts": 3}
    # Queued with retry_delay=30 from the moment of the retry.
    assert 28 <= item["due"] - now <= 30.5
    # It does not run early.
    assert len(ledger.events("ran", tag="rwd")) == 1


def test_retry_honours_explicit_delay(app: rpqueue.RPQueue, workers: Workers,
                                      ledger: Ledger, rcli: Any) -> None:
    workers.start("basic", "default")
    basic.retry_with_delay.execute(1.0)
    first = ledger.wait_for(1, "ran", tag="rwd")
    item = wait_until(lambda: rpqueue.get_page("default", 0), message="the retry queued")[0]
    secs, micros = rcli.time()
    now = int(secs) + int(micros) / 1e6
    assert item["status"] == "delayed"
    assert 0 < item["due"] - now <= 1.05
    runs = ledger.wait_for(2, "ran", tag="rwd")
    assert [r["attempts"] for r in runs] == [4, 3]
    assert first[0]["id"] != runs[1]["id"]
