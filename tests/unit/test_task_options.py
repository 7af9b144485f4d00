"""TaskOptions (rpqueue.options): one list of task options, checked once, read
as task attributes, published as settings, and documented where help() looks.
No Redis: nothing here queues a call."""

from __future__ import annotations

import dataclasses
import datetime
import inspect
from typing import Any

import pytest

from rpqueue import decorators
from rpqueue.app import RPQueue
from rpqueue.context import Context
from rpqueue.options import (
    DEFAULTS,
    OPTION_NAMES,
    SCHEDULE_OPTIONS,
    HasOptions,
    TaskOptions,
    _delay,
)
from rpqueue.schedule import Cron, Every
from rpqueue.storage.wire import PRIORITY_LIMIT
from rpqueue.task import EnqueuedTask, Task, TaskRef

ORIGINAL_SIX = ["queue", "attempts", "retry_delay", "save_results", "vis_timeout", "use_dead"]


def noop() -> None:
    return None


@pytest.fixture
def ctx() -> Context:
    return Context("unit-options", "unit-options:")


# -- the dataclass -----------------------------------------------------------------


def test_defaults_publish_only_the_original_six_settings() -> None:
    assert list(TaskOptions().settings()) == ORIGINAL_SIX
    assert TaskOptions().settings() == {
        "queue": "default", "attempts": 1, "retry_delay": 30.0, "save_results": 0.0,
        "vis_timeout": 0.0, "use_dead": False}


@pytest.mark.parametrize(("changes", "extra"), [
    ({"priority": -3}, {"priority": -3}),
    ({"unique_for": 5}, {"unique_for": 5.0, "on_duplicate": "merge"}),
    ({"unique_for": 5, "on_duplicate": "refuse"}, {"unique_for": 5.0, "on_duplicate": "refuse"}),
    ({"timeout": 10}, {"timeout": 10.0, "soft_timeout": 0.0}),
    ({"soft_timeout": 2}, {"timeout": 0.0, "soft_timeout": 2.0}),
    ({"attempts": 2, "retry_on": KeyError}, {"attempts": 2, "retry_on": ["KeyError"]}),
    ({"schedule": Every(60), "never_skip": True}, {"schedule": "every 60s", "never_skip": True}),
])
def test_settings_add_options_only_when_not_default(changes: dict[str, Any],
                                                    extra: dict[str, Any]) -> None:
    settings = TaskOptions.of(**changes).settings()
    assert settings == {**TaskOptions().settings(), **extra}


def test_values_are_normalized() -> None:
    opts = TaskOptions.of(queue=b"bq", retry_delay=2, retry_on=ValueError, attempts=3,
                          use_dead=1, never_skip=0)
    assert opts.queue == "bq" and isinstance(opts.queue, str)
    assert opts.retry_delay == 2.0 and isinstance(opts.retry_delay, float)
    assert opts.retry_on == (ValueError,)
    assert opts.use_dead is True and opts.never_skip is False
    assert TaskOptions.of(queue=None).queue == "default"


def test_options_are_frozen_and_replace_rechecks() -> None:
    opts = TaskOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.attempts = 3  # type: ignore[misc]
    assert dataclasses.replace(opts, attempts=3).attempts == 3
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        dataclasses.replace(opts, attempts=0)
    assert TaskOptions.of(opts) is opts


