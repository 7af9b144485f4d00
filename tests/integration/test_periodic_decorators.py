"""@periodic_task and @cron_task at decoration time (issue #4): no worker needed.

Periods below MINIMUM_DELAY are refused unless ``low_delay_okay=True``,
``timedelta`` periods are accepted, and a bad cron expression is a clear
ValueError when the decorator is built, before any function is wrapped.
Tasks that must be created are made on a private RPQueue instance so the
default app's task registry (shared with other test modules) stays clean.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

import rpqueue
from rpqueue import MINIMUM_DELAY, Task
from rpqueue.schedule import Cron, Every

UTC = datetime.timezone.utc


@pytest.fixture
def app() -> Iterator[Any]:
    # Any: RPQueue's API methods (periodic_task, cron_task, ...) are bound at import.
    instance = rpqueue.new_rpqueue("periodic-decorator-tests", "ptest:")
    instance.registry.clear()
    yield instance
    instance.registry.clear()


def noop() -> str:
    return "inline"


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
       second: int = 0) -> float:
    return datetime.datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


# -- periodic_task: the period ----------------------------------------------------


def test_minimum_delay_is_one_second() -> None:
    assert MINIMUM_DELAY == 1


@pytest.mark.parametrize("period", [0.5, 0.999, datetime.timedelta(milliseconds=500)])
def test_period_below_minimum_delay_is_a_clear_value_error(period: Any) -> None:
    before = dict(rpqueue.default_app().registry)
    with pytest.raises(ValueError) as info:
        rpqueue.periodic_task(period)
    message = str(info.value)
    assert "MINIMUM_DELAY" in message
    assert "low_delay_okay" in message
    # Refused before any function is wrapped: nothing was registered.
    assert rpqueue.default_app().registry == before


@pytest.mark.parametrize("period", [0.5, 0.05, datetime.timedelta(milliseconds=250)])
def test_low_delay_okay_allows_short_periods(app: Any, period: Any) -> None:
    t = app.periodic_task(period, low_delay_okay=True, name=f"short.{period}")(noop)
    assert isinstance(t, Task)
    seconds = period.total_seconds() if isinstance(period, datetime.timedelta) else period
    assert t.schedule == Every(seconds)


@pytest.mark.parametrize("period", [1, 1.0, datetime.timedelta(seconds=1)])
def test_period_equal_to_minimum_delay_is_accepted(app: Any, period: Any) -> None:
    t = app.periodic_task(period, name="at.minimum")(noop)
    assert t.schedule == Every(1)


@pytest.mark.parametrize("period, seconds", [
    (datetime.timedelta(minutes=5), 300),
    (datetime.timedelta(hours=1, seconds=30), 3630),
    (datetime.timedelta(days=1), 86400),
    (25, 25),
    (2.5, 2.5),
])
def test_period_in_seconds_or_timedelta(app: Any, period: Any, seconds: float) -> None:
    t = app.periodic_task(period, name="every.x")(noop)
    assert t.schedule == Every(seconds)
    first = t.schedule.next_after(ts(2024, 1, 1))
    assert ts(2024, 1, 1) < first <= ts(2024, 1, 1) + seconds
    assert t.schedule.next_after(first) == pytest.approx(first + seconds)


@pytest.mark.parametrize("low_delay_okay", [False, True])
@pytest.mark.parametrize("period", [0, -1, -0.5, float("nan"), float("inf"),
                                    datetime.timedelta(0), datetime.timedelta(seconds=-5)])
def test_non_positive_or_non_finite_period_is_refused(period: Any, low_delay_okay: bool) -> None:
    with pytest.raises(ValueError):
        rpqueue.periodic_task(period, low_delay_okay=low_delay_okay)


@pytest.mark.parametrize("period", ["5", None, True, [5]])
def test_period_of_another_type_is_refused(period: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        rpqueue.periodic_task(period)


def test_periodic_task_keeps_its_options(app: Any) -> None:
    t = app.periodic_task(datetime.timedelta(seconds=30), queue=b"low", never_skip=True,
                          attempts=3, retry_delay=7, save_results=11,
                          name="periodic.options")(noop)
    assert (t.name, t.queue, t.attempts, t.retry_delay, t.save_results, t.never_skip) == (
        "periodic.options", "low", 3, 7, 11, True)
    assert isinstance(t.queue, str)
    # Still the plain function when called inline.
    assert t() == "inline"
    assert t.function() == "inline"
    assert app.registry["periodic.options"] is t


def test_periodic_task_defaults(app: Any) -> None:
    t = app.periodic_task(25)(noop)
    assert t.name == f"{__name__}.noop"
    assert (t.queue, t.never_skip, t.attempts, t.retry_delay, t.save_results) == (
        "default", False, 1, 30, 0)


# -- cron_task: the expression ----------------------------------------------------


@pytest.mark.parametrize("expression", [
    "",
    "* * *",
    "* * * *",
    "* * * * * * * *",
    "not a cron",
    "61 * * * *",
    "* 25 * * *",
    "* * 32 * *",
    "* * * 13 *",
    "* * * * 8",
    "* * * * * 2200",
    "60 * * * * *",
    "* * * * fooday",
    "* * * smarch *",
    "0 0 31 2 *",  # valid fields, but February never has a 31st
    "@fortnightly",
])
def test_bad_cron_expression_is_a_clear_error_at_decoration(expression: str) -> None:
    before = dict(rpqueue.default_app().registry)
    with pytest.raises(ValueError) as info:
        rpqueue.cron_task(expression)
    if expression:
        assert repr(expression) in str(info.value) or "fields" in str(info.value)
    assert rpqueue.default_app().registry == before


@pytest.mark.parametrize("expression", [None, 5, b"* * * * *"])
def test_cron_expression_must_be_a_string(expression: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        rpqueue.cron_task(expression)


@pytest.mark.parametrize("expression, after, expected", [
    # The README's example: every Tuesday at 05:00 (UTC).  2024-01-01 is a Monday.
    ("0 5 tue * *", ts(2024, 1, 1), ts(2024, 1, 2, 5, 0)),
    ("0 5 * * tue", ts(2024, 1, 2, 5, 0), ts(2024, 1, 9, 5, 0)),
    # Six fields: seconds first; '* * * * * *' is every second.
    ("* * * * * *", ts(2024, 1, 1) + 0.25, ts(2024, 1, 1) + 1),
    ("* * * * * *", ts(2024, 1, 1), ts(2024, 1, 1) + 1),
    ("*/15 * * * * *", ts(2024, 1, 1, 0, 0, 16), ts(2024, 1, 1, 0, 0, 30)),
    ("30 * * * * *", ts(2024, 1, 1, 0, 0, 30), ts(2024, 1, 1, 0, 1, 30)),
    # Month and day names, upper or lower case.
    ("0 0 1 jan *", ts(2024, 3, 1), ts(2025, 1, 1)),
    ("0 9 * * MON-FRI", ts(2024, 1, 5, 9, 0), ts(2024, 1, 8, 9, 0)),
    ("0 30 9 * * sat,sun", ts(2024, 1, 1), ts(2024, 1, 6, 9, 30)),
    ("0 0 12 * dec *", ts(2024, 1, 1), ts(2024, 12, 1, 12, 0)),
    # Seven fields: seconds ... year.
    ("0 0 0 1 1 * 2030", ts(2024, 1, 1), ts(2030, 1, 1)),
    ("@hourly", ts(2024, 1, 1, 0, 0, 1), ts(2024, 1, 1, 1, 0)),
    ("@daily", ts(2024, 1, 1, 0, 0, 1), ts(2024, 1, 2)),
])
def test_cron_syntax(app: Any, expression: str, after: float, expected: float) -> None:
    t = app.cron_task(expression, name="cron.syntax")(noop)
    assert isinstance(t.schedule, Cron)
    assert t.schedule.next_after(after) == expected


def test_cron_every_second_plans_every_second(app: Any) -> None:
    t = app.cron_task("* * * * * *", name="cron.every.second")(noop)
    start = ts(2024, 6, 1, 12, 0)
    planned, at = [], start
    for _ in range(5):
        at = t.schedule.next_after(at)
        planned.append(at)
    assert planned == [start + i for i in range(1, 6)]


def test_cron_task_keeps_its_options(app: Any) -> None:
    t = app.cron_task("0 5 tue * *", queue="low", never_skip=True, attempts=2,
                      retry_delay=3, save_results=9, name="cron.options")(noop)
    assert (t.name, t.queue, t.never_skip, t.attempts, t.retry_delay, t.save_results) == (
        "cron.options", "low", True, 2, 3, 9)
    assert t() == "inline"
    assert app.registry["cron.options"] is t
