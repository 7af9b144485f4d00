"""The error record a failed attempt leaves (rpqueue.TaskError), its bound
on traceback size, and how state records are read back (no Redis)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from rpqueue import TaskCancelled, TaskError, TaskFailed
from rpqueue.errors import TRACEBACK_LIMIT, bound_text
from rpqueue.taskstate import from_reply, parse_progress, parse_record
from rpqueue.worker.state import error_record


def _raise(text: str) -> BaseException:
    try:
        raise ValueError(text)
    except ValueError as exc:
        return exc


def test_short_text_is_kept_whole() -> None:
    assert bound_text("abc") == "abc"
    exact = "x" * TRACEBACK_LIMIT
    assert bound_text(exact) == exact


@pytest.mark.parametrize("char", ["x", "é", "日", "😀"])
def test_long_text_loses_its_middle_within_the_limit(char: str) -> None:
    text = "HEAD" + char * 40_000 + "TAIL"
    out = bound_text(text)
    assert len(out.encode("utf-8")) <= TRACEBACK_LIMIT
    assert out.startswith("HEAD") and out.endswith("TAIL")
    assert "bytes cut] ..." in out
    out.encode("utf-8")  # no broken characters


def test_error_record_has_the_full_traceback() -> None:
    exc = _raise("bad ünïcode ✓")
    record = error_record(exc, 2)
    assert record.type == "ValueError" and record.message == "bad ünïcode ✓"
    assert "raise ValueError(text)" in record.traceback
    assert record.attempt == 2 and record.worker and record.time > 0
    assert TaskError.from_json(record.to_json()) == record


def test_error_record_of_a_user_exception_is_qualified() -> None:
    class Boom(Exception):
        pass

    record = error_record(Boom("x"), 1)
    assert record.type.endswith("Boom") and "." in record.type


def test_unreadable_error_json_gives_none() -> None:
    assert TaskError.from_json("not json") is None
    assert TaskError.from_json('{"attempt": "x"}') is None


def test_task_failed_message_carries_the_remote_traceback() -> None:
    err = error_record(_raise("remote"), 3)
    exc = TaskFailed("id1", "dead", err)
    assert exc.state == "dead" and exc.error is err and exc.taskid == "id1"
    assert "attempt 3" in str(exc) and "Remote traceback" in str(exc)
    assert "raise ValueError(text)" in str(exc)
    assert "cancelled" in str(TaskCancelled("id2"))


def test_state_records_parse() -> None:
    err = error_record(_raise("x"), 1).to_json()
    assert parse_record("succeeded 1 1 1700000000000") == ("succeeded", 1, 1, 1700000000.0, None)
    parsed = parse_record(f"failed 2 3 5\n{err}")
    assert parsed is not None
    state, attempt, total, when, error = parsed
    assert (state, attempt, total, when) == ("failed", 2, 3, 0.005)
    assert isinstance(error, TaskError) and error.message == "x"
    assert parse_record("bogus 1 1 1") is None and parse_record("failed x 1 1") is None


def test_state_from_replies() -> None:
    assert from_reply(["running", 2, 3, None, None]).state == "running"
    assert from_reply([None, 1, 1, None, None]).state == "unknown"
    done = from_reply([None, 1, 1, "succeeded 1 1 1000", None])
    assert done.state == "succeeded" and done.final and done.time == 1.0
    err = error_record(_raise("y"), 1).to_json()
    retrying = from_reply(["retrying", 2, 3, f"retrying 1 3 5\n{err}", None])
    assert retrying.state == "retrying" and not retrying.final
    assert retrying.error is not None and retrying.error.message == "y"
    # A stale error is not shown for a task that is waiting afresh.
    assert from_reply(["waiting", 1, 1, f"failed 1 1 5\n{err}", None]).error is None


def test_progress_parses() -> None:
    p = parse_progress('{"done": 2, "total": 4, "note": "half", "time": 1.5}')
    assert p is not None and p.fraction == 0.5 and p.note == "half"
    assert parse_progress('{"done": 1, "total": null}') is not None
    assert parse_progress("nope") is None and parse_progress(None) is None


@pytest.mark.parametrize("done, total, note", [(-1, None, None), (float("nan"), None, None),
                                               (1, float("inf"), None), (True, None, None),
                                               ("3", None, None), (1, 2, 5)])
def test_bad_progress_is_refused_before_any_write(done: Any, total: Any, note: Any) -> None:
    from rpqueue.worker.state import Running

    # No app: a refused report never reaches Redis.
    running = Running(cast(Any, None), "q", "id1", "0", cast(Any, None))
    with pytest.raises(ValueError, match="progress"):
        running.progress(done, total, note)
