"""Worker logs (issue #7): ``--log-json`` writes one JSON object per line with
structured task fields; control characters in task names are escaped; task
arguments (payloads) are never logged."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from ops_support import (
    Ledger,
    OpsWorkers,
    task_ref,
    wait_until,
)

import rpqueue

# The ledger fixture reads what the ops task modules noted (ops_ledger.py).
pytestmark = pytest.mark.ops_ledger

EVIL_NAME = "ops.evil\x1b[31m\nname\x07"
EVIL_SOFT_NAME = "ops.evil\x1b[31m\nsoft\x07"
SECRET = "SECRET-PAYLOAD-7f3a"
# Any C0 control character except the line feed that ends each line, DEL, and C1.
CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def _lines(raw: bytes) -> list[dict[str, Any]]:
    text = raw.decode("ascii")  # every byte ASCII
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _exercise(app: rpqueue.RPQueue, ledger: Ledger) -> dict[str, str]:
    """Success, failure, soft limit, hard abort: each with the secret as an argument."""
    ids = {}
    ids["record"] = task_ref(app, "ops_tasks.record").execute(SECRET).taskid
    ids["evil"] = task_ref(app, EVIL_NAME).execute(SECRET).taskid
    ids["soft"] = task_ref(app, EVIL_SOFT_NAME).execute(SECRET).taskid
    # (Its exception message repeats its argument: the task's choice, not the worker's.)
    ids["flaky"] = task_ref(app, "ops_tasks.flaky_vis").execute("json-flaky").taskid
    abortable = task_ref(app, "ops_tasks.abortable").execute(SECRET)
    ids["abort"] = abortable.taskid
    ledger.wait_for(1, "start", tag=SECRET)
    abortable.abort(hard=True)
    ledger.wait_for(1, "aborted-inside", tag=SECRET)
    ledger.wait_for(1, "evil-soft")
    ledger.wait_for(3, "run", tag="json-flaky")
    return ids


def test_json_lines(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger) -> None:
    worker = ops.start("ops_tasks", "ops", args=["--log-json", "--successlevel", "INFO"])
    ids = _exercise(app, ledger)
    worker.wait_log("aborting task")
    worker.wait_log("in queue ops raised", count=5)  # evil, flaky x3, abortable
    worker.wait_log("done in", count=2)  # record, evil_soft (it caught its soft limit)
    raw = worker.stderr_bytes()
    lines = _lines(raw)
    assert SECRET.encode() not in raw
    assert not CONTROL.search(raw)
    for line in lines:
        assert {"time", "level", "logger", "pid", "thread", "message"} <= set(line)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
        assert isinstance(line["pid"], int)

    def about(taskid: str) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("id") == taskid]

    [done] = [x for x in about(ids["record"]) if "done in" in x["message"]]
    assert done["task"] == "ops_tasks.record" and done["level"] == "INFO"
    assert isinstance(done["took"], float)

    raised = [x for x in about(ids["evil"]) if x["message"].endswith("raised")]
    [failure] = raised
    assert failure["level"] == "ERROR" and failure["queue"] == "ops"
    assert "ValueError: evil failed" in failure["exc"]
    # Escaped by the worker (no control characters, not even in the JSON value).
    assert failure["task"] == EVIL_NAME.encode("unicode_escape").decode()
    # What the task logs itself carries the fields of the task running it.
    [inside] = [x for x in about(ids["evil"]) if x["message"] == "working inside the task"]
    assert inside["logger"] == "ops.tasks"
    assert inside["task"] == EVIL_NAME and inside["queue"] == "ops"

    [soft] = [x for x in about(ids["soft"]) if "soft time limit" in x["message"]]
    # The worker escapes task names in every log line; JSON keeps that text.
    escaped = EVIL_SOFT_NAME.encode("unicode_escape").decode("ascii")
    assert soft["level"] == "WARNING" and soft["task"] in (EVIL_SOFT_NAME, escaped)

    assert len([x for x in about(ids["flaky"]) if x["message"].endswith("raised")]) == 3
    [aborting] = [x for x in about(ids["abort"]) if x["message"].startswith("aborting task")]
    assert aborting["task"] == "ops_tasks.abortable"
    [started] = [x for x in lines if "serving ops" in x["message"]]
    assert started["logger"] == "rpqueue.worker"


def test_plain_text_stays_the_default(app: rpqueue.RPQueue, ops: OpsWorkers,
                                      ledger: Ledger) -> None:
    worker = ops.start("ops_tasks", "ops")
    task_ref(app, EVIL_NAME).execute(SECRET)
    out = worker.wait_log("raised")
    assert out.startswith("20")  # "2026-... INFO rpqueue.worker[pid]: ..."
    assert not out.lstrip().startswith("{")
    assert "task ops.evil\\x1b[31m\\nname\\x07 (" in out
    assert SECRET not in out


def test_plain_text_time_limit_lines_escape_task_names(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                       ledger: Ledger) -> None:
    worker = ops.start("ops_tasks", "ops")
    task_ref(app, EVIL_SOFT_NAME).execute("x")
    ledger.wait_for(1, "evil-soft")
    worker.wait_log("soft time limit")
    assert not CONTROL.search(worker.stderr_bytes())


def test_json_lines_with_several_processes(app: rpqueue.RPQueue, ops: OpsWorkers,
                                           ledger: Ledger) -> None:
    worker = ops.start("ops_tasks", "ops", args=["--log-json", "--processes", "2",
                                                 "--successlevel", "INFO"], ready=2)
    for _ in range(6):
        task_ref(app, "ops_tasks.pause").execute(SECRET, 0.05)
    wait_until(lambda: worker.stderr().count("done in") >= 6, message="six tasks done")
    raw = worker.stderr_bytes()
    lines = _lines(raw)
    assert SECRET.encode() not in raw
    assert len({x["pid"] for x in lines if "serving ops" in x["message"]}) == 2
