"""Running one taken task: decode, call, report the outcome.

Plain functions run in the worker thread that took them. ``async def``
tasks are handed to the process's event loop (see aio.py), so one worker
runs many of them at once while its threads go on taking tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import logging
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SoftTimeLimitExceeded, TaskAborted, TimeLimitExceeded
from ..storage.calls import Taken
from ..storage.message import MalformedMessage, Message, decode, encode_result
from ..storage.wire import FailMode, FailOutcome

if TYPE_CHECKING:
    from ..context import Context
    from ..task import Task
    from .aio import AsyncLane

log = logging.getLogger("rpqueue.worker")


def _safe(value: str, limit: int = 200) -> str:
    """Task names and errors go to logs escaped: no control characters, bounded length."""
    out = value.encode("unicode_escape").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


@dataclass
class Running:
    """The task being run, as seen by the task itself (``rpqueue.current_task()``)."""

    app: Context
    queue: str
    taskid: str
    token: str
    task: Task
    started: float = field(default_factory=time.monotonic)
    # Set when someone asked to abort this run (EnqueuedTask.abort): a
    # long task should check it and stop.
    abort_requested: bool = False
    hard_abort: bool = False
    thread: int = field(default_factory=threading.get_ident)
    # Which limits the monitor already enforced (see limits.py).
    fired: set[str] = field(default_factory=set)
    # The asyncio future of an async task, which an abort cancels.
    future: asyncio.Future[Any] | None = None

    def extend(self, seconds: float) -> bool:
        """Keep the lease for ``seconds`` more from now; False if it was already lost."""
        return self.app.store.run(self.app.store.calls.extend(self.queue, self.taskid, self.token,
                                                              seconds)) > 0


@dataclass
class Finished:
    """A task that ran to completion, its outcome not yet written to Redis.

    The worker writes it together with its next take when it can (one
    round trip for both), else on its own.
    """

    taken: Taken
    task: Task
    result: str
    took: float


# A context variable, not a thread-local: each asyncio task has its own.
_current: contextvars.ContextVar[Running | None] = contextvars.ContextVar(
    "rpqueue_current_task", default=None)


def current_task() -> Running | None:
    """The task running here (thread or coroutine), or None outside a task."""
    return _current.get()


FAILED = "task raised an exception"


@dataclass
class FailurePlan:
    """What to record for a task that raised: decided once, for sync and async runs."""

    error: str
    reason: str = FAILED
    final: bool = False  # no further attempt whatever is left
    delay: float = 0.0  # backoff before the next attempt (visibility-timeout tasks)
    fresh_call: float | None = None  # 0/1 task: queue a new call after this many seconds

    @property
    def mode(self) -> FailMode:
        return FailMode.FINAL if self.final else FailMode.RETRY


def plan_failure(task: Task, message: Message, taken: Taken, exc: BaseException) -> FailurePlan:
    error = error_text(exc)
    if isinstance(exc, TaskAborted):
        return FailurePlan(error, "aborted", final=True)
    reason = "time limit exceeded" if isinstance(
        exc, (TimeLimitExceeded, SoftTimeLimitExceeded)) else FAILED
    if not task.retry_on:
        # The seed's rules: a vis_timeout task is retried while attempts are left.
        return FailurePlan(error, reason)
    if not isinstance(exc, task.retry_on):
        # retry_on names what is worth retrying: anything else fails for good.
        return FailurePlan(error, reason, final=True)
    if task.vis_timeout > 0:
        attempt = task.attempts - int(taken.token)
    else:
        left = message.kwargs.get("_attempts", 1)
        if not isinstance(left, int) or left <= 1:
            return FailurePlan(error, reason)
        attempt = task.attempts - left + 1
    delay = min(task.max_backoff, task.backoff * 2 ** max(0, attempt - 1))
    delay *= random.uniform(0.5, 1.0)  # jitter: failures in step must not retry in step
    if task.vis_timeout > 0:
        return FailurePlan(error, reason, delay=delay)
    return FailurePlan(error, reason, fresh_call=delay)


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


class Runner:
    def __init__(self, app: Context, success_level: int = logging.DEBUG,
                 async_concurrency: int = 100) -> None:
        self.app = app
        self.success_level = success_level
        self.async_concurrency = async_concurrency
        # What runs now: shown in the worker registry; the leases of tasks
        # without a visibility timeout are renewed.
        self.running: dict[int, Running] = {}
        self.counts = {"done": 0, "failed": 0}
        self.in_flight = 0
        self._lock = threading.Lock()
        self._keys = itertools.count()
        self._lane: AsyncLane | None = None
        self._is_async: dict[Task, bool] = {}

    def _fail(self, taken: Taken, error: str, force: bool, reason: str) -> int:
        mode = FailMode.DEAD if force else FailMode.RETRY
        return self.app.store.run(self.app.store.calls.fail(taken.queue, taken.key, taken.token,
                                                            error, mode, reason))

    def count(self, what: str, delta: int = 1) -> None:
        with self._lock:
            if what == "in_flight":
                self.in_flight += delta
            else:
                self.counts[what] += delta

    def run(self, taken: Taken) -> Finished | None:
        """Run a task; failures are reported here, successes returned to report.

        An async task is only started here; its outcome is written when it ends.
        """
        self.count("in_flight")
        handed_off = False
        try:
            prepared = self._prepare(taken)
            if prepared is None:
                return None
            task, message, running = prepared
            is_async = self._is_async.get(task)
            if is_async is None:
                is_async = self._is_async[task] = inspect.iscoroutinefunction(task.function)
            if is_async:
                self.lane().submit(self, taken, task, message, running)
                handed_off = True
                return None
            return self._call(taken, task, message, running)
        finally:
            if not handed_off:
                self.count("in_flight", -1)

    def lane(self) -> AsyncLane:
        if self._lane is None:
            from .aio import AsyncLane

            with self._lock:
                if self._lane is None:
                    self._lane = AsyncLane(self.async_concurrency)
        assert self._lane is not None
        return self._lane

    def _prepare(self, taken: Taken) -> tuple[Task, Message, Running] | None:
        limit = self.app.max_message_bytes
        if limit and len(taken.raw) > limit:
            # Written around the client and the scripts (plain commands): refuse
            # to run what no producer of ours could have queued.
            reason = f"message of {len(taken.raw)} bytes exceeds the limit of {limit} bytes"
            log.error("dead-lettering task %s in queue %s: %s", _safe(taken.id),
                      _safe(taken.queue), reason)
            self._fail(taken, reason, True, "oversized message")
            return None
        try:
            message = decode(taken.raw)
        except MalformedMessage as exc:
            log.error("dead-lettering task %s in queue %s: %s",
                      _safe(taken.id), _safe(taken.queue), exc)
            self._fail(taken, str(exc), True, "malformed message")
            return None
        task = self.app.registry.get(message.name)
        if task is None:
            log.error("dead-lettering task %s in queue %s: unknown task %s",
                      _safe(taken.id), _safe(taken.queue), _safe(message.name))
            self._fail(taken, f"no task named {message.name!r} in this worker",
                       True, "unknown task")
            return None
        if task.vis_timeout > 0 and task.attempts > 1:
            # The live count: every delivery used one, whatever the message says.
            message.kwargs["_attempts"] = int(taken.token) + 1
        return task, message, Running(self.app, taken.queue, taken.id, taken.token, task)

    def track(self, running: Running) -> int:
        key = next(self._keys)
        self.running[key] = running
        _current.set(running)
        return key

    def untrack(self, key: int) -> None:
        running = self.running.pop(key, None)
        _current.set(None)
        if running is not None and running.abort_requested:
            # The flag served this run; a later run reusing the id must not see it.
            self.app.client.delete(self.app.keys.queue(running.queue).abort(running.taskid))

    def _call(self, taken: Taken, task: Task, message: Message, running: Running) -> Finished | None:
        key = self.track(running)
        self.app.emit("before_task", running)
        try:
            value = task.function(*message.args, **message.kwargs)
        except Exception as exc:
            self.untrack(key)
            self.app.emit("after_task", running, None, exc)
            self.failed(taken, task, message, exc)
            return None
        self.untrack(key)
        self.app.emit("after_task", running, value, None)
        return self.finished(taken, task, value, running)

    def failed(self, taken: Taken, task: Task, message: Message, exc: BaseException) -> None:
        self.log_failure(taken, task, exc)
        plan = plan_failure(task, message, taken, exc)
        store = self.app.store
        if plan.fresh_call is not None:
            self.requeue_fresh(task, message, plan.fresh_call)
            store.run(store.calls.done(taken.queue, taken.key, taken.token, "null", 0))
            return
        code = store.run(store.calls.fail(taken.queue, taken.key, taken.token, plan.error,
                                          plan.mode, plan.reason, plan.delay))
        self.after_fail(taken, task, plan, code)

    def requeue_fresh(self, task: Task, message: Message, delay: float) -> None:
        """The 0/1 retry path: a new call with one attempt fewer, as Task.retry does."""
        task.retry(*message.args, delay=delay, **message.kwargs)
        self.app.emit("on_retry", task, message.id, delay)

    def after_fail(self, taken: Taken, task: Task, plan: FailurePlan, code: int) -> None:
        if code == FailOutcome.RETRIED:
            self.app.emit("on_retry", task, taken.id, plan.delay)
        elif code == FailOutcome.DEAD:
            self.app.emit("on_dead", task, taken.id, plan.reason, plan.error)

    def log_failure(self, taken: Taken, task: Task, exc: BaseException) -> None:
        log.error("task %s (%s) in queue %s raised", _safe(task.name), _safe(taken.id),
                  _safe(taken.queue), exc_info=exc)
        self.count("failed")

    def finished(self, taken: Taken, task: Task, value: Any, running: Running) -> Finished:
        result = "null"
        if task.save_results > 0:
            try:
                result = encode_result(task.name, value)
            except TypeError as exc:
                log.error("%s; saving null instead", exc)
        return Finished(taken, task, result, time.monotonic() - running.started)

    def finish(self, f: Finished) -> None:
        """Write a finished task's outcome on its own."""
        t = f.taken
        self.report(f, self.app.store.run(self.app.store.calls.done(
            t.queue, t.key, t.token, f.result, f.task.save_results)))

    def report(self, f: Finished, recorded: bool) -> None:
        task, taken = f.task, f.taken
        if recorded:
            self.count("done")
            if log.isEnabledFor(self.success_level):
                log.log(self.success_level, "task %s (%s) done in %.4fs", _safe(task.name),
                        _safe(taken.id), f.took)
        else:
            log.warning("task %s (%s) finished after its lease was lost; "
                        "another worker owns it now", _safe(task.name), _safe(taken.id))

    def renew_leases(self) -> None:
        for running in list(self.running.values()):
            if running.task.vis_timeout <= 0:
                running.extend(self.app.running_lease)

    def lane_thread(self) -> int | None:
        return self._lane.thread.ident if self._lane is not None else None

    def stop(self) -> None:
        if self._lane is not None:
            self._lane.stop()
