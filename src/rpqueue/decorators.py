"""@task, @periodic_task and @cron_task, bound to an app's context.

Each makes a ``Task`` from the decorated function with one ``TaskOptions``
and registers it, so workers of the app can run it. ``RPQueue`` offers them
as methods, ``rpqueue`` as module functions (the default app's).
"""

from __future__ import annotations

import datetime
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, cast, overload

from .options import DEFAULTS, SCHEDULE_OPTIONS, TaskOptions, keyword_parameters
from .task import AsyncTask, Task

if TYPE_CHECKING:
    from .context import Context
    from .schedule import Schedule

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class TaskDecorator(Protocol):
    """What ``@task(...)``, ``@periodic_task(...)`` and ``@cron_task(...)``
    return: a decorator turning a function of parameters P returning R into
    a ``Task[P, R]`` (an ``async def`` one, whose coroutine returns T, into
    an ``AsyncTask[P, T]``)."""

    @overload
    def __call__(self, function: Callable[P, Coroutine[Any, Any, T]], /
                 ) -> AsyncTask[P, T]: ...

    @overload
    def __call__(self, function: Callable[P, R], /) -> Task[P, R]: ...


Decorated = TaskDecorator


@overload
def task(app: Context, func: Callable[P, Coroutine[Any, Any, T]]) -> AsyncTask[P, T]: ...


