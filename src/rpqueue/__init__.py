"""rpqueue: a priority task queue for Python on Redis, with JSON on the wire.

The module-level functions act on a default RPQueue instance; make more,
fully independent ones with ``new_rpqueue(name, prefix)``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from typing import Any, overload

from . import admin as _admin
from . import decorators as _decorators
from . import pause as _pause
from .app import (
    DEADLETTER_QUEUE,
    DEFAULT_QUEUE,
    MINIMUM_DELAY,
    RPQueue,
    _bind_api,
    new_rpqueue,
)
from .data import Data, Leased
from .errors import (
    DuplicateTask,
    EnqueueRefused,
    MessageTooLarge,
    NotDurable,
    QueueFull,
    RedisOutOfMemory,
    SoftTimeLimitExceeded,
    TaskAborted,
    TimeLimitExceeded,
)
from .locks import NoLock, SimpleLock
from .task import EnqueuedTask, Task
from .worker.runner import current_task

VERSION = "1.0.0.dev0"
__version__ = VERSION

_bind_api()
_default = new_rpqueue("default")


@overload
def task(func: Callable[..., Any]) -> Task: ...


@overload
def task(
    func: str | bytes | None = None,
    queue: str | bytes | None = None,
    attempts: int = 1,
    retry_delay: float = 30,
    save_results: float = 0,
    vis_timeout: float = 0,
    use_dead: bool = False,
    name: str | None = None,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
    backoff: float = 1.0,
    max_backoff: float = 300.0,
    timeout: float = 0,
    soft_timeout: float = 0,
    priority: int = 0,
    unique_for: float = 0,
    unique_key: str | Callable[..., str] | None = None,
    on_duplicate: str = "merge",
) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    func: Callable[..., Any] | str | bytes | None = None,
    queue: str | bytes | None = None,
    attempts: int = 1,
    retry_delay: float = 30,
    save_results: float = 0,
    vis_timeout: float = 0,
    use_dead: bool = False,
    name: str | None = None,
    retry_on: tuple[type[BaseException], ...] | type[BaseException] = (),
    backoff: float = 1.0,
    max_backoff: float = 300.0,
    timeout: float = 0,
    soft_timeout: float = 0,
    priority: int = 0,
    unique_for: float = 0,
    unique_key: str | Callable[..., str] | None = None,
    on_duplicate: str = "merge",
) -> Any:
    """Declare a task: ``@task`` bare, or ``@task(queue=..., attempts=..., ...)``."""
    return _decorators.task(_default, func, queue, attempts, retry_delay, save_results,
                            vis_timeout, use_dead, name, retry_on, backoff, max_backoff,
                            timeout, soft_timeout, priority, unique_for, unique_key,
                            on_duplicate)


def periodic_task(
    run_every: float | datetime.timedelta,
    queue: str | bytes = DEFAULT_QUEUE,
    never_skip: bool = False,
    attempts: int = 1,
    retry_delay: float = 30,
    low_delay_okay: bool = False,
    save_results: float = 0,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Task]:
    """Run the decorated function every ``run_every`` seconds, once per period."""
    return _decorators.periodic_task(_default, run_every, queue, never_skip, attempts,
                                     retry_delay, low_delay_okay, save_results, name)


def cron_task(
    crontab: str,
    queue: str | bytes = DEFAULT_QUEUE,
    never_skip: bool = False,
    attempts: int = 1,
    retry_delay: float = 30,
    save_results: float = 0,
    name: str | None = None,
) -> Callable[[Callable[..., Any]], Task]:
    """Run the decorated function on a crontab schedule (UTC)."""
    return _decorators.cron_task(_default, crontab, queue, never_skip, attempts, retry_delay,
                                 save_results, name)


def default_app() -> RPQueue:
    return _default


def set_redis_connection_settings(
    host: str = "localhost",
    port: int = 6379,
    db: int = 0,
    password: str | None = None,
    socket_timeout: float | None = 30,
    unix_socket_path: str | None = None,
    ssl: bool = False,
    ssl_ca_certs: str | None = None,
) -> None:
    _default.set_redis_connection_settings(
        host, port, db, password, socket_timeout, unix_socket_path, ssl, ssl_ca_certs
    )


def set_redis_connection(conn: Any) -> None:
    _default.set_redis_connection(conn)


def set_redis_url(url: str) -> None:
    _default.set_redis_url(url)


def pause_queue(queue: str | bytes) -> bool:
    """Workers stop taking from this queue (within about a second); False if already paused."""
    return _pause.pause_queue(_default, queue)


def resume_queue(queue: str | bytes) -> bool:
    """Workers take from this queue again; False if it was not paused."""
    return _pause.resume_queue(_default, queue)


def paused_queues() -> list[str]:
    return _pause.paused_queues(_default)


def set_durable(replicas: int, timeout: float = 1.0) -> None:
    """Confirm every enqueue on ``replicas`` replicas (WAIT) or raise NotDurable."""
    _default.set_durable(replicas, timeout)


def set_key_prefix(prefix: str | bytes) -> None:
    _default.set_key_prefix(prefix)


def set_priority(queue: str | bytes, qpri: float) -> None:
    _default.set_priority(queue, qpri)


def set_scheduling(mode: str, age: float | None = None) -> None:
    """How workers share out their queues: "strict" priority order (the default),
    "weighted" (set_queue_weight) or "aging" (``age`` in seconds)."""
    _default.set_scheduling(mode, age)


def get_scheduling() -> dict[str, Any]:
    return _default.get_scheduling()


def set_queue_weight(queue: str | bytes, weight: float) -> None:
    """The share of ``queue`` when scheduling is "weighted" (default 1)."""
    _default.set_queue_weight(queue, weight)


def queue_weights() -> dict[str, float]:
    return _default.queue_weights()


def set_queue_limit(queue: str | bytes, max_len: int | None, overflow: str = "refuse") -> None:
    """Bound a queue: at most ``max_len`` tasks waiting or delayed (None or 0: unbounded).
    ``overflow``: 'refuse' (QueueFull) or 'drop_oldest' (dead-letter to make room)."""
    _admin.set_queue_limit(_default, queue, max_len, overflow)


def queue_limit(queue: str | bytes) -> dict[str, Any] | None:
    """The bound of a queue, {'max_len': n, 'overflow': policy}, or None."""
    return _admin.queue_limit(_default, queue)


def known_queues() -> list[str]:
    return _default.known_queues()


def queue_sizes() -> list[tuple[str, int, float]]:
    return _admin.queue_sizes(_default)


def clear_queue(queue: str | bytes, delete: bool = False, is_data: bool = False) -> int:
    return _admin.clear_queue(_default, queue, delete, is_data)


def get_page(queue: str | bytes, page: int, per_page: int = 50) -> list[dict[str, Any]]:
    return _admin.get_page(_default, queue, page, per_page)


def delete_item(queue: str | bytes, taskid: str) -> bool:
    return _admin.delete_item(_default, queue, taskid)


def read_deadletter(
    delete: bool = False, limit: int = 100, is_data: bool = False
) -> list[dict[str, Any]]:
    return _admin.read_deadletter(_default, delete, limit, is_data)


def result(taskid: str) -> Any:
    return _admin.results(_default, [taskid])[0]


def results(taskids: Iterable[str]) -> list[Any]:
    return _admin.results(_default, taskids)


def get_task(name: str) -> Any:
    """The task with this name (a Task here, or a TaskRef from the registry), or None."""
    return _admin.get_task(_default, name)


def call_task(name: str, queue: str | bytes | None = None, *args: Any,
              _verify_call: bool = False, **kwargs: Any) -> EnqueuedTask:
    return _admin.call_task(_default, name, queue, *args, _verify_call=_verify_call, **kwargs)


known_tasks = _admin.KnownTasks(_default)


def flush_tasks(
    complete: bool = False,
    force_delayed: bool = False,
    wait_on_hidden: bool = False,
    timeout: float | None = None,
    log_every: float = 0,
) -> tuple[list[str], list[str], list[str]]:
    return _admin.flush_tasks(_default, complete, force_delayed, wait_on_hidden, timeout,
                              log_every)


def execute_tasks(
    queues: Iterable[str | bytes] | None = None,
    threads_per_process: int = 1,
    processes: int = 1,
    wait_per_thread: float = 1,
    module: str | None = None,
) -> int:
    from .worker import execute_tasks as _execute

    names = [q if isinstance(q, str) else q.decode("utf-8") for q in queues] if queues else None
    return _execute(_default, names, threads_per_process, processes, wait_per_thread, module,
                    success_level=logging.DEBUG)


__all__ = [
    "DEADLETTER_QUEUE",
    "DEFAULT_QUEUE",
    "MINIMUM_DELAY",
    "VERSION",
    "Data",
    "DuplicateTask",
    "EnqueueRefused",
    "EnqueuedTask",
    "Leased",
    "MessageTooLarge",
    "NoLock",
    "NotDurable",
    "QueueFull",
    "RPQueue",
    "RedisOutOfMemory",
    "SimpleLock",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskAborted",
    "TimeLimitExceeded",
    "call_task",
    "clear_queue",
    "cron_task",
    "current_task",
    "default_app",
    "delete_item",
    "execute_tasks",
    "flush_tasks",
    "get_page",
    "get_scheduling",
    "get_task",
    "known_queues",
    "known_tasks",
    "new_rpqueue",
    "pause_queue",
    "paused_queues",
    "periodic_task",
    "queue_limit",
    "queue_sizes",
    "queue_weights",
    "read_deadletter",
    "result",
    "results",
    "resume_queue",
    "set_durable",
    "set_key_prefix",
    "set_priority",
    "set_queue_limit",
    "set_queue_weight",
    "set_redis_connection",
    "set_redis_connection_settings",
    "set_redis_url",
    "set_scheduling",
    "task",
]
