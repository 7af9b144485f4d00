"""Tasks: ``TaskRef`` (a name and options: enough to queue calls) and ``Task``
(a TaskRef with its function). The options live in ``rpqueue.options``, the
handle of a queued call (``EnqueuedTask``) in ``rpqueue.handle``."""

from __future__ import annotations

import datetime
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic

from .bound import TaskCall
from .enqueue import UNIQUE_KEY_BYTES, Enqueuer
from .handle import RESULT_GRACE, EnqueuedTask, store_of
from .options import (
    DEFAULT_QUEUE,
    NO_CALL_OPTIONS,
    ON_DUPLICATE,
    CallOptions,
    TaskOptions,
    UniqueKey,
)
from .storage.wire import task_meta
from .typevars import P, R

# Re-exported: ``from rpqueue.task import EnqueuedTask`` predates handle.py.
__all__ = [
    "DEFAULT_QUEUE",
    "ON_DUPLICATE",
    "RESULT_GRACE",
    "UNIQUE_KEY_BYTES",
    "AsyncTask",
    "CallOptions",
    "EnqueuedTask",
    "Task",
    "TaskCall",
    "TaskOptions",
    "TaskRef",
    "UniqueKey",
    "store_of",
]


class TaskRef(Enqueuer):
    """What it takes to queue calls to a task: its name and options.

    ``TaskRef(app, name, **options)``: ``app`` is an app (or its context or
    store); the options are those of ``@task`` (see ``help(rpqueue.task)``),
    or ``options=`` a whole TaskOptions, which keywords then change. A Task
    adds the function; a TaskRef alone (from the registry in Redis) lets code
    queue calls to tasks it does not import. The options read as attributes
    (``ref.queue``, ``ref.attempts``...) and as one TaskOptions,
    ``ref.task_options``; ``ref.options(delay=...)`` sets those of calls.
    """

    def __init__(self, app: Any, name: str, *, options: TaskOptions | None = None,
                 **changes: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"task name must be a non-empty string, got {name!r}")
        self.store = store_of(app)
        self.name = name
        self.task_options = TaskOptions.of(options, **{**changes, "name": name})
        # Computed once: every call without its own priority or unique key shares it.
        self._meta = task_meta(self.vis_timeout, self.attempts, self.use_dead, self.priority)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} queue={self.queue!r}>"

    def options(
        self,
        *,
        delay: float | datetime.timedelta | None = None,
        taskid: str | None = None,
        queue: str | bytes | None = None,
        priority: int | None = None,
        unique_for: float | None = None,
        unique_key: UniqueKey = None,
    ) -> TaskCall[..., Any]:
        """The options of the next calls, checked now (CallOptions); the
        TaskCall returned queues calls with them: its ``execute(*args,
        **kwargs)`` takes the function's arguments only, every keyword going
        to the function. On a Task it is typed by the function's signature,
        so ``task.options().execute(...)`` is an ``execute`` that mypy checks.
        An unknown option is a TypeError (and a mypy error)."""
        return TaskCall(self, CallOptions(delay, taskid, queue, priority, unique_for,
                                          unique_key))

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
    ) -> EnqueuedTask[Any]:
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
        if (delay is None and taskid is None and _queue is None and priority is None
                and unique_for is None and unique_key is None):
            # Fast path: no call option given, so nothing to build or check.
            call = NO_CALL_OPTIONS
        else:
            call = CallOptions(delay, taskid, _queue, priority, unique_for, unique_key)
        return self._enqueue(args, kwargs, call, execute_inline_now)

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
    ) -> EnqueuedTask[Any]:
        """``execute`` for asyncio code, on a redis.asyncio connection.

        The same keywords (but no ``execute_inline_now``), return value and
        errors as ``execute``.
        """
        call = CallOptions(delay, taskid, _queue, priority, unique_for, unique_key)
        return await self._aenqueue(args, kwargs, call)

    def retry(self, *args: Any, **kwargs: Any) -> EnqueuedTask[Any] | None:
        """Queue this call again with one attempt fewer, or do nothing if none are left.

        ``_attempts`` (passed to the task when ``attempts > 1``) counts the
        attempts left including the current one.
        """
        if not self._retry_kwargs(kwargs):
            return None
        return self.execute(*args, **kwargs)

    async def aretry(self, *args: Any, **kwargs: Any) -> EnqueuedTask[Any] | None:
        """``retry`` for asyncio code (an ``async def`` task), on a redis.asyncio connection."""
        if not self._retry_kwargs(kwargs):
            return None
        return await self.aexecute(*args, **kwargs)


