"""The settings of a task, in one frozen, validated dataclass.

``TaskOptions`` is the single list of what ``@task`` (and ``@periodic_task``,
``@cron_task``, ``Task``, ``TaskRef``) accept: defaults, checks and the
settings dict workers publish all live here, so a new option is added once.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .storage.keys import normalize_queue
from .storage.wire import PRIORITY_LIMIT

if TYPE_CHECKING:
    from .schedule import Schedule

DEFAULT_QUEUE = "default"
ON_DUPLICATE = ("merge", "refuse")
UniqueKey = str | Callable[..., str] | None

T = TypeVar("T")


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
    """A call's delay in seconds: None is none, a timedelta counts, negatives mean now."""
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


def _retry_on(value: Any) -> tuple[type[BaseException], ...]:
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not all(
            isinstance(e, type) and issubclass(e, BaseException) for e in value):
        raise TypeError(f"retry_on must be exception classes, got {value!r}")
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class TaskOptions:
    """How calls to one task are queued, run, retried and kept.

    Every field is checked (and normalized: a bytes or None queue becomes
    a str, seconds become floats, one exception class becomes a tuple) when
    the options are made, so a bad option fails where the task is declared,
    not when a call is queued. See ``rpqueue.decorators.task`` for what each
    option means. ``dataclasses.replace(options, attempts=3)`` makes a
    changed, re-checked copy.
    """

    queue: str = DEFAULT_QUEUE
    attempts: int = 1
    retry_delay: float = 30.0
    save_results: float = 0.0
    vis_timeout: float = 0.0
    use_dead: bool = False
    priority: int = 0
    unique_for: float = 0.0
    unique_key: UniqueKey = None
    on_duplicate: str = "merge"
    retry_on: tuple[type[BaseException], ...] = ()
    backoff: float = 1.0
    max_backoff: float = 300.0
    timeout: float = 0.0
    soft_timeout: float = 0.0
    schedule: Schedule | None = None
    never_skip: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        # Frozen: normalized values are written past the frozen __setattr__.
        def put(field: str, value: Any) -> None:
            object.__setattr__(self, field, value)

        put("queue", normalize_queue(DEFAULT_QUEUE if self.queue is None else self.queue))
        put("attempts", _attempts(self.attempts))
        for field in ("retry_delay", "save_results", "vis_timeout", "unique_for", "backoff",
                      "max_backoff", "timeout", "soft_timeout"):
            put(field, _number(field, getattr(self, field)))
        put("use_dead", bool(self.use_dead))
        put("never_skip", bool(self.never_skip))
        put("priority", _priority(self.priority))
        key = self.unique_key
        if key is not None and not isinstance(key, str) and not callable(key):
            raise TypeError(f"unique_key must be a str or a function, not {type(key).__name__}")
        if self.on_duplicate not in ON_DUPLICATE:
            raise ValueError(f"on_duplicate must be 'merge' or 'refuse', got {self.on_duplicate!r}")
        put("retry_on", _retry_on(self.retry_on))
        if self.retry_on and self.attempts < 2:
            raise ValueError("retry_on needs attempts > 1: it retries while attempts are left")
        if self.timeout and self.soft_timeout and self.soft_timeout >= self.timeout:
            raise ValueError(f"soft_timeout ({self.soft_timeout:g}) must be below timeout "
                             f"({self.timeout:g})")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ValueError(f"task name must be a non-empty string, got {self.name!r}")

    @classmethod
    def of(cls, options: TaskOptions | None = None, **changes: Any) -> TaskOptions:
        """``options`` (default: all defaults) with ``changes`` applied and checked.

        An unknown keyword raises TypeError naming it and the known ones.
        """
        unknown = sorted(set(changes) - set(OPTION_NAMES))
        if unknown:
            raise TypeError(f"unknown task option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(OPTION_NAMES)}")
        base = cls() if options is None else options
        return dataclasses.replace(base, **changes) if changes else base

    def settings(self) -> dict[str, Any]:
        """The JSON-able settings a worker publishes for this task.

        Options left at their default beyond the original six are omitted,
        so registries written by older workers read the same.
        """
        out: dict[str, Any] = {
            "queue": self.queue, "attempts": self.attempts, "retry_delay": self.retry_delay,
            "save_results": self.save_results, "vis_timeout": self.vis_timeout,
            "use_dead": self.use_dead,
        }
        if self.priority:
            out["priority"] = self.priority
        if self.unique_for:
            out.update(unique_for=self.unique_for, on_duplicate=self.on_duplicate)
        if self.timeout or self.soft_timeout:
            out.update(timeout=self.timeout, soft_timeout=self.soft_timeout)
        if self.retry_on:
            out["retry_on"] = [e.__name__ for e in self.retry_on]
        if self.schedule is not None:
            out["schedule"] = self.schedule.describe()
            zone = getattr(self.schedule, "tz", None)
            if zone is not None:  # a cron task: the zone its crontab reads
                out["tz"] = str(zone)
            out["never_skip"] = self.never_skip
        return out


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TaskOptions))
DEFAULTS = TaskOptions()
# What @task takes: a schedule comes only from @periodic_task / @cron_task.
SCHEDULE_OPTIONS = ("schedule", "never_skip")


