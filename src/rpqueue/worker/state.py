"""What the runner, the asyncio lane and the worker loop share: the task
being run, a finished task's pending outcome, and what to record for a
task that raised. A module of its own so that none of them imports another
only for these (no import cycle between the worker's modules).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import SoftTimeLimitExceeded, TaskAborted, TimeLimitExceeded
from ..storage.calls import Taken
from ..storage.message import Message
from ..storage.wire import FailMode

if TYPE_CHECKING:
    from ..context import Context
    from ..task import Task

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
