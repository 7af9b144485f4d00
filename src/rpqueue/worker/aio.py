"""The event loop that runs ``async def`` tasks inside a worker process.

Worker threads keep taking tasks in priority order; an async task they take
is started on this loop and the thread moves on, so up to ``concurrency``
coroutines run at once. A semaphore, acquired by the taking thread, stops
it from taking more while the loop is full.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from ..message import Message
from .runner import FAILED, error_text, log

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
        try:
            try:
                value = await task.function(*message.args, **message.kwargs)
            except Exception as exc:
                runner.log_failure(taken, task, exc)
                await broker.arun(broker.fail_call(taken.queue, taken.key, taken.token,
                                                   error_text(exc), False, FAILED))
                return
            finally:
                runner.untrack(key)
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

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

