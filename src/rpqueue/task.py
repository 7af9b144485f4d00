"""Tasks: ``TaskRef`` (a name and options: enough to queue calls) and ``Task``
(a TaskRef with its function). The options live in ``rpqueue.options``, the
handle of a queued call (``EnqueuedTask``) in ``rpqueue.handle``."""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from .errors import DuplicateTask, MessageTooLarge, QueueFull
from .handle import RESULT_GRACE, EnqueuedTask, store_of
from .options import (
    DEFAULT_QUEUE,
    ON_DUPLICATE,
    HasOptions,
    TaskOptions,
    UniqueKey,
    _delay,
    _number,
    _priority,
)
from .storage import Enqueued
from .storage.keys import normalize_queue
from .storage.message import encode_call, new_id, new_ids
from .storage.wire import EnqueueStatus, task_meta

# Re-exported: ``from rpqueue.task import EnqueuedTask`` predates handle.py.
__all__ = ["DEFAULT_QUEUE", "ON_DUPLICATE", "RESULT_GRACE", "EnqueuedTask", "Task", "TaskOptions",
           "TaskRef", "UniqueKey", "store_of"]

DUPLICATE, FULL, REPLACED, RUNNING = (EnqueueStatus.DUPLICATE, EnqueueStatus.FULL,
                                      EnqueueStatus.REPLACED, EnqueueStatus.RUNNING)
UNIQUE_KEY_BYTES = 1024


