"""How calls to a task are checked, encoded and queued: ``Enqueuer``, the
base of ``TaskRef`` (rpqueue.task), which adds the public ``execute`` family.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from . import eager
from .errors import DuplicateTask, MessageTooLarge, QueueFull
from .handle import EnqueuedTask
from .options import (
    NO_CALL_OPTIONS,
    CallOptions,
    HasOptions,
    UniqueKey,
    _delay,
    _number,
    _priority,
)
from .storage import Enqueued, Store
from .storage.keys import normalize_queue
from .storage.message import encode_call, new_id, new_ids
from .storage.wire import EnqueueStatus, task_meta

DUPLICATE, FULL, REPLACED, RUNNING = (EnqueueStatus.DUPLICATE, EnqueueStatus.FULL,
                                      EnqueueStatus.REPLACED, EnqueueStatus.RUNNING)
UNIQUE_KEY_BYTES = 1024


class Enqueuer(HasOptions):
    """The queuing machinery of a task: set ``store``, ``name``, the options
    (``task_options``) and ``_meta``; ``function`` when the task has one."""

    store: Store
    name: str
    _meta: str
    function: Callable[..., Any] | None = None

    def _enqueue(self, args: tuple[Any, ...], kwargs: dict[str, Any], call: CallOptions,
                 inline: bool = False) -> EnqueuedTask[Any]:
        """Queue one call (or run it here: ``inline``, or the app in eager mode)."""
        self._check_call(args, kwargs)
        queue, taskid, message = self._prepare(args, kwargs, call.taskid, call.queue)
        meta, hold = self._meta_for(args, kwargs, call.priority, call.unique_for,
                                    call.unique_key)
        if inline:
            if self.function is None:
                raise ValueError(f"task {self.name!r} is not defined in this process; "
                                 "it cannot run inline")
            return EnqueuedTask(self.store, self.name, queue, taskid, args,
                                inline=(self.function(*args, **kwargs),))
        store = self.store
        # eager.ACTIVE: no store was ever made eager, so skip the weak look-up.
        if eager.ACTIVE and eager.is_eager(store):
            return eager.run(self._eager_task(), queue, taskid, message)
        store.note_queue(queue)
        enqueue = store.calls.enqueue(queue, taskid, message,
                                      0.0 if call is NO_CALL_OPTIONS else call.seconds,
                                      meta, hold, call.taskid is None)
        return self._handle(store.run_enqueue(enqueue), queue, taskid, args)

    async def _aenqueue(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                        call: CallOptions) -> EnqueuedTask[Any]:
        self._check_call(args, kwargs)
        queue, taskid, message = self._prepare(args, kwargs, call.taskid, call.queue)
        meta, hold = self._meta_for(args, kwargs, call.priority, call.unique_for,
                                    call.unique_key)
        if eager.is_eager(self.store):
            return eager.run(self._eager_task(), queue, taskid, message)
        await self.store.anote_queue(queue)
        enqueue = self.store.calls.enqueue(queue, taskid, message, call.seconds, meta, hold,
                                           call.taskid is None)
        return self._handle(await self.store.arun_enqueue(enqueue), queue, taskid, args)

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise TypeError for arguments the function cannot take (a Task only)."""

    def _eager_task(self) -> eager.Runnable:
        """The task an eager call runs: the Task of this name defined for the app."""
        found = eager.task_for(self.store, self.name)
        if found is None:
            raise ValueError(f"task {self.name!r} is not defined in this process; "
                             "it cannot run eagerly")
        return found

    def _prepare(self, args: tuple[Any, ...], kwargs: dict[str, Any], taskid: str | None,
                 queue: str | bytes | None) -> tuple[str, str, str]:
        """Validate and encode one call before anything is sent."""
        # Read off task_options directly: the attribute descriptors
        # (self.queue...) cost a Python call each, on every execute().
        options = self.task_options
        # The queue and id come checked (CallOptions).
        name = options.queue if queue is None else normalize_queue(queue)
        if taskid is None:
            taskid = new_id()
        attempts = options.attempts
        if attempts > 1 and "_attempts" not in kwargs:
            kwargs["_attempts"] = attempts
        message = encode_call(taskid, self.name, name, args, kwargs)
        self._check_size(message)
        return name, taskid, message

    def _meta_for(self, args: tuple[Any, ...], kwargs: dict[str, Any], priority: int | None,
                  unique_for: float | None, unique_key: UniqueKey) -> tuple[str, float]:
        """The meta string and unique hold (seconds, 0: none) of one call."""
        hold = (self.task_options.unique_for if unique_for is None
                else _number("unique_for", unique_for))
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
                args: tuple[Any, ...]) -> EnqueuedTask[Any]:
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
    ) -> list[EnqueuedTask[Any]]:
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
            self._check_call(args, kwargs)
            if self.attempts > 1 and "_attempts" not in kwargs:
                kwargs["_attempts"] = self.attempts
            message = encode_call(taskid, self.name, queue, args, kwargs)
            self._check_size(message)
            meta, hold = self._meta_for(args, kwargs, priority, unique_for, None)
            prepared.append((taskid, message, meta))
            arglist.append(args)
        if eager.is_eager(self.store):
            return [eager.run(self._eager_task(), queue, taskid, message)
                    for taskid, message, _ in prepared]
        self.store.note_queue(queue)
        out: list[EnqueuedTask[Any]] = []
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
