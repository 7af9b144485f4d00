"""The event loop that runs ``async def`` tasks inside a worker process.

Worker threads keep taking tasks in priority order; an async task they take
is started on this loop and the thread moves on, so up to ``concurrency``
coroutines run at once. While the loop is full, a thread that handed a task
over waits for a free slot before it takes another: a task is never taken
(and its lease started) only to wait for room, ahead of higher-priority
tasks queued meanwhile.

Per-task overhead is kept low for throughput (issue #9: thousands of short
coroutines a second from one process): tasks handed over while the loop is
busy wake it once, not once each, and the outcomes of coroutines that end
together are written in one pipelined round trip (the same scripts, see
``Reporter``).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import NoScriptError, ResponseError

from ..errors import TaskAborted, TimeLimitExceeded, translate
from ..message import Message
from .runner import _current, log, plan_failure

if TYPE_CHECKING:
    from ..app import RPQueue
    from ..broker import Call, Taken
    from ..task import Task
    from .runner import Runner, Running

T = TypeVar("T")

# How long a cancelled coroutine may still await (its clean-up) before its
# time limit is recorded as exceeded anyway. Its slot stays taken until it ends.
CANCEL_GRACE = 1.0


# Tasks the loop runs for us: the loop itself keeps only weak references.
_tasks: set[asyncio.Future[Any]] = set()


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a coroutine nobody awaits any more (no warning)."""
    if not future.cancelled():
        future.exception()


class Reporter:
    """Runs script calls (done, fail) on the loop, pipelining those that come together.

    Every call made during one pass of the loop is sent in one pipeline when
    the pass ends, each as the same EVALSHA that ``Broker.arun`` sends; a
    lone call goes through ``arun`` itself. On Redis Cluster every call goes
    through ``arun`` (its keys may live on different nodes).
    """

    def __init__(self, app: RPQueue) -> None:
        self.app = app
        self.pending: list[tuple[Call[Any], asyncio.Future[Any]]] = []
        self.batching = not app.cluster

    async def run(self, call: Call[T]) -> T:
        if not self.batching:
            return await self.app.broker.arun(call)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self.pending:
            loop.call_soon(self._flush)
        self.pending.append((call, future))
        return await future

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if len(batch) == 1:
            call, future = batch[0]
            _spawn(self._one(call, future))
        else:
            _spawn(self._many(batch))

    async def _one(self, call: Call[Any], future: asyncio.Future[Any]) -> None:
        try:
            future.set_result(await self.app.broker.arun(call))
        except Exception as exc:
            future.set_exception(exc)

    async def _many(self, batch: list[tuple[Call[Any], asyncio.Future[Any]]]) -> None:
        try:
            pipe = self.app.aclient().pipeline(transaction=False)
            for call, _ in batch:
                pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys,
                                     *call.args)
            replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        for (call, future), reply in zip(batch, replies):
            if isinstance(reply, NoScriptError):
                # Not run (Redis lost its scripts): arun loads it and runs it.
                _spawn(self._one(call, future))
            elif isinstance(reply, ResponseError):
                future.set_exception(translate(reply, call.what or call.script.name))
            elif isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                try:
                    future.set_result(call.parse(reply))
                except Exception as exc:
                    future.set_exception(exc)


