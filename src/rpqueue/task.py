"""Tasks: the decorators, the Task object, and the handle of a queued call."""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import DuplicateTask, MessageTooLarge, QueueFull
from .storage import Enqueued, Store
from .storage.keys import normalize_queue
from .storage.message import decode_result, encode_call, new_id, new_ids
from .storage.wire import PRIORITY_LIMIT, EnqueueStatus, task_meta

if TYPE_CHECKING:
    from .schedule import Schedule

DUPLICATE, FULL, REPLACED, RUNNING = (EnqueueStatus.DUPLICATE, EnqueueStatus.FULL,
                                      EnqueueStatus.REPLACED, EnqueueStatus.RUNNING)
DEFAULT_QUEUE = "default"


def store_of(owner: Any) -> Store:
    """The store of an app, a context, or the store itself."""
    return owner if isinstance(owner, Store) else owner.store


def _number(what: str, value: Any, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
    return float(value)


def _attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"attempts must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"attempts must be >= 1, got {value}")
    return value


def _delay(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"delay must be a number of seconds, not {type(value).__name__}")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"delay must be a finite number of seconds, got {value!r}")
    return max(0.0, float(value))


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an int, not {type(value).__name__}")
    if not -PRIORITY_LIMIT <= value <= PRIORITY_LIMIT:
        raise ValueError(f"priority must be between {-PRIORITY_LIMIT} and {PRIORITY_LIMIT}, "
                         f"got {value}")
    return value


ON_DUPLICATE = ("merge", "refuse")
UNIQUE_KEY_BYTES = 1024
UniqueKey = str | Callable[..., str] | None

RESULT_GRACE = 2.0


