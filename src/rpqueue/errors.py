"""Errors rpqueue raises on purpose, each naming what was wrong."""

from __future__ import annotations

from typing import Any

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