class AsyncLane:
    def __init__(self, concurrency: int) -> None:
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.loop = asyncio.new_event_loop()
        self.reporter: Reporter | None = None
        # Tasks handed over, and whether the loop was asked to start them.
        self._inbox: collections.deque[tuple[Any, ...]] = collections.deque()
        self._inbox_lock = threading.Lock()
        self._woken = False
        self.thread = threading.Thread(target=self.loop.run_forever, name="rpqueue-asyncio",
                                       daemon=True)
        self.thread.start()

    def submit(self, runner: Runner, taken: Taken, task: Task, message: Message,
               running: Running) -> None:
        self.slots.acquire()
        try:
            with self._inbox_lock:
                self._inbox.append((runner, taken, task, message, running))
                wake, self._woken = not self._woken, True
            if wake:
                self.loop.call_soon_threadsafe(self._start_handed_over)
        except BaseException:
            self.slots.release()
            raise
        # Room for the next task before this thread takes it (see the module doc).
        self.slots.acquire()
        self.slots.release()

    def _start_handed_over(self) -> None:
        """On the loop: start every task handed over since the last wake-up."""
        with self._inbox_lock:
            items, self._woken = list(self._inbox), False
            self._inbox.clear()
        for item in items:
            _spawn(self._run(*item))

    async def _report(self, runner: Runner, call: Call[T]) -> T:
        if self.reporter is None:
            self.reporter = Reporter(runner.app)
        return await self.reporter.run(call)

    async def _run(self, runner: Runner, taken: Taken, task: Task, message: Message,
                   running: Running) -> None:
        broker = runner.app.broker
        # The loop's thread, so the monitor leaves this run's limits to the loop
        # (an exception raised into the thread that took it would hit that
        # thread's next take); started when the coroutine starts.
        running.thread = threading.get_ident()
        running.started = time.monotonic()
        inner: asyncio.Future[Any] | None = None
        key: int | None = None
        try:
            try:
                _current.set(running)
                runner.app.emit("before_task", running)
                # Created in this context, so the coroutine sees current_task();
                # registered with the monitor only once there is a future to
                # cancel (an abort must never raise into the loop's thread).
                inner = asyncio.ensure_future(task.function(*message.args, **message.kwargs))
                running.future = inner
                key = runner.track(running)
                value = await self._limited(inner, task, running)
            except Exception as exc:
                if key is not None:
                    runner.untrack(key)
                    key = None
                runner.app.emit("after_task", running, None, exc)
                runner.log_failure(taken, task, exc)
                plan = plan_failure(task, message, taken, exc)
                if plan.fresh_call is not None:
                    await task.aretry(*message.args, delay=plan.fresh_call, **message.kwargs)
                    runner.app.emit("on_retry", task, message.id, plan.fresh_call)
                    await self._report(runner, broker.done_call(
                        taken.queue, taken.key, taken.token, "null", 0))
                    return
                code = await self._report(runner, broker.fail_call(
                    taken.queue, taken.key, taken.token, plan.error, False, plan.reason,
                    plan.delay, plan.final))
                runner.after_fail(taken, task, plan, code)
                return
            runner.untrack(key)
            key = None
            runner.app.emit("after_task", running, value, None)
            f = runner.finished(taken, task, value, running)
            recorded = await self._report(runner, broker.done_call(
                taken.queue, taken.key, taken.token, f.result, task.save_results))
            runner.report(f, recorded)
        except Exception:
            # Redis trouble while reporting: the lease rules decide what happens
            # to the task; the lane must survive.
            log.exception("reporting async task %s failed", taken.id)
        finally:
            if key is not None:
                runner.untrack(key)
            runner.count("in_flight", -1)
            if inner is not None and not inner.done():
                # Past its grace after a cancellation: the slot stays taken
                # until the coroutine really ends.
                inner.add_done_callback(lambda _: self.slots.release())
            else:
                self.slots.release()

    async def _limited(self, inner: asyncio.Future[Any], task: Task, running: Running) -> Any:
        """Await the coroutine under its time limit and abort requests.

        A coroutine is stopped by cancelling it: at its soft limit (or hard
        one, whichever comes first), or at once when aborted (the monitor
        cancels ``running.future``).
        """
        limit = task.soft_timeout or task.timeout
        if not limit:
            try:
                return await inner
            except asyncio.CancelledError:
                return self._cancelled(running)
        done, _ = await asyncio.wait({inner}, timeout=limit)
        if not done:
            inner.cancel()
            # Clean-up may still await; a coroutine that ignores the
            # cancellation is recorded as failed after the grace period.
            await asyncio.wait({inner}, timeout=CANCEL_GRACE)
            if not inner.done():
                inner.add_done_callback(_consume)
                log.error("task %s (%s) still runs %ss after its cancellation at its time "
                          "limit; recording it as failed", task.name, running.taskid,
                          CANCEL_GRACE)
            elif not inner.cancelled():
                inner.exception()  # retrieved: the time limit is what is recorded
            raise TimeLimitExceeded(f"task {running.taskid} ran past its {limit}s limit")
        try:
            return inner.result()
        except asyncio.CancelledError:
            return self._cancelled(running)

    @staticmethod
    def _cancelled(running: Running) -> Any:
        if running.hard_abort:
            raise TaskAborted(f"task {running.taskid} was aborted") from None
        # Cancelled by something else than rpqueue (the coroutine awaited a
        # cancelled future): a failure like any other, never a lost report.
        raise RuntimeError(f"task {running.taskid} was cancelled") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