class TaskRef(HasOptions):
    """What it takes to queue calls to a task: its name and options.

    ``TaskRef(app, name, **options)``: ``app`` is an app (or its context or
    store); the options are those of ``@task`` (see ``help(rpqueue.task)``),
    or ``options=`` a whole TaskOptions, which keywords then change. A Task adds the function; a TaskRef alone
    (from the registry in Redis) lets code queue calls to tasks it does not
    import. The options read as attributes: ``ref.queue``, ``ref.attempts``...
    """

    function: Callable[..., Any] | None = None

    def __init__(self, app: Any, name: str, *, options: TaskOptions | None = None,
                 **changes: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"task name must be a non-empty string, got {name!r}")
        self.store = store_of(app)
        self.name = name
        self.options = TaskOptions.of(options, **{**changes, "name": name})
        # Computed once: every call without its own priority or unique key shares it.
        self._meta = task_meta(self.vis_timeout, self.attempts, self.use_dead, self.priority)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} queue={self.queue!r}>"

    def execute(
        self,
        *args: Any,
        delay: float | datetime.timedelta | None = None,
        taskid: str | None = None,
        _queue: str | bytes | None = None,
        execute_inline_now: bool = False,
        priority: int | None = None,
        unique_for: float | None = None,
        unique_key: UniqueKey = None,
        **kwargs: Any,
    ) -> EnqueuedTask:
        """Queue one call ``task(*args, **kwargs)`` for a worker; returns its handle.

        The arguments must encode to JSON (str, int, float, bool, None,
        lists, dicts with str keys); they are checked, and the call encoded,
        before anything is sent. The keywords below are for rpqueue, every
        other keyword goes to the task:

        - ``delay``: seconds (or a timedelta) to wait before the call may
          run; None or <= 0 queues it now.
        - ``taskid``: the call's id (default: a new random one). Queuing an
          id that is still pending replaces that call (``outcome ==
          'replaced'``); an id that is running raises ValueError.
        - ``_queue``: queue this one call elsewhere than the task's queue.
        - ``execute_inline_now``: run the function here, now, instead;
          the handle is 'done' and holds the result. Raises ValueError on a
          TaskRef (no function in this process).
        - ``priority``: this call's priority (default: the task's): lower
          runs first within the queue, FIFO among equals; an int within
          +-PRIORITY_LIMIT.
        - ``unique_for``, ``unique_key``: this call's uniqueness (default:
          the task's). While a call with the same unique key (a string, or a
          function of the call's arguments returning one; default: a hash of
          the arguments), prefixed by the task name, is queued or running,
          and for at most ``unique_for`` seconds, another is merged into it
          (the first's handle comes back, ``outcome == 'merged'``) or, for a
          task made with ``on_duplicate='refuse'``, refused.

        Returns an EnqueuedTask (``taskid``, ``outcome``, ``status``,
        ``wait``, ``result``, ``cancel``, ``abort``).

        Raises TypeError or ValueError for an argument that does not encode
        or a bad keyword above, MessageTooLarge when the call encodes to more
        than the app's ``max_message_bytes``, QueueFull when the queue is
        bounded and full, DuplicateTask when a unique call is refused, and
        NotDurable when ``set_durable`` is on and too few replicas confirmed
        (the call may still be queued).
        """
        fresh = taskid is None
        queue, taskid, message = self._prepare(args, kwargs, taskid, _queue)
        meta, hold = self._meta_for(args, kwargs, priority, unique_for, unique_key)
        if execute_inline_now:
            if self.function is None:
                raise ValueError(f"task {self.name!r} is not defined in this process; "
                                 "it cannot run inline")
            return EnqueuedTask(self.store, self.name, queue, taskid, args,
                                inline=(self.function(*args, **kwargs),))
        self.store.note_queue(queue)
        call = self.store.calls.enqueue(queue, taskid, message, _delay(delay), meta, hold,
                                            fresh)
        return self._handle(self.store.run_enqueue(call), queue, taskid, args)

    async def aexecute(
        self,
        *args: Any,
        delay: float | datetime.timedelta | None = None,
        taskid: str | None = None,
        _queue: str | bytes | None = None,
        priority: int | None = None,
        unique_for: float | None = None,
        unique_key: UniqueKey = None,
        **kwargs: Any,
    ) -> EnqueuedTask:
        """``execute`` for asyncio code, on a redis.asyncio connection.

        The same keywords (but no ``execute_inline_now``), return value and
        errors as ``execute``.
        """
        fresh = taskid is None
        queue, taskid, message = self._prepare(args, kwargs, taskid, _queue)
        meta, hold = self._meta_for(args, kwargs, priority, unique_for, unique_key)
        await self.store.anote_queue(queue)
        call = self.store.calls.enqueue(queue, taskid, message, _delay(delay), meta, hold,
                                            fresh)
        return self._handle(await self.store.arun_enqueue(call), queue, taskid, args)

    def _prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any], taskid: str | None,
                 queue: str | bytes | None) -> tuple[str, str, str]:
        """Validate and encode one call before anything is sent."""
        name = self.queue if queue is None else normalize_queue(queue)
        if taskid is None:
            taskid = new_id()
        elif not isinstance(taskid, str) or not taskid:
            raise ValueError(f"taskid must be a non-empty string, got {taskid!r}")
        if self.attempts > 1 and "_attempts" not in kwargs:
            kwargs["_attempts"] = self.attempts
        message = encode_call(taskid, self.name, name, args, kwargs)
        self._check_size(message)
        return name, taskid, message

    def _meta_for(self, args: tuple[Any, ...], kwargs: dict[str, Any], priority: int | None,
                  unique_for: float | None, unique_key: UniqueKey) -> tuple[str, float]:
        """The meta string and unique hold (seconds, 0: none) of one call."""
        hold = self.unique_for if unique_for is None else _number("unique_for", unique_for)
        if priority is None and not hold:
            return self._meta, 0.0
        pri = self.priority if priority is None else _priority(priority)
        ukey = self._unique_key(args, kwargs, unique_key) if hold else ""
        return task_meta(self.vis_timeout, self.attempts, self.use_dead, pri, ukey), hold

    def _unique_key(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                    given: UniqueKey) -> str:
        """The task name and the call's key: given, computed, or a hash of the arguments."""
        key = self.unique_key if given is None else given
        call_kwargs = {k: v for k, v in kwargs.items() if k != "_attempts"}
        if callable(key):
            key = key(*args, **call_kwargs)
            if not isinstance(key, str):
                raise TypeError(f"unique_key function of {self.name} returned "
                                f"{type(key).__name__}, not str")
        if key is None:
            body = json.dumps([list(args), call_kwargs], sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)
            key = hashlib.sha1(body.encode("utf-8")).hexdigest()
        if not key:
            raise ValueError(f"unique key of a call to {self.name} is empty")
        out = f"{self.name}:{key}"
        if len(out.encode("utf-8")) > UNIQUE_KEY_BYTES:
            raise ValueError(f"unique key of a call to {self.name} is over "
                             f"{UNIQUE_KEY_BYTES} bytes")
        return out

    def _handle(self, done: Enqueued, queue: str, taskid: str,
                args: tuple[Any, ...]) -> EnqueuedTask:
        if done.status == RUNNING:
            raise ValueError(f"task id {taskid!r} is running in queue {queue!r}; not queued again")
        if done.status == FULL:
            raise QueueFull(f"queue {queue!r} is full (max_len {done.detail}): a call to "
                            f"{self.name}() was not queued", queue, _int_or_none(done.detail))
        if done.status == DUPLICATE:
            existing = str(done.detail)
            if self.on_duplicate == "refuse":
                raise DuplicateTask(f"a call to {self.name}() with the same unique key is "
                                    f"still queued or running as task {existing} in queue "
                                    f"{queue!r}; not queued", existing)
            return EnqueuedTask(self.store, self.name, queue, existing, args, outcome="merged")
        outcome = "replaced" if done.status == REPLACED else "queued"
        return EnqueuedTask(self.store, self.name, queue, taskid, args, outcome=outcome)

    def _check_size(self, message: str) -> None:
        limit = self.store.max_message_bytes
        # Characters never outnumber bytes: only long texts need encoding.
        if limit and len(message) * 4 > limit and len(message.encode("utf-8")) > limit:
            raise MessageTooLarge(
                f"a call to {self.name}() encodes to {len(message.encode('utf-8'))} bytes, over "
                f"the limit of {limit} bytes (app.max_message_bytes); nothing was queued")

    def retry(self, *args: Any, **kwargs: Any) -> EnqueuedTask | None:
        """Queue this call again with one attempt fewer, or do nothing if none are left.

        ``_attempts`` (passed to the task when ``attempts > 1``) counts the
        attempts left including the current one.
        """
        if not self._retry_kwargs(kwargs):
            return None
        return self.execute(*args, **kwargs)

    async def aretry(self, *args: Any, **kwargs: Any) -> EnqueuedTask | None:
        """``retry`` for asyncio code (an ``async def`` task), on a redis.asyncio connection."""
        if not self._retry_kwargs(kwargs):
            return None
        return await self.aexecute(*args, **kwargs)

    def _retry_kwargs(self, kwargs: dict[str, Any]) -> bool:
        """Turn a call's kwargs into its retry's; False when no attempt is left."""
        left = kwargs.pop("_attempts", 1)
        if isinstance(left, bool) or not isinstance(left, int):
            raise TypeError(f"_attempts must be an int, not {type(left).__name__}")
        if left - 1 < 1:
            return False
        if "delay" not in kwargs:
            kwargs["delay"] = self.retry_delay
        kwargs["_attempts"] = left - 1
        return True

    def execute_many(
        self,
        calls: Iterable[tuple[Iterable[Any], dict[str, Any]] | Iterable[Any]],
        delay: float | None = None,
        _queue: str | bytes | None = None,
        priority: int | None = None,
        unique_for: float | None = None,
    ) -> list[EnqueuedTask]:
        """Queue many calls in pipelined round trips.

        Each item of ``calls`` is ``(args, kwargs)`` (a sequence and a dict)
        or just an args sequence. Every call gets a new task id and is
        encoded before anything is sent, so one bad argument queues nothing.
        ``delay``, ``_queue``, ``priority`` and ``unique_for`` apply to every
        call, as in ``execute`` (the unique key of each call is the task's
        ``unique_key`` or a hash of its arguments).

        Returns a list of EnqueuedTask, one per call, in order. Each
        handle's ``outcome`` is 'queued', or for a duplicate of a live
        unique task, 'merged' (the handle is that task's) or 'refused' (a
        task made with ``on_duplicate='refuse'``; no DuplicateTask is raised).

        Raises what ``execute`` raises for a bad call (before anything is
        queued). A bounded queue that refuses takes a batch of up to 500
        calls whole or not at all: the QueueFull raised carries ``queued``,
        the handles of what earlier batches queued.
        """
        queue = self.queue if _queue is None else normalize_queue(_queue)
        wait = _delay(delay)
        prepared: list[tuple[str, str, str]] = []
        arglist: list[tuple[Any, ...]] = []
        hold = 0.0
        calls = calls if isinstance(calls, list) else list(calls)
        ids = new_ids(len(calls))
        for taskid, item in zip(ids, calls):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
                args, kwargs = tuple(item[0]), dict(item[1])
            else:
                args, kwargs = tuple(item), {}
            if self.attempts > 1 and "_attempts" not in kwargs:
                kwargs["_attempts"] = self.attempts
            message = encode_call(taskid, self.name, queue, args, kwargs)
            self._check_size(message)
            meta, hold = self._meta_for(args, kwargs, priority, unique_for, None)
            prepared.append((taskid, message, meta))
            arglist.append(args)
        self.store.note_queue(queue)
        out: list[EnqueuedTask] = []
        for call in self.store.calls.enqueue_many(queue, prepared, wait, hold, fresh=True):
            try:
                replies: list[Enqueued] = self.store.run_enqueue(call)
            except QueueFull as exc:
                exc.queue, exc.queued = queue, out
                raise
            for done in replies:
                i = len(out)
                if done.status == DUPLICATE:
                    outcome = "refused" if self.on_duplicate == "refuse" else "merged"
                    out.append(EnqueuedTask(self.store, self.name, queue, str(done.detail),
                                            arglist[i], outcome=outcome))
                else:
                    out.append(EnqueuedTask(self.store, self.name, queue, prepared[i][0],
                                            arglist[i], outcome="replaced"
                                            if done.status == REPLACED else "queued"))
        return out


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


class Task(TaskRef):
    """A function that can be called through a queue.

    Made by ``@task`` (or ``@periodic_task``, ``@cron_task``), which also
    registers it with the app; ``Task(app, function, **options)`` takes the
    same options (``name`` defaults to ``module.function``). Calling the task
    runs the function here, now; ``execute`` queues a call for a worker.
    """

    def __init__(self, app: Any, function: Callable[..., Any], *,
                 options: TaskOptions | None = None, **changes: Any) -> None:
        if not callable(function):
            raise TypeError(f"a task must wrap a callable, not {type(function).__name__}")
        name = changes.pop("name", None)
        if name is None:
            name = options.name if options is not None and options.name is not None \
                else f"{function.__module__}.{function.__name__}"
        super().__init__(app, name, options=options, **changes)
        self.function: Callable[..., Any] = function
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)