def _poll_until(check: Callable[[], bool], timeout: float) -> bool:
    """Call ``check`` with pauses doubling from 1 ms to 50 ms until it is true
    (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        if check():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


class TaskRef:
    """What it takes to queue calls to a task: its name and settings.

    A Task adds the function; a TaskRef alone (from the registry in Redis)
    lets code queue calls to tasks it does not import.
    """

    function: Callable[..., Any] | None = None

    def __init__(
        self,
        app: Any,
        name: str,
        queue: str | bytes | None = None,
        attempts: int = 1,
        retry_delay: float = 30,
        save_results: float = 0,
        vis_timeout: float = 0,
        use_dead: bool = False,
        priority: int = 0,
        unique_for: float = 0,
        unique_key: UniqueKey = None,
        on_duplicate: str = "merge",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"task name must be a non-empty string, got {name!r}")
        self.store = store_of(app)
        self.name = name
        self.queue = normalize_queue(DEFAULT_QUEUE if queue is None else queue)
        self.attempts = _attempts(attempts)
        self.retry_delay = _number("retry_delay", retry_delay)
        self.save_results = _number("save_results", save_results)
        self.vis_timeout = _number("vis_timeout", vis_timeout)
        self.use_dead = bool(use_dead)
        self.priority = _priority(priority)
        self.unique_for = _number("unique_for", unique_for)
        if unique_key is not None and not isinstance(unique_key, str) and not callable(unique_key):
            raise TypeError(f"unique_key must be a str or a function, not "
                            f"{type(unique_key).__name__}")
        self.unique_key = unique_key
        if on_duplicate not in ON_DUPLICATE:
            raise ValueError(f"on_duplicate must be 'merge' or 'refuse', got {on_duplicate!r}")
        self.on_duplicate = on_duplicate
        self._meta = task_meta(self.vis_timeout, self.attempts, self.use_dead, self.priority)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} queue={self.queue!r}>"

    def settings(self) -> dict[str, Any]:
        return {
            "queue": self.queue, "attempts": self.attempts, "retry_delay": self.retry_delay,
            "save_results": self.save_results, "vis_timeout": self.vis_timeout,
            "use_dead": self.use_dead,
            **({"priority": self.priority} if self.priority else {}),
            **({"unique_for": self.unique_for, "on_duplicate": self.on_duplicate}
               if self.unique_for else {}),
        }

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
        """Queue one call (now, or after ``delay`` seconds); returns its handle.

        ``priority``: lower runs first within the queue (default: the task's,
        0), FIFO among equals. ``unique_for``: while a call with the same
        unique key (``unique_key``, a string or a function of the call's
        arguments; default: the task name and arguments) is queued or running,
        and for at most this many seconds, another is merged into it (the
        handle of the first comes back, ``outcome == 'merged'``) or refused
        with DuplicateTask (``on_duplicate='refuse'`` on the task).
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
        """``execute`` for asyncio code, on a redis.asyncio connection."""
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

        Each item is ``(args, kwargs)`` or just an args sequence. Every call
        is encoded before anything is sent, so one bad argument queues nothing.
        ``priority`` and ``unique_for`` apply to every call (see ``execute``);
        a duplicate of a live unique task comes back as that task's handle
        with ``outcome`` 'merged' (or 'refused' when the task refuses
        duplicates). A bounded queue that refuses takes a batch of up to 500
        calls whole or not at all; QueueFull.queued lists what earlier
        batches queued.
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
    """A function that can be called through a queue."""

    def __init__(
        self,
        app: Any,
        function: Callable[..., Any],
        queue: str | bytes | None = None,
        attempts: int = 1,
        retry_delay: float = 30,
        save_results: float = 0,
        vis_timeout: float = 0,
        use_dead: bool = False,
        name: str | None = None,
        schedule: Schedule | None = None,
        never_skip: bool = False,
        retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        timeout: float = 0,
        soft_timeout: float = 0,
        priority: int = 0,
        unique_for: float = 0,
        unique_key: UniqueKey = None,
        on_duplicate: str = "merge",
    ) -> None:
        if not callable(function):
            raise TypeError(f"a task must wrap a callable, not {type(function).__name__}")
        if name is None:
            name = f"{function.__module__}.{function.__name__}"
        super().__init__(app, name, queue, attempts, retry_delay, save_results, vis_timeout,
                         use_dead, priority, unique_for, unique_key, on_duplicate)
        self.function: Callable[..., Any] = function
        self.schedule = schedule
        self.never_skip = bool(never_skip)
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        if not all(isinstance(e, type) and issubclass(e, BaseException) for e in retry_on):
            raise TypeError(f"retry_on must be exception classes, got {retry_on!r}")
        if retry_on and self.attempts < 2:
            raise ValueError("retry_on needs attempts > 1: it retries while attempts are left")
        self.retry_on = tuple(retry_on)
        self.backoff = _number("backoff", backoff)
        self.max_backoff = _number("max_backoff", max_backoff)
        self.timeout = _number("timeout", timeout)
        self.soft_timeout = _number("soft_timeout", soft_timeout)
        if self.timeout and self.soft_timeout and self.soft_timeout >= self.timeout:
            raise ValueError(f"soft_timeout ({soft_timeout}) must be below timeout ({timeout})")
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def settings(self) -> dict[str, Any]:
        out = super().settings()
        if self.timeout or self.soft_timeout:
            out.update(timeout=self.timeout, soft_timeout=self.soft_timeout)
        if self.retry_on:
            out["retry_on"] = [e.__name__ for e in self.retry_on]
        if self.schedule is not None:
            out["schedule"] = self.schedule.describe()
            out["never_skip"] = self.never_skip
        return out


