"""The event loop that runs ``async def`` tasks inside a worker process.

Worker threads keep taking tasks in priority order; an async task they take
is started on this loop and the thread moves on, so up to ``concurrency``
coroutines run at once. While the loop is full, a thread that handed a task
over waits for a free slot before it takes another: a task is never taken
(and its lease started) only to wait for room, ahead of higher-priority
tasks queued meanwhile.

A thread that hands a task over while the loop has room for several more
takes them from the same queue in one round trip (pipelined takes, at most
PREFETCH), if every task this process knows for that queue is ``async def``:
the queue it just took from was the first non-empty one in its priority
order a moment before, so this is what that many takes in a row would do,
minus the round trips. Without it one thread's sequential takes, not the
loop, would bound how fast a process starts short coroutines. (A queue with
plain tasks is not prefetched from: a plain task run by the thread would
keep the others it took waiting, their leases running.) In the weighted
scheduling mode a batch takes only as many tasks as the queue's share gives
it in a row (worker/scheduling.py).

The loop only runs coroutines. When one ends, its outcome goes to the
lane's reporter thread, which writes the outcomes that came in meanwhile
in one pipelined round trip (the same done/fail scripts as sync tasks, on
the sync client) and runs what follows (retry calls, hooks, logs). That
keeps the per-task cost on the loop low: one worker process runs thousands
of short coroutines a second (issue #9).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import inspect
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import TaskAborted, TimeLimitExceeded
from ..storage.message import Message
from .outcomes import Outcome, TaskRun, write_outcomes
from .state import TASK_EXITS, Reservation, Running, _current, call_kwargs, log

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..storage.calls import Taken
    from ..task import Task
    from .runner import Runner
    from .scheduling import QueuePolicy

# How long a cancelled coroutine may still await (its clean-up) before its
# time limit is recorded as exceeded anyway. Its slot stays taken until it ends.
CANCEL_GRACE = 1.0
# The most outcomes written in one round trip.
REPORT_BATCH = 500
# The most tasks one thread takes in one round trip for the loop.
PREFETCH = 32


class TaskExited(Exception):
    """A coroutine raised SystemExit or KeyboardInterrupt (its failure)."""


async def _contained(coro: Any) -> Any:
    # asyncio re-raises SystemExit and KeyboardInterrupt out of the event
    # loop, which would end the lane for every task on it: here they only
    # fail this task, like any exception.
    try:
        return await coro
    except TASK_EXITS as exc:
        raise TaskExited(f"{type(exc).__name__}: {exc}") from None


class AsyncLane:
    """The event loop of one worker process and its reporter thread.

    ``policy`` and ``served`` (the process's queue policy and its current
    queue list) bound batched takes by the scheduling mode's share.
    """

    def __init__(self, concurrency: int, policy: QueuePolicy | None = None,
                 served: Callable[[], list[str]] | None = None) -> None:
        self.policy = policy
        self.served = served
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.loop = asyncio.new_event_loop()
        # Tasks handed over, and whether the loop was asked to start them.
        self._inbox: collections.deque[TaskRun] = collections.deque()
        self._inbox_lock = threading.Lock()
        self._woken = False
        self._async_only: dict[str, bool] = {}
        # Outcomes for the reporter thread, which is woken once for many.
        self._outcomes: collections.deque[Outcome] = collections.deque()
        self._report_wake: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._report_woken = False
        self.thread = threading.Thread(target=self.loop.run_forever, name="rpqueue-asyncio",
                                       daemon=True)
        self.thread.start()
        self._reporter = threading.Thread(target=self._report_forever,
                                          name="rpqueue-asyncio-report", daemon=True)
        self._reporter.start()

    # -- worker threads ----------------------------------------------------------

    def submit(self, runner: Runner, taken: Taken, task: Task, message: Message,
               running: Running, reservation: Reservation | None = None) -> None:
        """Start an async task on the loop; ``reservation``: a batch of takes
        already holds a slot for it."""
        reserved = reservation is not None and reservation.use()
        if not reserved:
            self.slots.acquire()
        with self._inbox_lock:
            self._inbox.append(TaskRun(runner, taken, task, message, running))
            wake, self._woken = not self._woken, True
        if wake:
            self.loop.call_soon_threadsafe(self._start_handed_over)
        if reserved:
            return
        self._prefetch(runner, taken.queue)
        # Room for the next task before this thread takes it (see the module doc).
        self.slots.acquire()
        self.slots.release()

    def _prefetch(self, runner: Runner, queue_name: str) -> None:
        """Take as many more tasks from ``queue_name`` as there are free slots (at
        most PREFETCH) in one round trip, and run them: async ones are handed over
        into the slots reserved for them, a plain one runs here and is reported."""
        app = runner.app
        if app.store.cluster:
            return  # a pipeline of scripts is for one server
        only = self._async_only.get(queue_name)
        if only is None:
            tasks = [t for t in app.registry.values() if t.queue == queue_name]
            only = self._async_only[queue_name] = bool(tasks) and all(
                inspect.iscoroutinefunction(t.function) for t in tasks)
        if not only:
            return
        limit = PREFETCH
        policy = self.policy
        served: list[str] = []
        if policy is not None and self.served is not None:
            served = self.served()
            limit = policy.prefetch_limit(queue_name, served, PREFETCH)
        n = 0
        while n < limit and self.slots.acquire(blocking=False):
            n += 1
        if not n:
            return
        reservation = Reservation(n)
        try:
            call = app.store.calls.take(queue_name, app.store.running_lease)
            try:
                replies = app.store.pipeline([call] * n)
            except Exception as exc:
                # As for any take whose reply was lost: the lease rules decide
                # what becomes of what it took. The worker's next take reports
                # the trouble.
                log.debug("prefetching from %s failed: %s", queue_name, exc)
                return
            # NOSCRIPT and the like: that take did not run. Every other reply
            # counts: a task queued between two of these takes comes after
            # an empty one.
            takes = [r.taken for r in replies if not isinstance(r, Exception)]
            if policy is not None and self.served is not None:
                got_n = sum(1 for t in takes if t is not None)
                policy.prefetched(queue_name, served, got_n, got_n < len(takes))
            for got in takes:
                if got is None:
                    continue
                try:
                    finished = runner.run(got, reservation)
                    if finished is not None:
                        runner.finish(finished)
                except Exception:
                    # Never abandon the other tasks taken here, nor fail the
                    # hand-over of the task that came first.
                    log.exception("running task %s taken in a batch failed", got.id)
        finally:
            # Slots reserved for takes that came back empty, or for tasks
            # that were not handed over after all (dead-lettered on decoding).
            for _ in range(reservation.left):
                self.slots.release()

    # -- the loop --------------------------------------------------------------

    def _start_handed_over(self) -> None:
        """Start every task handed over since the last wake-up (one wake-up for many)."""
        with self._inbox_lock:
            runs, self._woken = list(self._inbox), False
            self._inbox.clear()
        for run in runs:
            try:
                self._start(run)
            except Exception:
                log.exception("starting async task %s failed", run.taken.id)
                self._outcome(run, None, RuntimeError("the task could not be started"))

    def _start(self, run: TaskRun) -> None:
        running, task = run.running, run.task
        # The loop's thread, so the monitor leaves this run's limits to the loop
        # (an exception raised into the thread that took it would hit that
        # thread's next take); started when the coroutine starts.
        running.thread = threading.get_ident()
        running.started = time.monotonic()
        # The coroutine runs in a context of its own in which it is the current task.
        app = run.runner.app
        ctx = contextvars.copy_context()
        ctx.run(_current.set, running)
        if app.hooks:
            ctx.run(app.emit, "before_task", running)
        try:
            coro = _contained(task.function(*run.message.args,
                                            **call_kwargs(task.function, run.message.kwargs)))
            if sys.version_info >= (3, 11):
                inner = self.loop.create_task(coro, context=ctx)
            else:
                inner = ctx.run(self.loop.create_task, coro)
        except Exception as exc:  # e.g. the arguments do not fit the function
            app.emit("after_task", running, None, exc)
            self._outcome(run, None, exc)
            return
        run.inner = running.future = inner
        # Registered with the monitor only now that there is a future to cancel
        # (an abort must never be raised into the loop's thread).
        key = run.runner.track(running)
        limit = task.soft_timeout or task.timeout
        if limit:
            run.timers.append(self.loop.call_later(limit, self._expire, run))
        inner.add_done_callback(lambda _: self._ended(run, key))

    def _expire(self, run: TaskRun) -> None:
        """The time limit: cancel the coroutine; its clean-up gets CANCEL_GRACE seconds."""
        if run.inner is None or run.inner.done():
            return
        run.expired = True
        run.inner.cancel()
        run.timers.append(self.loop.call_later(CANCEL_GRACE, self._past_grace, run))

    def _past_grace(self, run: TaskRun) -> None:
        if run.inner is None or run.inner.done():
            return
        task = run.task
        log.error("task %s (%s) still runs %ss after its cancellation at its time limit; "
                  "recording it as failed", task.name, run.running.taskid, CANCEL_GRACE)
        run.reported = True
        self._outcome(run, None, self._limit_error(run), release=False)

    @staticmethod
    def _limit_error(run: TaskRun) -> TimeLimitExceeded:
        limit = run.task.soft_timeout or run.task.timeout
        return TimeLimitExceeded(f"task {run.running.taskid} ran past its {limit}s limit")

    def _ended(self, run: TaskRun, key: int) -> None:
        for timer in run.timers:
            timer.cancel()
        run.runner.untrack(key)
        inner, running = run.inner, run.running
        assert inner is not None
        value: Any = None
        error: Exception | None = None
        if run.expired:
            if not inner.cancelled():
                inner.exception()  # retrieved: the time limit is what is recorded
            error = self._limit_error(run)
        elif inner.cancelled():
            if running.hard_abort:
                error = TaskAborted(f"task {running.taskid} was aborted")
            else:
                # Cancelled by something else than rpqueue (it awaited a
                # cancelled future): a failure like any other.
                error = RuntimeError(f"task {running.taskid} was cancelled")
        else:
            exc = inner.exception()
            if exc is None:
                value = inner.result()
            elif isinstance(exc, Exception):
                error = exc
            else:  # a BaseException the loop did not re-raise: still a failure
                error = RuntimeError(f"task {running.taskid} raised {exc!r}")
        if run.reported:
            self.slots.release()  # its failure was written when its grace ran out
            return
        if run.runner.app.hooks:
            run.runner.app.emit("after_task", running, value, error)
        self._outcome(run, value, error)

    def _outcome(self, run: TaskRun, value: Any, error: Exception | None,
                 release: bool = True) -> None:
        if release:
            self.slots.release()
        self._outcomes.append(Outcome(run, value, error))
        if not self._report_woken:
            self._report_woken = True
            self._report_wake.put(True)

    # -- the reporter thread -----------------------------------------------------

    def _report_forever(self) -> None:
        while self._report_wake.get():
            # Cleared before reading: an outcome added from here on wakes us again.
            self._report_woken = False
            while self._outcomes:
                batch: list[Outcome] = []
                while self._outcomes and len(batch) < REPORT_BATCH:
                    batch.append(self._outcomes.popleft())
                try:
                    write_outcomes(batch)
                except Exception:
                    # Redis trouble while reporting: the lease rules decide what
                    # happens to these tasks; the lane must survive.
                    log.exception("reporting %d async task(s) failed", len(batch))
                finally:
                    for outcome in batch:
                        outcome.run.runner.count("in_flight", -1)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._report_wake.put(False)