class Task(TaskRef, Generic[P, R]):
    """A function that can be called through a queue: ``Task[P, R]`` for a
    function of parameters ``P`` returning ``R``.

    Made by ``@task`` (or ``@periodic_task``, ``@cron_task``), which also
    registers it with the app; ``Task(app, function, **options)`` takes the
    same options (``name`` defaults to ``module.function``). Calling the task
    runs the function here, now; ``execute`` queues a call for a worker, and
    ``options(delay=..., ...).execute(*args, **kwargs)`` does with the call's
    options given apart, so a type checker checks the arguments against the
    function's. Either way, arguments the function cannot take raise
    TypeError and queue nothing.
    """

    def __init__(self, app: Any, function: Callable[P, R], *,
                 options: TaskOptions | None = None, **changes: Any) -> None:
        if not callable(function):
            raise TypeError(f"a task must wrap a callable, not {type(function).__name__}")
        name = changes.pop("name", None)
        if name is None:
            name = options.name if options is not None and options.name is not None \
                else f"{function.__module__}.{function.__name__}"
        super().__init__(app, name, options=options, **changes)
        self.function: Callable[P, R] = function
        self._signature: inspect.Signature | bool | None = False  # False: not read yet
        self._positional: tuple[int, int] | None = None
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def _eager_task(self) -> Task[P, R]:
        return self

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._signature is False:
            try:
                self._signature = inspect.signature(self.function)
            except (TypeError, ValueError):  # some builtins have none to read
                self._signature = None
            self._positional = _positional_range(self._signature)
        # The common call (positional arguments only, to a function that
        # takes plain parameters) is checked by counting: bind() would cost
        # a tenth of an execute().
        span = self._positional
        if span is not None and not kwargs and span[0] <= len(args) <= span[1]:
            return
        sig = self._signature
        if not isinstance(sig, inspect.Signature):
            return
        if "_attempts" in kwargs and "_attempts" not in sig.parameters and not any(
                p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            kwargs = {k: v for k, v in kwargs.items() if k != "_attempts"}
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"bad arguments for task {self.name}{sig}: {exc}; "
                            "nothing was queued") from None

    if TYPE_CHECKING:
        # The function's types; the bodies are TaskRef's (see there).
        def options(self, *, delay: float | datetime.timedelta | None = None,
                    taskid: str | None = None, queue: str | bytes | None = None,
                    priority: int | None = None, unique_for: float | None = None,
                    unique_key: UniqueKey = None) -> TaskCall[P, R]: ...

        def execute(self, *args: Any, delay: float | datetime.timedelta | None = None,
                    taskid: str | None = None, _queue: str | bytes | None = None,
                    execute_inline_now: bool = False, priority: int | None = None,
                    unique_for: float | None = None, unique_key: UniqueKey = None,
                    **kwargs: Any) -> EnqueuedTask[R]: ...

        async def aexecute(self, *args: Any, delay: float | datetime.timedelta | None = None,
                           taskid: str | None = None, _queue: str | bytes | None = None,
                           priority: int | None = None, unique_for: float | None = None,
                           unique_key: UniqueKey = None, **kwargs: Any) -> EnqueuedTask[R]: ...


class AsyncTask(Task[P, R]):
    """The Task of an ``async def`` function: ``AsyncTask[P, R]`` for one of
    parameters ``P`` whose coroutine returns ``R``, so handles are
    ``EnqueuedTask[R]`` (calling the task still gives the coroutine).

    ``@task`` makes one for an ``async def`` function; it is a Task in every
    other way.
    """

    if TYPE_CHECKING:
        def __call__(  # type: ignore[override]
                self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...


def _positional_range(sig: inspect.Signature | None) -> tuple[int, int] | None:
    """(fewest, most) positional arguments a function with only plain
    positional parameters accepts; None when its signature has more to it."""
    if sig is None:
        return None
    low = high = 0
    for p in sig.parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return None
        high += 1
        if p.default is p.empty:
            low = high
    return low, high
