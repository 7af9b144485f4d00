"""Running one taken task: decode, call, report the outcome.

Plain functions run in the worker thread that took them. ``async def``
tasks are handed to the process's event loop (see aio.py), so one worker
runs many of them at once while its threads go on taking tasks.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TaskError
from ..storage.calls import Call, Taken
from ..storage.message import MalformedMessage, Message, decode, encode_result
from ..storage.wire import FailMode, FailOutcome
from ..storage.worker_io import WorkerIO
from .state import (
    FailurePlan,
    Finished,
    Lane,
    Reservation,
    Running,
    _current,
    _safe,
    call_kwargs,
    current_task,
    error_text,
    log,
    plan_failure,
    worker_id,
)

if TYPE_CHECKING:
    from ..context import Context
    from ..task import Task

# Re-exported: rpqueue.current_task and the log helpers import them from here.
__all__ = ["FailurePlan", "Finished", "Runner", "Running", "current_task", "plan_failure"]


class Runner:
    """Runs taken tasks for the worker threads of one process and writes their
    failures (successes are returned, to be written with the next take)."""

    def __init__(self, app: Context, success_level: int = logging.DEBUG,
                 async_concurrency: int = 100,
                 make_lane: Callable[[int], Lane] | None = None) -> None:
        self.app = app
        self.io = WorkerIO(app.store)
        # Builds the asyncio lane on the first async task (aio.AsyncLane, handed
        # in by the process so this module does not import the lane).
        self._make_lane = make_lane
        self.success_level = success_level
        self.async_concurrency = async_concurrency
        # What runs now: shown in the worker registry; the leases of tasks
        # without a visibility timeout are renewed.
        self.running: dict[int, Running] = {}
        self.counts = {"done": 0, "failed": 0}
        self.in_flight = 0
        self._lock = threading.Lock()
        self._keys = itertools.count()
        self._lane: Lane | None = None
        # (taken, task name) -> True if a task this process does not define was
        # given back for another worker (worker/unknown.py); set by the
        # process. None, or False returned: dead-letter it.
        self.unknown: Callable[[Taken, str], bool] | None = None
        self._is_async: dict[Task, bool] = {}

    def _fail(self, taken: Taken, error: str, force: bool, reason: str) -> int:
        mode = FailMode.DEAD if force else FailMode.RETRY
        # No exception here: the record names the reason the message could not run.
        record = TaskError(reason.title().replace(" ", ""), error, "", 1, worker_id(),
                           time.time()).to_json()
        return self.app.store.run(self.app.store.calls.fail(taken.queue, taken.key, taken.token,
                                                            error, mode, reason, record=record))

    def count(self, what: str, delta: int = 1) -> None:
        with self._lock:
            if what == "in_flight":
                self.in_flight += delta
            else:
                self.counts[what] += delta

    def run(self, taken: Taken, reservation: Reservation | None = None) -> Finished | None:
        """Run a task; failures are reported here, successes returned to report.

        An async task is only started here; its outcome is written when it ends.
        ``reservation``: lane slots a batch of takes already holds for it.
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
                self.lane().submit(self, taken, task, message, running, reservation)
                handed_off = True
                return None
            return self._call(taken, task, message, running)
        finally:
            if not handed_off:
                self.count("in_flight", -1)

    def lane(self) -> Lane:
        """The asyncio lane, started on first use."""
        if self._lane is None:
            if self._make_lane is None:
                raise RuntimeError("this worker runs no async tasks (no lane was given)")
            with self._lock:
                if self._lane is None:
                    self._lane = self._make_lane(self.async_concurrency)
        assert self._lane is not None
        return self._lane

    def _prepare(self, taken: Taken) -> tuple[Task, Message, Running] | None:
        limit = self.app.store.max_message_bytes
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
        if task is None and self.unknown is not None and self.unknown(taken, message.name):
            return None  # left for a live worker that defines it (worker/unknown.py)
        if task is None:
            log.error("dead-lettering task %s in queue %s: unknown task %s",
                      _safe(taken.id), _safe(taken.queue), _safe(message.name))
            self._fail(taken, f"no task named {message.name!r} in this worker",
                       True, "unknown task")
            return None
        # task_options read directly: the task.<option> descriptors cost a
        # Python call each, per task.
        options = task.task_options
        if options.vis_timeout > 0 and options.attempts > 1:
            # The live count: every delivery used one, whatever the message says.
            message.kwargs["_attempts"] = int(taken.token) + 1
        return task, message, Running(self.app, taken.queue, taken.id, taken.token, task,
                                       trace=message.trace)

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
            self.io.clear_abort(running.queue, running.taskid)

    def _call(self, taken: Taken, task: Task, message: Message, running: Running) -> Finished | None:
        key = self.track(running)
        self.app.emit("before_task", running)
        try:
            value = task.function(*message.args, **call_kwargs(task.function, message.kwargs))
        except (Exception, SystemExit, KeyboardInterrupt) as exc:
            # sys.exit() in a task ends the task, not the thread that ran it:
            # recorded as a failure like any other, and the thread goes on.
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
        code = store.run(self.fail_call(taken, plan))
        self.after_fail(taken, task, plan, code)

    def fail_call(self, taken: Taken, plan: FailurePlan) -> Call[FailOutcome]:
        """The fail-11 call that records ``plan``; a retry keeps the task's id."""
        return self.app.store.calls.fail(
            taken.queue, taken.key, taken.token, plan.error, plan.mode, plan.reason, plan.delay,
            record=plan.record, again=plan.again, attempts=plan.attempts, aborted=plan.aborted)

    def after_fail(self, taken: Taken, task: Task, plan: FailurePlan, code: int) -> None:
        if code == FailOutcome.RETRIED:
            self.app.emit("on_retry", task, taken.id, plan.delay)
        elif code == FailOutcome.DEAD:
            self.app.emit("on_dead", task, taken.id, plan.reason, plan.error)

    def log_failure(self, taken: Taken, task: Task, exc: BaseException) -> None:
        # Not exc_info: the exception's message is the task's text, and a
        # newline in it would forge log lines. The traceback's frames (code,
        # not data) are kept as they are; every message is escaped.
        parts: list[str] = []
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            frames = "".join(traceback.format_tb(current.__traceback__)).rstrip("\n")
            parts.append(f"Traceback (most recent call last):\n{frames}\n"
                         f"{_safe(error_text(current), 2000)}")
            current = current.__cause__ or (None if current.__suppress_context__
                                            else current.__context__)
        if not log.isEnabledFor(logging.ERROR):
            self.count("failed")
            return
        # The record carries the escaped traceback as its exception text:
        # plain log formats print it after the message, JSON logs put it in
        # "exc", as they would for exc_info.
        record = log.makeRecord(
            log.name, logging.ERROR, __file__, 0, "task %s (%s) in queue %s raised",
            (_safe(task.name), _safe(taken.id), _safe(taken.queue)), None)
        record.exc_text = "\nwhile handling the exception above, another was raised:\n".join(
            reversed(parts))
        log.handle(record)
        self.count("failed")

    def finished(self, taken: Taken, task: Task, value: Any, running: Running) -> Finished:
        result = "null"
        if task.task_options.save_results > 0:
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
                running.extend(self.app.store.running_lease)

    def lane_thread(self) -> int | None:
        return self._lane.thread.ident if self._lane is not None else None

    def stop(self) -> None:
        if self._lane is not None:
            self._lane.stop()