@dataclasses.dataclass(frozen=True)
class CallOptions:
    """How one call is queued: what ``task.options(...)`` fixes before
    ``.execute(*args, **kwargs)``, checked when made.

    - ``delay``: seconds (or a timedelta) before the call may run; None or
      <= 0 runs it now. Kept as seconds (a float).
    - ``taskid``: the call's id (default: a new one); see ``Task.execute``.
    - ``queue``: queue the call elsewhere than the task's queue.
    - ``priority``, ``unique_for``, ``unique_key``: this call's, instead of
      the task's (see ``@task``).

    An unknown name is a TypeError here and, through the typed keywords of
    ``Task.options``, a mypy error.
    """

    delay: float | datetime.timedelta | None = None
    taskid: str | None = None
    queue: str | bytes | None = None
    priority: int | None = None
    unique_for: float | None = None
    unique_key: UniqueKey = None

    def __post_init__(self) -> None:
        def put(field: str, value: Any) -> None:
            object.__setattr__(self, field, value)

        put("delay", _delay(self.delay))
        if self.taskid is not None and (not isinstance(self.taskid, str) or not self.taskid):
            raise ValueError(f"taskid must be a non-empty string, got {self.taskid!r}")
        if self.queue is not None:
            put("queue", normalize_queue(self.queue))
        if self.priority is not None:
            put("priority", _priority(self.priority))
        if self.unique_for is not None:
            put("unique_for", _number("unique_for", self.unique_for))
        key = self.unique_key
        if key is not None and not isinstance(key, str) and not callable(key):
            raise TypeError(f"unique_key must be a str or a function, not {type(key).__name__}")

    @property
    def seconds(self) -> float:
        """The delay in seconds (0.0: none)."""
        delay = self.delay
        # __post_init__ already made it a float: no second check per call.
        return delay if type(delay) is float else _delay(delay)


# The options of a call that gives none (the common ``execute(*args)``):
# made and checked once, shared by every such call (it is frozen).
NO_CALL_OPTIONS = CallOptions()


def keyword_parameters(exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """The options as keyword-only parameters with their defaults, for the
    signatures ``help()`` shows of functions that take ``**options``."""
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                              default=getattr(DEFAULTS, name))
            for name in OPTION_NAMES if name not in exclude]


class _Option(Generic[T]):
    """A read-only attribute that reads the field of the same name from ``.task_options``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.__doc__ = f"The task's ``{name}`` option (read-only; see TaskOptions)."

    @overload
    def __get__(self, obj: None, owner: type) -> _Option[T]: ...

    @overload
    def __get__(self, obj: HasOptions, owner: type) -> T: ...

    def __get__(self, obj: HasOptions | None, owner: type) -> _Option[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj.task_options, self.name)
        return value

    def __set__(self, obj: HasOptions, value: T) -> None:
        # Options are shared, checked values: a change goes through a new TaskOptions.
        raise AttributeError(f"{self.name} is read-only; make the task with other options")


class HasOptions:
    """The options of a task, readable as its own attributes (``task.queue``).

    A test checks that every TaskOptions field but ``name`` (which a task
    holds itself) appears here.
    """

    task_options: TaskOptions

    queue = _Option[str]()
    attempts = _Option[int]()
    retry_delay = _Option[float]()
    save_results = _Option[float]()
    vis_timeout = _Option[float]()
    use_dead = _Option[bool]()
    priority = _Option[int]()
    unique_for = _Option[float]()
    unique_key = _Option[UniqueKey]()
    on_duplicate = _Option[str]()
    retry_on = _Option[tuple[type[BaseException], ...]]()
    backoff = _Option[float]()
    max_backoff = _Option[float]()
    timeout = _Option[float]()
    soft_timeout = _Option[float]()
    schedule = _Option["Schedule | None"]()
    never_skip = _Option[bool]()

    def settings(self) -> dict[str, Any]:
        """The JSON-able settings a worker publishes for this task (see TaskOptions.settings)."""
        return self.task_options.settings()
