"""Typed task calls: what mypy reports on tests/typing/sample_tasks.py, the
checked call options (CallOptions), arguments bound to the function's
signature before anything is sent, and eager mode (rpqueue.testing).

No Redis: the app points at a port nothing listens on, so a call that got as
far as sending would fail with a connection error, not the error expected.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import rpqueue
from rpqueue import testing
from rpqueue.app import RPQueue, new_rpqueue
from rpqueue.options import CallOptions
from rpqueue.storage.wire import PRIORITY_LIMIT
from rpqueue.task import Task, TaskCall, TaskRef

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "typing" / "sample_tasks.py"
MARK = re.compile(r"#\s*E:\s*(.+?)\s*$")


@pytest.fixture(scope="module")
def app() -> RPQueue:
    a = new_rpqueue("unit-typed", "unit-typed:")
    # A closed port: anything sent fails with ConnectionError.
    a.set_redis_connection_settings(host="127.0.0.1", port=1, db=0)
    return a


@pytest.fixture
def eager_app(app: RPQueue) -> Iterator[RPQueue]:
    with testing.eager(app):
        yield app


# -- mypy on a sample module ---------------------------------------------------------


def _expected() -> dict[int, str]:
    out = {}
    for n, line in enumerate(SAMPLE.read_text(encoding="utf-8").splitlines(), 1):
        m = MARK.search(line)
        if m:
            out[n] = m.group(1)
    return out


def test_mypy_reports_exactly_the_marked_errors(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
         "--hide-error-context", str(SAMPLE)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    errors: dict[int, list[str]] = {}
    for line in proc.stdout.splitlines():
        m = re.match(r".*sample_tasks\.py:(\d+): error: (.*)$", line)
        if m:
            errors.setdefault(int(m.group(1)), []).append(m.group(2))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    expected = _expected()
    assert len(expected) >= 9
    missing = {n: want for n, want in expected.items()
               if not any(want in got for got in errors.get(n, []))}
    unexpected = {n: got for n, got in errors.items() if n not in expected}
    assert not missing, f"mypy did not report {missing}; it said:\n{proc.stdout}"
    assert not unexpected, f"mypy reported errors on lines that must pass: {unexpected}"


# -- CallOptions and task.options() ------------------------------------------------------


def test_call_options_are_checked_and_frozen() -> None:
    opts = CallOptions(delay=datetime.timedelta(seconds=2), queue=b"q", priority=3)
    assert (opts.delay, opts.queue, opts.priority, opts.seconds) == (2.0, "q", 3, 2.0)
    assert CallOptions(delay=-5).seconds == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.priority = 4  # type: ignore[misc]
    with pytest.raises(TypeError, match="delay must be a number"):
        CallOptions(delay="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priority must be between"):
        CallOptions(priority=PRIORITY_LIMIT + 1)
    with pytest.raises(ValueError, match="taskid must be a non-empty string"):
        CallOptions(taskid="")
    with pytest.raises(TypeError, match="unique_key must be a str or a function"):
        CallOptions(unique_key=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dealy"):
        CallOptions(dealy=5)  # type: ignore[call-arg]


def test_options_bind_to_the_task_and_chain(app: RPQueue) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    call = add.options(delay=5, priority=1)
    assert isinstance(call, TaskCall) and call.task is add
    assert call.call_options == CallOptions(delay=5.0, priority=1)
    again = call.options(queue="other")
    assert again.call_options == CallOptions(delay=5.0, priority=1, queue="other")
    assert call.call_options.queue is None  # the first is unchanged
    with pytest.raises(TypeError, match="dealy"):
        add.options(dealy=5)  # type: ignore[call-arg]


def test_tasks_are_generic_and_keep_their_options(app: RPQueue) -> None:
    @app.task(queue="typed", attempts=2)
    def mul(a: int, b: int, _attempts: int = 1) -> int:
        return a * b

    assert isinstance(mul, Task) and Task[[int, int], int] is not None
    assert (mul.queue, mul.attempts, mul.task_options.queue) == ("typed", 2, "typed")
    assert mul(3, 4) == 12


# -- arguments bound before anything is sent ---------------------------------------------


@pytest.mark.parametrize("args, kwargs, words", [
    ((1,), {}, "missing a required argument: 'b'"),
    ((1, 2, 3), {}, "too many positional arguments"),
    ((1, 2), {"c": 3}, "unexpected keyword argument 'c'"),
])
def test_bad_arguments_raise_typeerror_before_sending(
        app: RPQueue, args: tuple[Any, ...], kwargs: dict[str, Any], words: str) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    # A ConnectionError would mean something was sent; the TypeError comes first.
    for call in (lambda: add.execute(*args, **kwargs),
                 lambda: add.options(delay=1).execute(*args, **kwargs),
                 lambda: add.execute_many([(args, kwargs)])):
        with pytest.raises(TypeError, match=re.escape(words)) as info:
            call()
        assert "add" in str(info.value) and "nothing was queued" in str(info.value)


def test_a_task_ref_has_no_function_to_check(app: RPQueue) -> None:
    ref = TaskRef(app, "elsewhere.task")
    # Nothing to bind to: the call is sent (and fails to connect here).
    with pytest.raises(redis.exceptions.ConnectionError):
        ref.execute(1, 2, 3, any_keyword=True)


# -- eager mode -------------------------------------------------------------------------


def test_eager_runs_at_execute_with_worker_semantics(eager_app: RPQueue) -> None:
    seen: list[Any] = []

    @eager_app.task(save_results=60)
    def shape(items: list[int], pair: tuple[int, int]) -> dict[str, Any]:
        seen.append((items, pair))
        return {"n": len(items), "pair": pair}

    handle = shape.options(delay=3600).execute([1, 2], (3, 4))
    # Arguments and result went through JSON, as with a worker: tuples are lists.
    assert seen == [([1, 2], [3, 4])]
    assert handle.status == "done" and handle.state == "succeeded"
    assert handle.result == {"n": 2, "pair": [3, 4]}
    assert handle.get() == {"n": 2, "pair": [3, 4]}
    assert handle.inline_error is None


def test_eager_keeps_no_result_unless_the_task_saves_them(eager_app: RPQueue) -> None:
    @eager_app.task
    def answer() -> int:
        return 42

    assert answer.execute().result is None


def test_eager_retries_inline_and_records_the_error(eager_app: RPQueue) -> None:
    calls: list[int] = []

    @eager_app.task(attempts=3, retry_on=(ValueError,), save_results=60)
    def flaky(_attempts: int = 1) -> int:
        calls.append(_attempts)
        if _attempts > 1:
            raise ValueError(f"left {_attempts}")
        return _attempts

    handle = flaky.execute()
    assert calls == [3, 2, 1]
    assert handle.result == 1 and handle.inline_error is None

    @eager_app.task(attempts=2, retry_on=(KeyError,))
    def broken(_attempts: int = 1) -> None:
        calls.append(-_attempts)
        raise ValueError("not retried: not a KeyError")

    failed = broken.execute()
    assert calls[-1:] == [-2]
    assert isinstance(failed.inline_error, ValueError)
    assert failed.state == "failed" and failed.result is None
    with pytest.raises(rpqueue.TaskFailed):
        failed.get()


def test_eager_explicit_retry_runs_inline(eager_app: RPQueue) -> None:
    calls: list[int] = []

    @eager_app.task(attempts=3)
    def again(n: int, _attempts: int = 1) -> None:
        calls.append(_attempts)
        again.retry(n, _attempts=_attempts)

    again.execute(7)
    assert calls == [3, 2, 1]


def test_eager_task_ref_runs_the_task_of_its_name(eager_app: RPQueue) -> None:
    @eager_app.task(name="unit.typed.by_name", save_results=5)
    def by_name(x: int) -> int:
        return x + 1

    ref = TaskRef(eager_app, "unit.typed.by_name")
    assert ref.execute(1).result == 2
    assert ref.options(priority=1, delay=60).execute(x=2).result == 3
    with pytest.raises(ValueError, match="not defined in this process"):
        TaskRef(eager_app, "unit.typed.nowhere").execute()


def test_eager_async_task_and_execute_many(eager_app: RPQueue) -> None:
    @eager_app.task(save_results=5)
    async def double(x: int) -> int:
        return 2 * x

    assert double.execute(4).result == 8
    assert [h.result for h in double.execute_many([[1], [2]])] == [2, 4]


def test_eager_is_scoped_to_the_block(app: RPQueue) -> None:
    assert not testing.is_eager(app)
    with testing.eager(app):
        assert testing.is_eager(app)
    assert not testing.is_eager(app)