@overload
def task(app: Context, func: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(app: Context, func: str | bytes | None = None, **options: Any) -> TaskDecorator: ...


def task(app: Context, func: Callable[..., Any] | str | bytes | None = None,
         **options: Any) -> Any:
    """Make a function a task: ``@task``, ``@task(queue=..., attempts=...)``
    or ``@task("queue")``.

    Returns the Task (for ``@task`` bare) or a decorator that makes one. The
    Task still runs the function when called; ``task.execute(*args,
    **kwargs)`` queues a call for a worker and returns an EnqueuedTask
    handle; ``task.execute_many`` queues many. The task is registered in the
    app under its name, which workers look calls up by.

    Options (all keywords; seconds may be int or float):

    - ``queue`` (str or bytes, default 'default'): the queue its calls go to.
    - ``name`` (str): the name calls are queued under; default
      ``module.function``. Give one to rename a function without orphaning
      calls already queued.
    - ``attempts`` (int >= 1, default 1): how many times a call may run.
      With more than 1, the function receives ``_attempts`` (attempts left,
      counting this one) and may call ``task.retry(*args, **kwargs)``, which
      queues it again with one attempt fewer (and does nothing once none is
      left); see also ``retry_on`` and ``vis_timeout``.
    - ``retry_delay`` (default 30): seconds before a ``retry`` runs, unless
      it passes ``delay``.
    - ``retry_on`` (exception class or tuple of them, default none): retry
      automatically when the function raises one of them, while attempts
      are left (needs ``attempts`` > 1), after a delay that starts at
      ``backoff`` seconds and doubles with each retry, jittered, at most
      ``max_backoff`` (defaults 1 and 300).
    - ``save_results`` (default 0): seconds to keep the return value
      (``EnqueuedTask.result``); 0 keeps none.
    - ``vis_timeout`` (default 0): a taken call is invisible for this many
      seconds; if it raises, crashes or hangs past it, it runs again (one
      attempt fewer) while attempts are left. 0: the worker holds a lease it
      renews while the call runs; a call whose worker died shows as started
      until that lease (``app.running_lease``) ends, then is dropped or
      dead-lettered.
    - ``use_dead`` (bool, default False): put a call that fails with no
      attempt left, or is lost with no attempt left, in the dead letter
      queue (``read_deadletter``, ``rpqueue dead list``) instead of dropping it.
    - ``timeout`` (default 0: none): seconds after which the worker stops
      the call (TimeLimitExceeded; an ``async def`` is cancelled).
    - ``soft_timeout`` (default 0: none): seconds after which
      SoftTimeLimitExceeded is raised inside the call, which may catch it to
      clean up; must be below ``timeout`` when both are set.
    - ``priority`` (int, default 0): the default priority of its calls in
      their queue, lower first, FIFO among equals; within
      +-``PRIORITY_LIMIT``. ``execute(priority=...)`` overrides it.
    - ``unique_for`` (default 0: off): seconds a call holds its unique key;
      while it is queued or running (and at most this long), a call with
      the same key is not queued again.
    - ``unique_key`` (str, or a function of the call's arguments returning
      one; default: a hash of the arguments): what makes calls the same.
    - ``on_duplicate`` ('merge' or 'refuse', default 'merge'): a duplicate
      call returns the first call's handle (``outcome == 'merged'``), or
      raises DuplicateTask.

    Raises TypeError for an unknown option or a value of the wrong type,
    ValueError for one out of range (negative seconds, ``attempts`` < 1,
    ``retry_on`` with one attempt, ``soft_timeout`` >= ``timeout``, an
    unknown ``on_duplicate``, an empty name); nothing is registered then.
    A second task with the same name replaces the first (with a warning).
    """
    if isinstance(func, (str, bytes)):
        # @task("queue") — the queue given positionally, as the original allowed.
        func, options = None, {**options, "queue": func}
    given = sorted(set(options) & set(SCHEDULE_OPTIONS))
    if given:
        raise TypeError(f"@task takes no {', '.join(given)}: use @periodic_task or @cron_task")
    # Checked now, so a bad option fails at the decorator, before any function.
    opts = TaskOptions.of(**options)

    def wrap(function: Callable[P, R]) -> Task[P, R]:
        return _make(app, function, opts)

    if func is not None:
        return wrap(func)
    return cast(TaskDecorator, wrap)


# help() shows what **options takes, read from TaskOptions rather than re-spelled.
task.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("app", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     inspect.Parameter("func", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
     *keyword_parameters(exclude=SCHEDULE_OPTIONS)])


def periodic_task(
    app: Context,
    run_every: float | datetime.timedelta,
    queue: str | bytes = DEFAULTS.queue,
    never_skip: bool = DEFAULTS.never_skip,
    attempts: int = DEFAULTS.attempts,
    retry_delay: float = DEFAULTS.retry_delay,
    low_delay_okay: bool = False,
    save_results: float = DEFAULTS.save_results,
    name: str | None = None,
) -> Decorated:
    """Run the decorated function every ``run_every`` seconds, once per period.

    ``run_every`` is seconds (int, float) or a timedelta, at least
    MINIMUM_DELAY (1 s) unless ``low_delay_okay``. Periods are counted from
    the Unix epoch, so every app and worker agrees on when each run is due,
    and one run is queued per period however many workers are running.

    - ``queue``, ``attempts``, ``retry_delay``, ``save_results``, ``name``:
      as for ``@task``.
    - ``never_skip``: after downtime, queue every run that was missed (one
      after another), instead of only the next one.

    Returns a decorator that makes and registers the Task. Raises TypeError
    or ValueError for a bad period or option.
    """
    from .context import MINIMUM_DELAY
    from .schedule import Every, check_period

    check_period(run_every, MINIMUM_DELAY, low_delay_okay)
    return _scheduled(app, Every(run_every), queue=queue, never_skip=never_skip,
                      attempts=attempts, retry_delay=retry_delay, save_results=save_results,
                      name=name)


def cron_task(
    app: Context,
    crontab: str,
    queue: str | bytes = DEFAULTS.queue,
    never_skip: bool = DEFAULTS.never_skip,
    attempts: int = DEFAULTS.attempts,
    retry_delay: float = DEFAULTS.retry_delay,
    save_results: float = DEFAULTS.save_results,
    name: str | None = None,
    tz: str | datetime.tzinfo | None = None,
) -> Decorated:
    """Run the decorated function on a crontab schedule, once per planned time.

    ``crontab`` has 5 fields (minute hour day month weekday), or 6 (a
    leading seconds field) or 7 (seconds first, a year last), or an alias
    such as ``@daily`` or ``@hourly``; names (``mon``, ``jan``), lists,
    ranges and steps (``1,15``, ``1-5``, ``*/5``) are accepted. One run is
    queued per planned time however many workers are running.

    - ``queue``, ``attempts``, ``retry_delay``, ``save_results``, ``name``:
      as for ``@task``.
    - ``never_skip``: after downtime, queue every planned time that was
      missed, instead of only the next one.
    - ``tz``: the zone whose wall clock the crontab reads, an IANA name
      ("Europe/Paris") or a tzinfo; default UTC. Across DST changes each
      matching wall time runs once: a time repeated when clocks go back runs
      on its first occurrence, a time skipped when they jump runs at the jump.

    Returns a decorator that makes and registers the Task. Raises ValueError
    for a crontab that does not parse or an unknown zone, TypeError or
    ValueError for a bad option.
    """
    from .schedule import Cron

    return _scheduled(app, Cron(crontab, tz), queue=queue, never_skip=never_skip,
                      attempts=attempts, retry_delay=retry_delay, save_results=save_results,
                      name=name)


def _scheduled(app: Context, schedule: Schedule, **options: Any) -> Decorated:
    opts = TaskOptions.of(schedule=schedule, **options)

    def wrap(function: Callable[P, R]) -> Task[P, R]:
        return _make(app, function, opts)

    return cast(TaskDecorator, wrap)


def _register(app: Context, task: Task[P, R]) -> Task[P, R]:
    app.register(task)
    return task


def _make(app: Context, function: Callable[P, R], opts: TaskOptions) -> Task[P, R]:
    """The Task of ``function`` (an AsyncTask for an ``async def``), registered."""
    kind = AsyncTask if inspect.iscoroutinefunction(function) else Task
    return _register(app, cast("Task[P, R]", kind(app, function, options=opts)))


class HasContext(Protocol):
    """An app: what owns a Context."""

    @property
    def ctx(self) -> Context: ...


def on_context(fn: Callable[Concatenate[Context, P], R]) -> Callable[Concatenate[HasContext, P], R]:
    """``fn(ctx, ...)`` as a method of an app, ``app.fn(...)``, with fn's
    parameters, types, docstring and (for help()) signature."""

    @functools.wraps(fn)
    def method(self: HasContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return fn(self.ctx, *args, **kwargs)

    return method


def method_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """The signature of ``fn(ctx, ...)`` as a method's: ``self`` for ``ctx``."""
    params = list(inspect.signature(fn).parameters.values())
    return inspect.Signature([params[0].replace(name="self"), *params[1:]])
