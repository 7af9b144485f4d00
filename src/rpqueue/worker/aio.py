"""The event loop that runs ``async def`` tasks inside a worker process.

Worker threads keep taking tasks in priority order; an async task they take
is started on this loop and the thread moves on, so up to ``concurrency``
coroutines run at once. A semaphore, acquired by the taking thread, stops
it from taking more while the loop is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, Any

from ..errors import TaskAborted, TimeLimitExceeded
from ..message import Message
from .runner import log, plan_failure

if TYPE_CHECKING:
    from ..broker import Taken
    from ..task import Task
    from .runner import Runner, Running


class AsyncLane:
    def __init__(self, concurrency: int) -> None:
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rpqueue-asyncio",
                                       daemon=True)
        self.thread.start()

    def submit(self, runner: Runner, taken: Taken, task: Task, message: Message,
               running: Running) -> None:
        self.slots.acquire()
        try:
            asyncio.run_coroutine_threadsafe(self._run(runner, taken, task, message, running),
                                             self.loop)
        except BaseException:
            self.slots.release()
            raise

    async def _run(self, runner: Runner, taken: Taken, task: Task, message: Message,
                   running: Running) -> None:
        broker = runner.app.broker
        key = runner.track(running)
        runner.app.emit("before_task", running)
        try:
            try:
                value = await self._limited(task, message, running)
            except Exception as exc:
                runner.untrack(key)
                runner.app.emit("after_task", running, None, exc)
                runner.log_failure(taken, task, exc)
                plan = plan_failure(task, message, taken, exc)
                if plan.fresh_call is not None:
                    runner.requeue_fresh(task, message, plan.fresh_call)
                    await broker.arun(broker.done_call(taken.queue, taken.key, taken.token,
                                                       "null", 0))
                    return
                code = await broker.arun(broker.fail_call(
                    taken.queue, taken.key, taken.token, plan.error, False, plan.reason,
                    plan.delay, plan.final))
                runner.after_fail(taken, task, plan, code)
                return
            runner.untrack(key)
            runner.app.emit("after_task", running, value, None)
            f = runner.finished(taken, task, value, running)
            recorded = await broker.arun(broker.done_call(taken.queue, taken.key, taken.token,
                                                          f.result, task.save_results))
            runner.report(f, recorded)
        except Exception:
            # Redis trouble while reporting: the lease rules decide what happens
            # to the task; the lane must survive.
            log.exception("reporting async task %s failed", taken.id)
        finally:
            runner.count("in_flight", -1)
            self.slots.release()

    async def _limited(self, task: Task, message: Message, running: Running) -> Any:
        """Run the coroutine under its time limit and abort requests.

        A coroutine is stopped by cancelling it: at its soft limit (or hard
        one, whichever comes first), or at once when aborted (the monitor
        cancels ``running.future``).
        """
        inner = asyncio.ensure_future(task.function(*message.args, **message.kwargs))
        running.future = inner
        limit = task.soft_timeout or task.timeout
        done, _ = await asyncio.wait({inner}, timeout=limit or None)
        if not done:
            inner.cancel()
            with contextlib.suppress(BaseException):
                await inner
            raise TimeLimitExceeded(f"task {running.taskid} ran past its {limit}s limit")
        try:
            return inner.result()
        except asyncio.CancelledError:
            if running.hard_abort:
                raise TaskAborted(f"task {running.taskid} was aborted") from None
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