class EnqueuedTask:
    """The handle of one queued call: status, wait, cancel, result."""

    def __init__(
        self,
        app: Any,
        name: str,
        queue: str,
        taskid: str,
        args: tuple[Any, ...] | list[Any],
        inline: tuple[Any] | None = None,
        outcome: str = "queued",
    ) -> None:
        self.store = store_of(app)
        # What execute() did: 'queued', 'replaced' (a pending task with this
        # id was replaced), 'merged' (a live unique task had the same key:
        # this handle is that task's), 'refused' (execute_many only: likewise,
        # for a task that refuses duplicates).
        self.outcome = outcome
        self.name = name
        self.queue = queue
        self.taskid = taskid
        self.args = args
        self._inline = inline

    def __repr__(self) -> str:
        return f"<EnqueuedTask {self.name} id={self.taskid} queue={self.queue!r}>"

    @property
    def status(self) -> str:
        """'early', 'late', 'waiting', 'started' or 'done'."""
        if self._inline is not None:
            return "done"
        return self.store.run(self.store.calls.status(self.queue, self.taskid))

    def wait(self, timeout: float = 30) -> bool:
        """True once the task has started or finished, False after ``timeout`` seconds."""
        return _poll_until(lambda: self.status in ("started", "done"), timeout)

    def cancel(self) -> bool | int:
        """True if removed before running, False if unknown (or running),
        -1 if it ran and its saved result was deleted."""
        code = self.store.run(self.store.calls.cancel(self.queue, self.taskid))
        return -1 if code == -1 else bool(code)

    def abort(self, hard: bool = False) -> bool:
        """Stop this task: cancel it if it has not started, else ask it to stop.

        A running task sees ``rpqueue.current_task().abort_requested`` within
        about half a second. With ``hard=True`` the worker also stops it:
        TaskAborted is raised in a plain function, an ``async def`` one is
        cancelled. An aborted run is recorded as failed and not retried.
        Returns False when the task is unknown or already done.
        """
        status = self.status
        if status in ("early", "late", "waiting"):
            return self.cancel() is True
        if status != "started":
            return False  # done: its saved result stays
        key = self.store.keys.queue(self.queue).abort(self.taskid)
        # Workers look every half second; a short life keeps the flag from
        # reaching a later run that reuses this task id.
        self.store.client.set(key, "hard" if hard else "soft", px=60_000)
        return True

    @property
    def result(self) -> Any:
        """The saved return value, or None.

        ``wait()`` returns once a task has started, so a result read right
        after it may be a moment early: for a task still running, this waits
        up to RESULT_GRACE seconds for it to finish (the seed README's
        ``if t.wait(5): print(t.result)`` relies on it).
        """
        if self._inline is not None:
            return self._inline[0]
        key = self.store.keys.queue(self.queue).result(self.taskid)
        raw = self.store.client.get(key)
        if raw is None and self.status == "started":
            _poll_until(lambda: self.status != "started", RESULT_GRACE)
            raw = self.store.client.get(key)
        return decode_result(raw)

    # -- asyncio -------------------------------------------------------------

    async def astatus(self) -> str:
        if self._inline is not None:
            return "done"
        return await self.store.arun(self.store.calls.status(self.queue, self.taskid))

    async def await_started(self, timeout: float = 30) -> bool:
        """``wait`` for asyncio code: True once the task has started or finished."""
        return await self._await(("started", "done"), timeout)

    async def await_result(self, timeout: float = 30) -> Any:
        """Wait until the task is done and return its saved result (None if none was saved).

        Raises TimeoutError when it has not finished within ``timeout`` seconds.
        """
        if not await self._await(("done",), timeout):
            raise TimeoutError(f"task {self.taskid} not done after {timeout}s")
        return await self.aresult()

    async def aresult(self) -> Any:
        if self._inline is not None:
            return self._inline[0]
        raw = await self.store.aclient().get(self.store.keys.queue(self.queue).result(self.taskid))
        return decode_result(raw)

    async def acancel(self) -> bool | int:
        code = await self.store.arun(self.store.calls.cancel(self.queue, self.taskid))
        return -1 if code == -1 else bool(code)

    async def _await(self, states: tuple[str, ...], timeout: float) -> bool:
        import asyncio

        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            if await self.astatus() in states:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