@pytest.mark.parametrize(("changes", "error", "message"), [
    ({"attempts": 1.5}, TypeError, "attempts must be an int, not float"),
    ({"attempts": True}, TypeError, "attempts must be an int, not bool"),
    ({"attempts": 0}, ValueError, "attempts must be >= 1, got 0"),
    ({"retry_delay": "5"}, TypeError, "retry_delay must be a number of seconds, not str"),
    ({"save_results": -1}, ValueError, r"save_results must be >= 0, got -1"),
    ({"vis_timeout": float("nan")}, ValueError, "vis_timeout must be >= 0, got nan"),
    ({"timeout": None}, TypeError, "timeout must be a number of seconds, not NoneType"),
    ({"priority": 1.0}, TypeError, "priority must be an int, not float"),
    ({"priority": PRIORITY_LIMIT + 1}, ValueError, "priority must be between"),
    ({"unique_key": 3}, TypeError, "unique_key must be a str or a function, not int"),
    ({"on_duplicate": "drop"}, ValueError, "on_duplicate must be 'merge' or 'refuse'"),
    ({"retry_on": "KeyError"}, TypeError, "retry_on must be exception classes"),
    ({"retry_on": (KeyError, int)}, TypeError, "retry_on must be exception classes"),
    ({"retry_on": KeyError}, ValueError, "retry_on needs attempts > 1"),
    ({"timeout": 5, "soft_timeout": 5}, ValueError, r"soft_timeout \(5\) must be below timeout"),
    ({"name": ""}, ValueError, "task name must be a non-empty string"),
    ({"colour": "red"}, TypeError, "unknown task option"),
])
def test_bad_options_fail_with_a_clear_message(changes: dict[str, Any], error: type[Exception],
                                               message: str) -> None:
    with pytest.raises(error, match=message):
        TaskOptions.of(**changes)


def test_delay_takes_seconds_timedeltas_and_none() -> None:
    assert _delay(None) == 0.0
    assert _delay(-5) == 0.0
    assert _delay(datetime.timedelta(minutes=1)) == 60.0
    with pytest.raises(TypeError, match="delay must be a number of seconds, not str"):
        _delay("1")
    with pytest.raises(ValueError, match="delay must be a finite number of seconds"):
        _delay(float("inf"))


# -- Task and TaskRef ----------------------------------------------------------------


def test_every_option_but_name_reads_as_a_task_attribute() -> None:
    # The one hand-written list besides the dataclass: guard it against drift.
    exposed = {n for n, v in vars(HasOptions).items() if not n.startswith("_")
               and not callable(v)}
    assert exposed == set(OPTION_NAMES) - {"name"}


def test_task_takes_todays_keywords(ctx: Context) -> None:
    t = Task(ctx, noop, queue=b"q1", attempts=3, retry_delay=5, save_results=7, vis_timeout=3,
             use_dead=True, name="unit.all", retry_on=(KeyError,), backoff=2, max_backoff=9,
             timeout=10, soft_timeout=4, priority=-2, unique_for=60, unique_key="k",
             on_duplicate="refuse", schedule=Cron("0 5 * * *"), never_skip=True)
    assert (t.name, t.queue, t.attempts, t.retry_delay, t.save_results, t.vis_timeout,
            t.use_dead, t.retry_on, t.backoff, t.max_backoff, t.timeout, t.soft_timeout,
            t.priority, t.unique_for, t.unique_key, t.on_duplicate, t.never_skip) == (
        "unit.all", "q1", 3, 5, 7, 3, True, (KeyError,), 2, 9, 10, 4, -2, 60, "k", "refuse", True)
    assert t.schedule == Cron("0 5 * * *")
    assert t.task_options.name == "unit.all"
    assert t.settings() == t.task_options.settings()
    assert getattr(t, "__name__", None) == "noop"


def test_task_name_defaults_to_module_and_function(ctx: Context) -> None:
    assert Task(ctx, noop).name == f"{__name__}.noop"
    assert Task(ctx, noop, options=TaskOptions(name="from.options")).name == "from.options"
    assert Task(ctx, noop, options=TaskOptions(name="a"), name="b").name == "b"


def test_task_ref_takes_options_and_changes(ctx: Context) -> None:
    base = TaskOptions.of(queue="base", attempts=4)
    ref = TaskRef(ctx, "unit.ref", options=base, queue="other")
    assert (ref.queue, ref.attempts, ref.name, ref.function) == ("other", 4, "unit.ref", None)
    assert repr(ref) == "<TaskRef unit.ref queue='other'>"
    with pytest.raises(ValueError, match="task name must be a non-empty string"):
        TaskRef(ctx, "")


