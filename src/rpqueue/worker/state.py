"""What the runner, the asyncio lane and the worker loop share: the task
being run, a finished task's pending outcome, and what to record for a
task that raised. A module of its own so that none of them imports another
only for these (no import cycle between the worker's modules).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import random
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import (
    SoftTimeLimitExceeded,
    TaskAborted,
    TaskError,
    TimeLimitExceeded,
    bound_text,
)
from ..storage.calls import Call, Taken
from ..storage.message import Message, encode_call
from ..storage.wire import FailMode

if TYPE_CHECKING:
    from ..context import Context
    from ..task import Task

log = logging.getLogger("rpqueue.worker")

# A progress note is a short line, not a log: longer ones are cut.
NOTE_LIMIT = 500


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
    # The W3C trace context the call was sent with (tracing hooks read it).
    trace: dict[str, str] | None = None

    def extend(self, seconds: float) -> bool:
        """Keep the lease for ``seconds`` more from now; False if it was already lost."""
        return self.app.store.run(self.app.store.calls.extend(self.queue, self.taskid, self.token,
                                                              seconds)) > 0

    def progress(self, done: float, total: float | None = None, note: str | None = None) -> bool:
        """Report how far this task is: ``done`` (of ``total``, if known), with
        an optional short ``note``. Readable as ``EnqueuedTask.progress``
        and, with events on, sent as a 'progress' event.

        Returns False when this run no longer holds its lease (nothing is
        written). In an ``async def`` task, ``await aprogress(...)`` does not
        block the event loop.
        """
        call = self._progress_call(done, total, note)  # checked before any I/O
        return bool(self.app.store.run(call))

    async def aprogress(self, done: float, total: float | None = None,
                        note: str | None = None) -> bool:
        """``progress`` for ``async def`` tasks, on a redis.asyncio connection."""
        call = self._progress_call(done, total, note)
        ok: bool = await self.app.store.arun(call)
        return ok

    def _progress_call(self, done: float, total: float | None, note: str | None) -> Call[bool]:
        for what, value in (("done", done), ("total", total)):
            # NaN and infinity fail the range check: neither is JSON.
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, (int, float))
                                      or not 0 <= value < float("inf")):
                raise ValueError(f"progress {what} must be a finite number >= 0, not {value!r}")
        if note is not None and not isinstance(note, str):
            raise ValueError(f"progress note must be a str, not {type(note).__name__}")
        note = (note or "")[:NOTE_LIMIT]
        payload = json.dumps({"done": done, "total": total, "note": note, "time": time.time()},
                             ensure_ascii=False)
        return self.app.store.calls.progress(self.queue, self.taskid, self.token, done, total,
                                             note, payload)


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
    delay: float = 0.0  # backoff before the next attempt
    # 0/1 task retried by retry_on: its next attempt's message, requeued
    # under the same id after ``delay`` (fail-11.lua ARGV[9]).
    again: str = ""
    attempts: int = 1  # attempts the task may have in all
    record: str = ""  # the TaskError JSON kept in the task's state record
    aborted: bool = False

    @property
    def mode(self) -> FailMode:
        return FailMode.FINAL if self.final else FailMode.RETRY


def attempt_number(task: Task, message: Message, taken: Taken) -> int:
    """The attempt (from 1) this run of the task is."""
    if task.vis_timeout > 0:
        try:
            return max(1, task.attempts - int(taken.token))
        except ValueError:
            return 1
    left = message.kwargs.get("_attempts", 1)
    if isinstance(left, bool) or not isinstance(left, int):
        return 1
    return max(1, task.attempts - left + 1)


def worker_id() -> str:
    """Names this worker process in error records: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def plan_failure(task: Task, message: Message, taken: Taken, exc: BaseException) -> FailurePlan:
    error = error_text(exc)
    attempt = attempt_number(task, message, taken)
    record = error_record(exc, attempt).to_json()
    if isinstance(exc, TaskAborted):
        return FailurePlan(error, "aborted", final=True, record=record, aborted=True)
    reason = "time limit exceeded" if isinstance(
        exc, (TimeLimitExceeded, SoftTimeLimitExceeded)) else FAILED
    if not task.retry_on:
        # The seed's rules: a vis_timeout task is retried while attempts are left.
        return FailurePlan(error, reason, record=record)
    if not isinstance(exc, task.retry_on):
        # retry_on names what is worth retrying: anything else fails for good.
        return FailurePlan(error, reason, final=True, record=record)
    if task.vis_timeout <= 0:
        left = message.kwargs.get("_attempts", 1)
        if not isinstance(left, int) or left <= 1:
            return FailurePlan(error, reason, record=record)
    delay = min(task.max_backoff, task.backoff * 2 ** max(0, attempt - 1))
    delay *= random.uniform(0.5, 1.0)  # jitter: failures in step must not retry in step
    if task.vis_timeout > 0:
        return FailurePlan(error, reason, delay=delay, record=record)
    # The next attempt is the same call with one attempt fewer, under the same id.
    kwargs = dict(message.kwargs, _attempts=left - 1)
    again = encode_call(message.id, message.name, message.queue, tuple(message.args), kwargs)
    return FailurePlan(error, reason, delay=delay, again=again, attempts=task.attempts,
                       record=record)


