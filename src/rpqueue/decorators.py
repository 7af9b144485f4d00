"""@task, @periodic_task and @cron_task, bound to an app."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .task import Task

if TYPE_CHECKING:
    from .context import Context

Decorated = Callable[[Callable[..., Any]], Task]


def task(
    app: Context,
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
    """``@task`` bare, or ``@task(queue=..., attempts=..., ...)``.

    Beyond the original: ``retry_on`` retries on those exceptions with
    exponential backoff (``backoff`` * 2**n seconds, jittered, at most
    ``max_backoff``) while attempts are left; ``soft_timeout`` raises
    SoftTimeLimitExceeded inside the task, ``timeout`` stops it; ``priority``
    is the default per-message priority (lower first); ``unique_for``,
    ``unique_key`` and ``on_duplicate`` make calls unique (see Task.execute).
    """
    if isinstance(func, (str, bytes)):
        # @task("queue") — the queue given positionally, as the original allowed.
        func, queue = None, func

    def wrap(function: Callable[..., Any]) -> Task:
        return _register(app, Task(app, function, queue=queue, attempts=attempts, retry_delay=retry_delay,
                    save_results=save_results, vis_timeout=vis_timeout, use_dead=use_dead,
                    name=name, retry_on=retry_on, backoff=backoff, max_backoff=max_backoff,
                    timeout=timeout, soft_timeout=soft_timeout, priority=priority,
                    unique_for=unique_for, unique_key=unique_key, on_duplicate=on_duplicate))

    if func is not None:
        return wrap(func)
    return wrap


def periodic_task(
    app: Context,
    run_every: float | datetime.timedelta,
    queue: str | bytes = "default",
    never_skip: bool = False,
    attempts: int = 1,
    retry_delay: float = 30,
    low_delay_okay: bool = False,
    save_results: float = 0,
    name: str | None = None,
) -> Decorated:
    """Run the decorated function every ``run_every`` seconds, once per period."""
    from .context import MINIMUM_DELAY
    from .schedule import Every, check_period

    check_period(run_every, MINIMUM_DELAY, low_delay_okay)
    schedule = Every(run_every)

    def wrap(function: Callable[..., Any]) -> Task:
        return _register(app, Task(app, function, queue=queue, attempts=attempts, retry_delay=retry_delay,
                    save_results=save_results, name=name, schedule=schedule,
                    never_skip=never_skip))

    return wrap


def cron_task(
    app: Context,
    crontab: str,
    queue: str | bytes = "default",
    never_skip: bool = False,
    attempts: int = 1,
    retry_delay: float = 30,
    save_results: float = 0,
    name: str | None = None,
) -> Decorated:
    """Run the decorated function on a crontab schedule (UTC), once per planned time."""
    from .schedule import Cron

    schedule = Cron(crontab)

    def wrap(function: Callable[..., Any]) -> Task:
        return _register(app, Task(app, function, queue=queue, attempts=attempts, retry_delay=retry_delay,
                    save_results=save_results, name=name, schedule=schedule,
                    never_skip=never_skip))

    return wrap


def _register(app: Context, task: Task) -> Task:
    app.register(task)
    return task
