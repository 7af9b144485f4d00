"""Eager mode: calls run in the producer, at ``execute``, instead of in a worker.

``rpqueue.testing.eager(app)`` turns it on for one app (its store). A call
then runs as a worker would run it: its arguments and result go through
JSON, ``_attempts`` counts down, a failure is retried (at once: delays and
backoff are not waited for) under the worker's rules, the result is kept only
when the task saves results, and the error of the last attempt is recorded on
the handle (``inline_error``) instead of being raised.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .handle import EnqueuedTask
from .storage import Store
from .storage.message import decode, decode_result, encode_result

log = logging.getLogger("rpqueue.eager")

# store -> the tasks defined for it (a TaskRef in eager mode runs the Task of
# its name). Weak: an app dropped by a test takes its entry with it.
_EAGER: weakref.WeakKeyDictionary[Store, Mapping[str, Any]] = weakref.WeakKeyDictionary()


class Runnable(Protocol):
    """What eager mode reads of a Task."""

    name: str
    store: Store

    @property
    def attempts(self) -> int: ...

    @property
    def retry_on(self) -> tuple[type[BaseException], ...]: ...

    @property
    def vis_timeout(self) -> float: ...

    @property
    def save_results(self) -> float: ...

    @property
    def function(self) -> Callable[..., Any] | None: ...


# False while no store is eager (the rule outside tests): execute() then
# skips is_eager(), whose weak-dict look-up is a Python call. May stay True
# after the last eager store is collected; is_eager() still answers right.
ACTIVE = False


def enable(store: Store, registry: Mapping[str, Any]) -> None:
    """Run the calls queued through ``store`` eagerly; ``registry``: its tasks by name."""
    global ACTIVE
    _EAGER[store] = registry
    ACTIVE = True


def disable(store: Store) -> None:
    """Queue the calls through ``store`` again."""
    global ACTIVE
    _EAGER.pop(store, None)
    ACTIVE = len(_EAGER) > 0


def is_eager(store: Store) -> bool:
    """Whether calls through ``store`` run eagerly."""
    return store in _EAGER


def task_for(store: Store, name: str) -> Runnable | None:
    """The task ``name`` defined for an eager store, or None."""
    registry = _EAGER.get(store)
    found: Runnable | None = None if registry is None else registry.get(name)
    return found


def _call(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
    value = function(*args, **kwargs)
    if not inspect.iscoroutine(value):
        return value
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(value)
    # Called from async code: asyncio.run cannot nest, a thread runs its own loop.
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(value)))
        except BaseException as exc:  # re-raised in the caller's thread
            box.append((False, exc))

    t = threading.Thread(target=run, name="rpqueue-eager")
    t.start()
    t.join()
    ok, out = box[0]
    if not ok:
        raise out
    return out


def _retries(task: Runnable, exc: BaseException, left: int) -> bool:
    """The worker's rule (worker.state.plan_failure), without the waiting."""
    if left <= 1:
        return False
    if task.retry_on:
        return isinstance(exc, task.retry_on)
    return task.vis_timeout > 0


def run(task: Runnable, queue: str, taskid: str, message: str) -> EnqueuedTask[Any]:
    """Run one encoded call here, now, as a worker would; returns its handle."""
    function = task.function
    if function is None:
        raise ValueError(f"task {task.name!r} is not defined in this process; "
                         "it cannot run eagerly")
    call = decode(message)  # the arguments as a worker receives them
    args, kwargs = list(call.args), dict(call.kwargs)
    left = task.attempts
    while True:
        try:
            value = _call(function, args, kwargs)
        except Exception as exc:
            if _retries(task, exc, left):
                left -= 1
                if "_attempts" in kwargs:
                    kwargs["_attempts"] = left
                continue
            log.info("eager call %s of %s raised %r", taskid, task.name, exc)
            return EnqueuedTask(task.store, task.name, queue, taskid, tuple(args),
                                inline=(None,), inline_error=exc)
        break
    kept = None
    if task.save_results > 0:
        try:
            kept = decode_result(encode_result(task.name, value))
        except TypeError as exc:
            log.error("%s; keeping None instead", exc)  # as a worker saves null
    return EnqueuedTask(task.store, task.name, queue, taskid, tuple(args), inline=(kept,))
