"""Issue #9: ``async def`` tasks under real worker processes.

Every worker here is ``python -m rpqueue.run --module=<asyncmods module>
--async-concurrency N``, started in tests/integration/asyncmods and stopped
at teardown. Tasks report through the ledger (aio_ledger): concurrency is
shown by overlapping start/end records, never by how long a run took.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_mixed
import aio_tasks
import pytest
from aio_ledger import LEDGER, release_key
from harness import WorkerProcess, wait_until
from support.paths import ASYNCMODS

import rpqueue
from rpqueue import admin
from rpqueue.task import TaskRef


class AioWorkers:
    """``python -m rpqueue.run`` workers in asyncmods/, all stopped at teardown."""

    def __init__(self, redis_url: str, logdir: Path) -> None:
        self.redis_url = redis_url
        self.logdir = logdir
        self.started: list[WorkerProcess] = []

    def start(self, module: str, *queues: str, concurrency: int = 100, threads: int = 1,
              args: tuple[str, ...] = ()) -> WorkerProcess:
        argv = [sys.executable, "-m", "rpqueue.run", f"--module={module}", "--url",
                self.redis_url, "--loglevel", "INFO", f"--async-concurrency={concurrency}",
                f"--threads={threads}", *args, *queues]
        worker = WorkerProcess(argv, self.logdir, f"worker{len(self.started)}", cwd=ASYNCMODS)
        self.started.append(worker)
        worker.wait_log("serving")
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


@pytest.fixture
def aio(redis_url: str, tmp_path: Path) -> Iterator[AioWorkers]:
    workers = AioWorkers(redis_url, tmp_path / "workers")
    try:
        yield workers
    finally:
        workers.stop_all()


class AioLedger:
    def __init__(self, client: Any) -> None:
        self.client = client

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(LEDGER, 0, -1)]

    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries()
                if (event is None or e["event"] == event)
                and all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, count: int, event: str | None = None, timeout: float = 15,
                 **match: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = wait_until(
            lambda: found if len(found := self.events(event, **match)) >= count else None,
            timeout,
            message=lambda: f"{count} ledger entries {event} {match}; have {self.entries()}")
        return found

    def release(self, tag: str) -> None:
        self.client.rpush(release_key(tag), "1")


@pytest.fixture
def aled(rcli: Any) -> AioLedger:
    return AioLedger(rcli)


def max_overlap(starts: list[float], ends: list[float]) -> int:
    """The most intervals open at one instant (an end before a start at a tie)."""
    points = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends],
                    key=lambda p: (p[0], p[1]))
    best = now = 0
    for _, step in points:
        now += step
        best = max(best, now)
    return best


def intervals(aled: AioLedger, prefix: str) -> tuple[list[float], list[float]]:
    starts = {e["tag"]: e["t"] for e in aled.events("start") if e["tag"].startswith(prefix)}
    ends = {e["tag"]: e["t"] for e in aled.events("end") if e["tag"].startswith(prefix)}
    assert starts.keys() == ends.keys()
    for tag in starts:
        assert starts[tag] <= ends[tag]
    return list(starts.values()), list(ends.values())


def started_order(events: list[dict[str, Any]]) -> list[str]:
    """Tags in the order their coroutines started (one worker process)."""
    assert len({e["pid"] for e in events}) == 1
    return [e["tag"] for e in sorted(events, key=lambda e: e["seq"])]


def dead(app: rpqueue.RPQueue, queue: str) -> list[dict[str, Any]]:
    return admin.dead_records(app.ctx, [queue])


# -- concurrency -------------------------------------------------------------


def test_async_tasks_run_concurrently(app: rpqueue.RPQueue, aio: AioWorkers,
                                      aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio", concurrency=100)
    handles = [aio_tasks.sleeper.execute(f"c{i}", 0.5) for i in range(50)]
    aled.wait_for(50, "end", timeout=20)
    starts, ends = intervals(aled, "c")
    assert len(starts) == 50
    # All 50 half-second sleeps were in progress at one instant: one worker
    # process, one thread, running them on its event loop.
    assert max_overlap(starts, ends) == 50
    wait_until(lambda: all(h.status == "done" for h in handles), message="all recorded done")
    assert {e["pid"] for e in aled.events("start")} == {worker.pid}
    assert "Traceback" not in worker.stderr()


def test_async_concurrency_is_bounded(app: rpqueue.RPQueue, aio: AioWorkers,
                                      aled: AioLedger) -> None:
    aio.start("aio_tasks", "aio", concurrency=4)
    for i in range(12):
        aio_tasks.sleeper.execute(f"b{i}", 0.2)
    aled.wait_for(12, "end")
    starts, ends = intervals(aled, "b")
    assert max_overlap(starts, ends) == 4


# -- priorities and delays ---------------------------------------------------


def test_priorities_across_queues(app: rpqueue.RPQueue, aio: AioWorkers,
                                  aled: AioLedger) -> None:
    # Queued before the worker starts, low priority first; one coroutine at a
    # time so that the order of starts is the order of takes.
    for i in range(5):
        aio_tasks.order_lo.execute(f"lo{i}")
    for i in range(5):
        aio_tasks.order_hi.execute(f"hi{i}")
    aio.start("aio_tasks", "aio-hi", "aio-lo", concurrency=1)
    order = started_order(aled.wait_for(10, "order"))
    assert order == [f"hi{i}" for i in range(5)] + [f"lo{i}" for i in range(5)]


def test_priorities_hold_with_batched_takes(app: rpqueue.RPQueue, aio: AioWorkers,
                                           aled: AioLedger) -> None:
    """With room in the loop, a thread takes several tasks of one queue per round
    trip: never from a lower-priority queue while a higher one has tasks."""
    for i in range(40):
        aio_tasks.order_lo.execute(f"lo{i}")
    for i in range(40):
        aio_tasks.order_hi.execute(f"hi{i}")
    aio.start("aio_tasks", "aio-hi", "aio-lo", concurrency=100)
    order = started_order(aled.wait_for(80, "order"))
    assert order == [f"hi{i}" for i in range(40)] + [f"lo{i}" for i in range(40)]


def test_tasks_queued_during_batched_takes_all_run(app: rpqueue.RPQueue, aio: AioWorkers,
                                                   aled: AioLedger) -> None:
    """Tasks queued while the worker takes in batches: a take that found the queue
    empty may be followed, in the same batch, by one that took a task."""
    aio.start("aio_tasks", "aio", concurrency=100)
    for _ in range(3):
        aio_tasks.chain.execute(100)  # each queues its successor as it starts
    runs = aled.wait_for(303, "chain", timeout=20)
    assert sorted(r["left"] for r in runs) == sorted(list(range(101)) * 3)
    handles = []
    for i in range(300):
        handles.append(aio_tasks.sleeper.execute(f"q{i}", 0.005))
        if i % 20 == 0:
            time.sleep(0.002)  # the worker keeps catching up with an empty queue
    aled.wait_for(300, "end", timeout=20)
    wait_until(lambda: all(h.status == "done" for h in handles), message="all recorded")


def test_priority_holds_while_the_lane_is_full(app: rpqueue.RPQueue, aio: AioWorkers,
                                               aled: AioLedger) -> None:
    """A full lane must not make the worker take (and hold) a task it cannot start:
    a low-priority task taken while the lane is full would run before
    high-priority tasks queued after it."""
    aio.start("aio_tasks", "aio", "aio-hi", "aio-lo", concurrency=1)
    aio_tasks.gated.execute("gate")
    aled.wait_for(1, "start", tag="gate")
    aio_tasks.order_lo.execute("lo")
    time.sleep(0.3)  # an eager worker would take "lo" now and wait for a slot with it
    aio_tasks.order_hi.execute("hi")
    aled.release("gate")
    order = started_order(aled.wait_for(2, "order"))
    assert order == ["hi", "lo"]


def test_delay(app: rpqueue.RPQueue, aio: AioWorkers, aled: AioLedger) -> None:
    aio.start("aio_tasks", "aio")
    before = time.time()
    et = aio_tasks.sleeper.execute("late", 0, delay=1.5)
    assert et.status == "early"
    aio_tasks.sleeper.execute("now", 0)
    [now] = aled.wait_for(1, "end", tag="now")
    assert aled.events("start", tag="late") == []
    [late] = aled.wait_for(1, "start", tag="late")
    assert late["t"] >= before + 1.4
    assert now["t"] < late["t"]


# -- leases, retries, limits, aborts -------------------------------------------


def test_vis_timeout_expiry_reruns_then_dead_letters(app: rpqueue.RPQueue, aio: AioWorkers,
                                                     aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio")
    et = aio_tasks.hang.execute("h", 3)
    starts = aled.wait_for(2, "hang-start", tag="h")
    # The first run still sleeps; its lease ran out after 1 s and the task was
    # handed out again, with one attempt fewer.
    assert [s["left"] for s in starts] == [2, 1]
    assert starts[1]["t"] - starts[0]["t"] >= 0.9
    [record] = wait_until(lambda: dead(app, "aio"), message="dead-lettered")
    assert record["id"] == et.taskid
    assert record["reason"] == "visibility timeout expired on the last attempt"
    # Both runs end late: neither may record the task (it is dead), the worker
    # just logs that their leases were lost.
    aled.wait_for(2, "hang-end", tag="h")
    worker.wait_log("finished after its lease was lost", count=2)
    assert app.client.hget(app.keys.queue("aio").stats, "done") in (None, b"0")


def test_manual_retry_with_sync_retry(app: rpqueue.RPQueue, aio: AioWorkers,
                                      aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio")
    aio_tasks.manual_sync.execute("ms")
    runs = aled.wait_for(3, "manual", tag="ms")
    assert [r["left"] for r in runs] == [3, 2, 1]
    time.sleep(0.3)
    assert len(aled.events("manual", tag="ms")) == 3
    assert "Traceback" not in worker.stderr()


def test_manual_retry_with_aretry(app: rpqueue.RPQueue, aio: AioWorkers,
                                  aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio")
    aio_tasks.manual_async.execute("ma")
    runs = aled.wait_for(3, "manual", tag="ma")
    assert [r["left"] for r in runs] == [3, 2, 1]
    queued = aled.wait_for(2, "manual-queued", tag="ma")
    assert [q["id"] for q in runs[1:]] == [q["again"] for q in queued]
    time.sleep(0.3)
    assert len(aled.events("manual", tag="ma")) == 3
    assert "Traceback" not in worker.stderr()


def test_retry_on_with_backoff_vis_timeout(app: rpqueue.RPQueue, aio: AioWorkers,
                                           aled: AioLedger) -> None:
    aio.start("aio_tasks", "aio")
    et = aio_tasks.flaky_vis.execute("fv")
    runs = aled.wait_for(3, "flaky", tag="fv")
    assert [r["left"] for r in runs] == [3, 2, 1]
    # backoff 0.4 * 2**(n-1), jittered down to half: >= 0.2 s, then >= 0.4 s
    assert runs[1]["t"] - runs[0]["t"] >= 0.19
    assert runs[2]["t"] - runs[1]["t"] >= 0.39
    [record] = wait_until(lambda: dead(app, "aio"), message="dead-lettered")
    assert record["id"] == et.taskid
    assert record["reason"] == "task raised an exception"
    assert "Flaky: fv failed with 1 left" in record["error"]


def test_retry_on_with_backoff_plain_task(app: rpqueue.RPQueue, aio: AioWorkers,
                                          aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio")
    aio_tasks.flaky_plain.execute("fp")
    runs = aled.wait_for(3, "flaky", tag="fp")
    assert [r["left"] for r in runs] == [3, 2, 1]
    assert runs[1]["t"] - runs[0]["t"] >= 0.19
    assert runs[2]["t"] - runs[1]["t"] >= 0.39
    # Each retry is a new call: the third one succeeded.
    last = runs[2]["id"]
    wait_until(lambda: rpqueue.EnqueuedTask(app, "", "aio", last, []).status == "done",
               message="third call done")
    assert worker.stderr().count("raised") == 2


def test_hard_abort_cancels_the_coroutine(app: rpqueue.RPQueue, aio: AioWorkers,
                                          aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio")
    other = aio_tasks.sleeper.execute("other", 2)
    et = aio_tasks.abortable.execute("ab")
    [start] = aled.wait_for(1, "start", tag="ab")
    assert start["left"] == 3
    assert et.abort(hard=True) is True
    aled.wait_for(1, "cancelled", tag="ab", timeout=5)
    [record] = wait_until(lambda: dead(app, "aio"), message="dead-lettered")
    assert record["id"] == et.taskid
    assert record["reason"] == "aborted"
    assert "TaskAborted" in record["error"]
    # Not retried although attempts were left; the other coroutine went on.
    aled.wait_for(1, "end", tag="other")
    wait_until(lambda: other.status == "done", message="the other task recorded done")
    assert len(aled.events("start", tag="ab")) == 1
    assert aled.events("not-aborted") == []
    assert "aborting task aio_tasks.abortable" in worker.stderr()


def test_cooperative_abort(app: rpqueue.RPQueue, aio: AioWorkers, aled: AioLedger) -> None:
    aio.start("aio_tasks", "aio")
    et = aio_tasks.cooperative.execute("coop")
    aled.wait_for(1, "start", tag="coop")
    assert et.abort() is True
    aled.wait_for(1, "saw-abort", tag="coop", timeout=5)
    wait_until(lambda: et.status == "done", message="returned")


def test_time_limit_cancels_the_coroutine(app: rpqueue.RPQueue, aio: AioWorkers,
                                          aled: AioLedger) -> None:
    worker = aio.start("aio_limits", "aio-limits")
    et = rpqueue.known_tasks["aio_limits.too_slow"].execute("slow")
    [start] = aled.wait_for(1, "start", tag="slow")
    [cancelled] = aled.wait_for(1, "cancelled", tag="slow", timeout=5)
    assert 0.4 <= cancelled["t"] - start["t"] < 2
    [record] = wait_until(lambda: dead(app, "aio-limits"), message="dead-lettered")
    assert record["id"] == et.taskid
    assert record["reason"] == "time limit exceeded"
    assert "TimeLimitExceeded" in record["error"]
    assert aled.events("not-stopped") == []
    # The event loop cancelled it: the same process goes on, and nothing was
    # raised into a worker thread.
    rpqueue.known_tasks["aio_limits.quick"].execute("q")
    [quick] = aled.wait_for(1, "quick", tag="q")
    assert quick["pid"] == start["pid"]
    time.sleep(0.3)
    assert "worker thread error" not in worker.stderr()
    assert "restarting this worker" not in worker.stderr()


def test_time_limit_cleanup_after_cancel_stays_on_the_loop(
        app: rpqueue.RPQueue, aio: AioWorkers, aled: AioLedger) -> None:
    """A coroutine may await in its clean-up after the cancellation; the thread
    limits (exception raised into a thread, stuck-task exit) are not for it."""
    worker = aio.start("aio_limits", "aio-limits")
    et = rpqueue.known_tasks["aio_limits.slow_cleanup"].execute("sc")
    [start] = aled.wait_for(1, "start", tag="sc")
    aled.wait_for(1, "cleaned-up", tag="sc", timeout=10)
    [record] = wait_until(lambda: dead(app, "aio-limits"), message="dead-lettered")
    assert record["id"] == et.taskid
    assert record["reason"] == "time limit exceeded"
    assert "TimeLimitExceeded" in record["error"]
    rpqueue.known_tasks["aio_limits.quick"].execute("q2")
    [quick] = aled.wait_for(1, "quick", tag="q2")
    assert quick["pid"] == start["pid"]  # the process was not replaced
    assert "worker thread error" not in worker.stderr()
    assert "stuck past its time limit" not in worker.stderr()


# -- saved results, periodic, mixing, current_task ----------------------------


def test_saved_results_awaited(app: rpqueue.RPQueue, aio: AioWorkers) -> None:
    import asyncio

    aio.start("aio_tasks", "aio")

    async def main() -> list[Any]:
        handles = [await aio_tasks.compute.aexecute(i, i) for i in range(10)]
        return [await h.await_result(timeout=10) for h in handles]

    assert asyncio.run(main()) == [{"sum": 2 * i, "args": [i, i]} for i in range(10)]


def test_periodic_async_task(app: rpqueue.RPQueue, aio: AioWorkers, aled: AioLedger) -> None:
    worker = aio.start("aio_periodic", "aio-periodic")
    ticks = aled.wait_for(2, "tick", timeout=10)
    assert {t["pid"] for t in ticks} == {worker.pid}
    assert ticks[1]["t"] - ticks[0]["t"] >= 0.5  # one run per period, not a burst
    assert {t["queue"] for t in ticks} == {"aio-periodic"}
    # The scheduler knows both async schedules.
    registry = app.read_registry()
    assert registry["aio.tick"]["schedule"] and registry["aio.cron"]["schedule"]
    assert "Traceback" not in worker.stderr()


def test_sync_and_async_tasks_on_one_worker(app: rpqueue.RPQueue, aio: AioWorkers,
                                            aled: AioLedger) -> None:
    worker = aio.start("aio_mixed", "aio", threads=2, concurrency=50)
    # One thread is held by a sync task until released; meanwhile the other
    # thread hands async tasks to the loop and runs sync ones too.
    aio_mixed.sync_gate.execute("gate")
    aled.wait_for(1, "sync-start", tag="gate")
    async_handles = [aio_tasks.sleeper.execute(f"m{i}", 0.3) for i in range(20)]
    sync_handles = [aio_mixed.sync_work.execute(f"s{i}", 0.05) for i in range(3)]
    aled.wait_for(20, "end", timeout=15)
    aled.wait_for(3, "sync-end", timeout=15)
    assert aled.events("sync-end", tag="gate") == []  # still held throughout
    starts, ends = intervals(aled, "m")
    assert max_overlap(starts, ends) >= 10
    assert [h.result for h in sync_handles] == [f"sync s{i}" for i in range(3)]
    # current_task() in a sync task is that task, as in a coroutine.
    for h in sync_handles:
        [start] = aled.events("sync-start", id=h.taskid)
        assert start["current"] == h.taskid
    aled.release("gate")
    aled.wait_for(1, "sync-end", tag="gate")
    wait_until(lambda: all(h.status == "done" for h in async_handles), message="all done")
    assert {e["pid"] for e in aled.entries()} == {worker.pid}
    assert "Traceback" not in worker.stderr()


def test_current_task_is_per_coroutine(app: rpqueue.RPQueue, aio: AioWorkers,
                                       aled: AioLedger) -> None:
    aio.start("aio_tasks", "aio", concurrency=30)
    handles = {f"w{i}": aio_tasks.whoami.execute(f"w{i}", 0.05 + (i % 7) * 0.03)
               for i in range(30)}
    seen = aled.wait_for(30, "whoami")
    after = aled.wait_for(30, "whoami-after")
    for record in seen:
        expected = handles[record["tag"]].taskid
        # anote() fills "id" from current_task() too.
        assert record["before"] == record["middle"] == record["id"] == expected
    for record in after:
        assert record["after"] == handles[record["tag"]].taskid


def test_bad_arguments_fail_the_task_not_the_lane(app: rpqueue.RPQueue, aio: AioWorkers,
                                                  aled: AioLedger) -> None:
    worker = aio.start("aio_tasks", "aio")
    # Queued by name: sleeper.execute() would refuse the call in this process.
    by_name = TaskRef(app, aio_tasks.sleeper.name, options=aio_tasks.sleeper.task_options)
    bad = by_name.execute("only-a-tag")  # the coroutine cannot even be created
    good = aio_tasks.sleeper.execute("after", 0)
    aled.wait_for(1, "end", tag="after")
    wait_until(lambda: bad.status == "done" and good.status == "done", message="both ended")
    stats = app.client.hgetall(app.keys.queue("aio").stats)
    assert int(stats[b"failed"]) == 1 and int(stats[b"done"]) == 1
    assert "missing 1 required positional argument: 'seconds'" in worker.stderr()


def test_outcome_written_once_redis_is_back(app: rpqueue.RPQueue, aio: AioWorkers,
                                            fresh_redis: Any) -> None:
    """A coroutine that ends while Redis is down: its outcome is written when Redis
    is back (the reporter retries), not lost until the lease runs out."""
    import signal

    rpqueue.set_redis_url(fresh_redis.url)
    aio.redis_url = fresh_redis.url
    worker = aio.start("aio_tasks", "aio")
    ledger = AioLedger(fresh_redis.client(decode_responses=True))
    et = aio_tasks.slow_result.execute("outage", 1.0)
    [start] = ledger.wait_for(1, "start", tag="outage")
    fresh_redis.kill(signal.SIGKILL)
    # Down when the coroutine ends (about 1 s after its start), up again 0.4 s later.
    time.sleep(max(0.0, start["t"] + 1.4 - time.time()))
    fresh_redis.restart()
    app.client.connection_pool.disconnect()
    wait_until(lambda: et.status == "done", timeout=15, message="recorded done")
    assert et.result == "outage"
    assert "retrying" in worker.stderr()
    assert worker.alive()