def error_record(exc: BaseException, attempt: int) -> TaskError:
    """What a handle shows of a failed attempt: the full traceback, bounded."""
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") \
        else f"{kind.__module__}.{kind.__qualname__}"
    trace = "".join(traceback.format_exception(kind, exc, exc.__traceback__))
    # Lone surrogates (a task's own text) cannot go to Redis as UTF-8: escaped (issue #25).
    message, trace = (t.encode("utf-8", "backslashreplace").decode("utf-8")
                      for t in (str(exc), trace))
    return TaskError(name, message, bound_text(trace), attempt, worker_id(), time.time())


def error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    # A lone surrogate in a task's exception cannot be sent to Redis as
    # UTF-8: escaped, so the failure is still written (issue #25).
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# What a task may raise that is not an Exception but still only ends the
# task, not the worker thread running it: ``sys.exit()`` in a task, or a
# KeyboardInterrupt raised by code it calls.
TASK_EXITS: tuple[type[BaseException], ...] = (SystemExit, KeyboardInterrupt)


class Reservation:
    """Free slots of the asyncio lane a batch of takes reserved for the tasks it
    hands over (aio.py): handed explicitly along with each task, so no
    thread-local state says which hand-over already holds its slot."""

    def __init__(self, slots: int) -> None:
        self.left = slots

    def use(self) -> bool:
        """Use one reserved slot; False when none is left."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class Lane(Protocol):
    """Where a Runner hands ``async def`` tasks (aio.AsyncLane)."""

    thread: threading.Thread

    def submit(self, runner: Any, taken: Taken, task: Task, message: Message,
               running: Running, reservation: Reservation | None = None) -> None: ...

    def stop(self) -> None: ...


_TAKES_ATTEMPTS: dict[Any, bool] = {}


def call_kwargs(function: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments to call a task's function with: ``_attempts``
    (which rides in the message for retries) only when the function takes it
    (a parameter of that name or ``**kwargs``), so that ``attempts=3`` works
    with a function that never looks at it."""
    if "_attempts" not in kwargs:
        return kwargs
    takes = _TAKES_ATTEMPTS.get(function)
    if takes is None:
        import inspect

        try:
            params = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # no signature to read: pass it as before
            takes = True
        else:
            takes = any(p.kind is p.VAR_KEYWORD or (p.name == "_attempts" and p.kind in (
                p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)) for p in params)
        _TAKES_ATTEMPTS[function] = takes
    return kwargs if takes else {k: v for k, v in kwargs.items() if k != "_attempts"}
