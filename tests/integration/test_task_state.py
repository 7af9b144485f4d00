"""EnqueuedTask.state / error / get / progress with real workers (issue #17).

Each state a task can end in is reached by a real worker process; the error
record is read back through the handle, traceback included.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import state_tasks as st
from harness import Ledger, Workers, wait_until

import rpqueue
from rpqueue import EnqueuedTask, TaskCancelled, TaskFailed
from rpqueue.views import dead

T = 15.0  # generous bound on any wait below


def _dead(app: rpqueue.RPQueue) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = dead.dead_records(app.ctx, ["st"], 100)
    return records


def test_succeeded(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("state_tasks", "st")
    h = st.double.execute(21)
    assert h.get(timeout=T) == 42
    assert h.state == "succeeded" and h.error is None
    assert h.attempt == (1, 1)
    assert h.status == "done" and h.result == 42  # the original API is unchanged
    state = h.task_state()
    assert state.final and state.time is not None


def test_failed_carries_the_traceback_intact(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("state_tasks", "st")
    text = "héllo wörld ✓ 日本語\nsecond line"
    h = st.raises.execute(text)
    with pytest.raises(TaskFailed) as info:
        h.get(timeout=T)
    err = info.value.error
    assert err is not None and info.value.state == "failed"
    assert err.type == "ValueError" and err.message == text
    assert "raise ValueError(text)" in err.traceback and text in err.traceback
    assert err.attempt == 1 and err.worker and err.time > 0
    # The remote traceback is in the exception's own message.
    assert "Remote traceback" in str(info.value) and "raise ValueError(text)" in str(info.value)
    assert h.state == "failed" and h.error == err
    assert h.result is None and h.status == "done"


def test_dead_lettered(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("state_tasks", "st")
    h = st.raises_dead.execute("gone")
    with pytest.raises(TaskFailed) as info:
        h.get(timeout=T)
    assert info.value.state == "dead" and h.state == "dead"
    assert info.value.error is not None and info.value.error.type == "KeyError"


def test_0_1_retries_keep_one_id(app: rpqueue.RPQueue, workers: Workers,
                                 ledger: Ledger) -> None:
    workers.start("state_tasks", "st")
    h = st.flaky.execute("keep", 1)
    assert h.get(timeout=T) == "ok after 1"
    runs = ledger.events("run", tag="keep")
    assert [r["left"] for r in runs] == [3, 2, 1]
    assert {r["id"] for r in runs} == {h.taskid}
    assert h.state == "succeeded" and h.attempt == (3, 3)


def test_retries_then_dead_shows_every_attempt(app: rpqueue.RPQueue, workers: Workers,
                                               ledger: Ledger) -> None:
    workers.start("state_tasks", "st")
    h = st.always_flaky.execute("never")
    with pytest.raises(TaskFailed) as info:
        h.get(timeout=T)
    assert info.value.state == "dead"
    assert info.value.error is not None and info.value.error.attempt == 3
    [record] = _dead(app)
    assert record["id"] == h.taskid and record["attempts_used"] == 3
    assert {r["id"] for r in ledger.events("run", tag="never")} == {h.taskid}


def test_retrying_while_waiting_for_the_next_attempt(app: rpqueue.RPQueue, workers: Workers,
                                                     ledger: Ledger) -> None:
    workers.start("state_tasks", "st")
    h = st.retries_later.execute("later")  # backoff 30 s: the retry waits in 'delayed'
    ledger.wait_for(1, "run", tag="later")
    wait_until(lambda: h.state == "retrying", message="retrying")
    state = h.task_state()
    assert state.error is not None and state.error.type.endswith("Flaky")
    assert state.error.message == "later later" and (state.attempt, state.attempts) == (2, 3)
    assert h.status == "early"
    assert h.cancel() is True and h.state == "cancelled"


def test_cancelled_delayed_task(app: rpqueue.RPQueue) -> None:
    h = st.double.execute(1, delay=60)
    assert h.state == "delayed" and h.status == "early"
    assert h.cancel() is True
    assert h.state == "cancelled"
    with pytest.raises(TaskCancelled):
        h.get(timeout=1)
    assert h.status == "done" and h.result is None


def test_waiting_and_timeout(app: rpqueue.RPQueue) -> None:
    h = st.double.execute(2)
    assert h.state == "waiting"
    with pytest.raises(TimeoutError):
        h.get(timeout=0.1)
    with pytest.raises(ValueError, match="timeout"):
        h.get(timeout=-1)


def test_aborted(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    workers.start("state_tasks", "st")
    h = st.blocks.execute("ab")
    ledger.wait_for(1, "started", tag="ab")
    assert h.state == "running"
    assert h.abort() is True
    with pytest.raises(TaskFailed) as info:
        h.get(timeout=T)
    assert info.value.state == "aborted" and h.state == "aborted"


def test_unknown_id_and_expired_record(app: rpqueue.RPQueue, workers: Workers) -> None:
    assert EnqueuedTask(app, "x", "st", "no-such-id", ()).state == "unknown"
    workers.start("state_tasks", "st", env={"RPQUEUE_STATE_KEEP": "0.5"})
    h = st.raises.execute("short")
    wait_until(lambda: h.state == "failed", message="failed")
    wait_until(lambda: h.state == "unknown", message="the record to expire")


def test_sigkilled_worker_retries_then_succeeds(app: rpqueue.RPQueue, workers: Workers,
                                                ledger: Ledger, rcli: Any) -> None:
    w1 = workers.start("state_tasks", "st", env={"RPQUEUE_EVENTS": "1"})
    h = st.dies_once.execute("kill")
    ledger.wait_for(1, "run", tag="kill")
    assert h.state == "running"
    w1.kill()
    workers.start("state_tasks", "st", env={"RPQUEUE_EVENTS": "1"})
    assert h.get(timeout=T) == "second attempt"
    assert h.attempt == (2, 2)
    kinds = [e.event for e in app.events(["st"], since=0, timeout=0.2) if e.id == h.taskid]
    assert kinds == ["started", "retrying", "started", "succeeded"]


def test_sigkilled_worker_on_the_last_attempt_is_dead(app: rpqueue.RPQueue, workers: Workers,
                                                      ledger: Ledger) -> None:
    w1 = workers.start("state_tasks", "st")
    h = st.dies_for_good.execute("kill2")
    ledger.wait_for(1, "run", tag="kill2")
    w1.kill()
    workers.start("state_tasks", "st")
    # Never left at 'running' past its lease: the next take buries it.
    wait_until(lambda: h.state == "dead", message="dead after the lease expired")
    assert h.error is not None and h.error.type == "WorkerLost"


def test_progress(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    workers.start("state_tasks", "st")
    h = st.with_progress.execute("p", 3)
    ledger.wait_for(1, "progressed", tag="p")
    p = h.progress
    assert p is not None and (p.done, p.total, p.note) == (3, 3, "step 3 ✓")
    assert p.fraction == 1
    ledger.release("p")
    assert h.get(timeout=T) == "done"
    assert h.progress is not None  # still readable after the end


def test_async_progress_and_aget(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("state_tasks", "st")
    h = st.async_progress.execute("ap")

    async def main() -> tuple[Any, str]:
        return await h.aget(timeout=T), await h.astate()

    assert asyncio.run(main()) == ("async done", "succeeded")
    p = h.progress
    assert p is not None and (p.done, p.note) == (2, "all")


def test_aget_raises_like_get(app: rpqueue.RPQueue, workers: Workers) -> None:
    workers.start("state_tasks", "st")
    h = st.raises.execute("async side")
    with pytest.raises(TaskFailed):
        asyncio.run(h.aget(timeout=T))