def test_option_attributes_are_read_only(ctx: Context) -> None:
    t = Task(ctx, noop)
    with pytest.raises(AttributeError, match="read-only"):
        t.queue = "elsewhere"


def test_enqueued_task_is_still_importable_from_task() -> None:
    from rpqueue.handle import EnqueuedTask as handle_cls

    assert EnqueuedTask is handle_cls


# -- the decorators ----------------------------------------------------------------------


def test_task_decorator_forms_register_the_task(ctx: Context) -> None:
    bare = decorators.task(ctx, noop)
    assert isinstance(bare, Task) and ctx.registry[bare.name] is bare
    named = decorators.task(ctx, "lowq")(noop)
    assert named.queue == "lowq"
    opts = decorators.task(ctx, attempts=2, name="unit.two")(noop)
    assert (opts.attempts, ctx.registry["unit.two"]) == (2, opts)


def test_task_decorator_checks_options_before_the_function(ctx: Context) -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        decorators.task(ctx, attempts=0)
    with pytest.raises(TypeError, match="use @periodic_task or @cron_task"):
        decorators.task(ctx, schedule=Every(5))
    with pytest.raises(TypeError, match="unknown task option"):
        decorators.task(ctx, retries=3)
    assert ctx.registry == {}


def test_periodic_and_cron_keep_their_positional_order(ctx: Context) -> None:
    t = decorators.periodic_task(ctx, 60, "pq", True, 2, 5, False, 9, "unit.p")(noop)
    assert (t.queue, t.never_skip, t.attempts, t.retry_delay, t.save_results, t.name) == (
        "pq", True, 2, 5, 9, "unit.p")
    assert t.schedule == Every(60)
    c = decorators.cron_task(ctx, "0 5 * * *", "cq", False, 3, 1, 4, "unit.c")(noop)
    assert (c.queue, c.attempts, c.retry_delay, c.save_results, c.name) == (
        "cq", 3, 1, 4, "unit.c")
    assert ctx.registry["unit.c"] is c


# -- what help() shows -------------------------------------------------------------------


def test_task_signature_lists_every_option_with_its_default() -> None:
    params = inspect.signature(decorators.task).parameters
    options = [n for n in params if params[n].kind is inspect.Parameter.KEYWORD_ONLY]
    assert options == [n for n in OPTION_NAMES if n not in SCHEDULE_OPTIONS]
    assert all(params[n].default == getattr(DEFAULTS, n) for n in options)


@pytest.mark.parametrize("name", [n for n in OPTION_NAMES if n not in SCHEDULE_OPTIONS])
def test_task_docstring_explains_every_option(name: str) -> None:
    assert f"``{name}``" in (decorators.task.__doc__ or "")


def test_app_methods_show_the_decorators_docs_and_parameters() -> None:
    app = RPQueue("unit-options-app", "unit-options-app:")
    for method in ("task", "periodic_task", "cron_task"):
        bound = getattr(app, method)
        plain = getattr(decorators, method)
        assert bound.__doc__ == plain.__doc__
        assert list(inspect.signature(bound).parameters) == list(
            inspect.signature(plain).parameters)[1:]
    t = app.periodic_task(30, name="unit.app.p")(noop)
    assert app.registry["unit.app.p"] is t


@pytest.mark.parametrize("method", ["status", "wait", "cancel", "abort", "result",
                                    "astatus", "await_started", "await_result", "aresult",
                                    "acancel"])
def test_enqueued_task_methods_are_documented(method: str) -> None:
    assert len(inspect.getdoc(getattr(EnqueuedTask, method)) or "") > 40


@pytest.mark.parametrize("method", ["execute", "execute_many"])
def test_execute_methods_document_return_and_errors(method: str) -> None:
    doc = inspect.getdoc(getattr(Task, method)) or ""
    assert "Returns" in doc and "Raises" in doc
