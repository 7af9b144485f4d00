"""Errors rpqueue raises on purpose, each naming what was wrong."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError


class EnqueueRefused(Exception):
    """A call was refused and nothing was queued."""


class MessageTooLarge(EnqueueRefused, ValueError):
    """The encoded call is larger than the configured limit."""


class RedisOutOfMemory(EnqueueRefused, OutOfMemoryError):
    """Redis refused the write: it reached ``maxmemory`` under ``noeviction``.

    Also a redis-py ``OutOfMemoryError``, so code that catches Redis's own
    errors keeps working."""


class NotDurable(EnqueueRefused):
    """Durable enqueue (``set_durable``): fewer replicas than required confirmed
    the write within the timeout.

    Unlike the other refusals, the primary DID accept the write: the task
    may still be queued and run, or may be lost if the primary fails before
    it replicates. ``taskids`` names the task(s); check on them (e.g.
    ``EnqueuedTask.status``) before queueing them again, or queue again with
    the same ``taskid=``, which replaces a pending task rather than adding one.
    """

    def __init__(self, message: str, taskids: list[str], acknowledged: int,
                 required: int) -> None:
        super().__init__(message)
        self.taskids = taskids
        self.acknowledged = acknowledged
        self.required = required


class QueueFull(EnqueueRefused):
    """The queue is at its ``max_len`` and refuses new tasks (``set_queue_limit``).

    ``queued`` holds the handles of tasks an ``execute_many`` did queue
    before a later chunk was refused (empty for a single ``execute``)."""

    def __init__(self, message: str, queue: str, max_len: int | None = None,
                 queued: list[Any] | None = None) -> None:
        super().__init__(message)
        self.queue = queue
        self.max_len = max_len
        self.queued = queued or []


class DuplicateTask(EnqueueRefused):
    """A unique task (``unique_for``) with the same key is still queued or
    running, and the task asked to refuse duplicates (``on_duplicate='refuse'``).

    ``existing`` is the id of the task holding the key."""

    def __init__(self, message: str, existing: str) -> None:
        super().__init__(message)
        self.existing = existing


class SoftTimeLimitExceeded(Exception):
    """Raised inside a task that ran past its ``soft_timeout``: time to wrap up."""


class TimeLimitExceeded(Exception):
    """A task ran past its ``timeout`` and was stopped; counts as a failed attempt."""


class TaskAborted(Exception):
    """A running task was aborted (``EnqueuedTask.abort(hard=True)``); not retried."""


# A traceback kept in a task's error record is at most this many bytes of
# UTF-8: longer ones lose their middle (the call site and the raise stay).
TRACEBACK_LIMIT = 16 * 1024
CUT_MARKER = "\n... [{0} bytes cut] ...\n"


def bound_text(text: str, limit: int = TRACEBACK_LIMIT) -> str:
    """``text`` if its UTF-8 form fits in ``limit`` bytes, else its head and
    tail around a marker saying how much was cut, within ``limit`` bytes."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    # The marker's own length depends on the count; 20 digits always suffice.
    room = limit - len(CUT_MARKER.format(10 ** 20).encode("utf-8"))
    head, tail = raw[:room // 2], raw[len(raw) - (room - room // 2):]
    cut = len(raw) - len(head) - len(tail)
    # errors="ignore": a cut through a multi-byte character drops its pieces.
    return (head.decode("utf-8", "ignore") + CUT_MARKER.format(cut)
            + tail.decode("utf-8", "ignore"))


@dataclass(frozen=True)
class TaskError:
    """Why one attempt of a task failed, as the worker recorded it.

    ``type``: the exception's qualified name (``WorkerLost`` when the worker
    vanished, ``MessageTooLarge`` for an oversized message); ``message``:
    ``str(exc)``; ``traceback``: the formatted traceback, at most 16 KiB
    (cut in the middle); ``attempt``: the attempt that failed (from 1);
    ``worker``: the worker's id ('' when Redis noticed the loss itself);
    ``time``: unix time of the failure.
    """

    type: str
    message: str
    traceback: str
    attempt: int
    worker: str
    time: float

    @classmethod
    def from_json(cls, raw: str) -> TaskError | None:
        """The record stored by the scripts, or None when it is unreadable."""
        try:
            d = json.loads(raw)
            return cls(str(d.get("type", "")), str(d.get("message", "")),
                       str(d.get("traceback", "")), int(d.get("attempt", 1)),
                       str(d.get("worker", "")), float(d.get("time", 0.0)))
        except (ValueError, TypeError, AttributeError):
            return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class TaskFailed(Exception):
    """``EnqueuedTask.get()``: the task failed, was dead-lettered or aborted.

    ``state`` is 'failed', 'dead' or 'aborted'; ``error`` the ``TaskError``
    of its last attempt (None when none was recorded); the message carries
    the remote traceback."""

    def __init__(self, taskid: str, state: str, error: TaskError | None) -> None:
        text = f"task {taskid} {state}"
        if error is not None:
            text += f" on attempt {error.attempt}: {error}"
            if error.traceback:
                text += "\n\nRemote traceback:\n" + error.traceback
        super().__init__(text)
        self.taskid = taskid
        self.state = state
        self.error = error


class TaskCancelled(Exception):
    """``EnqueuedTask.get()``: the task was cancelled before it ran."""

    def __init__(self, taskid: str) -> None:
        super().__init__(f"task {taskid} was cancelled before it ran")
        self.taskid = taskid


def translate(exc: ResponseError, what: str) -> Exception:
    """A clear error for the Redis replies a caller can act on, else the original."""
    text = str(exc)
    # redis-py strips the "OOM" prefix into its own exception class.
    if isinstance(exc, OutOfMemoryError) or text.startswith("OOM"):
        return RedisOutOfMemory(
            f"{what} was not queued: Redis is out of memory (maxmemory reached with the "
            f"noeviction policy). Free memory or raise maxmemory. Redis said: {text}")
    if "exceeds the limit" in text:
        return MessageTooLarge(f"{what} was not queued: {text}")
    if text.startswith("QUEUEFULL "):
        return QueueFull(f"{what} was not queued: {text[10:]}", what)
    return exc


class RedisUnreachable(RedisConnectionError):
    """A producer lost (or never got) its connection to Redis while queueing.

    The message names the Redis it tried (without the password); the
    redis-py error is its ``__cause__``. A redis-py ``ConnectionError``, so
    ``except redis.ConnectionError`` still catches it. Whether the call was
    queued is unknown when the connection dropped after sending it.
    """
