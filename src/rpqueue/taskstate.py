"""What happened to one task: its state, last error and progress, read from
Redis for ``EnqueuedTask`` (see docs/TASK_STATE.md).

One script call (task_state-4.lua) answers all three, from the live keys
while the task is queued or running and from its state record once it has
finished; the record lives for the app's ``state_keep`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import TaskCancelled, TaskError, TaskFailed
from .storage import Store
from .storage.message import decode_result

# Every value of EnqueuedTask.state.
LIVE_STATES = ("waiting", "delayed", "running", "retrying")
FINAL_STATES = ("succeeded", "failed", "dead", "cancelled", "aborted")
STATES = (*LIVE_STATES, *FINAL_STATES, "unknown")
# get() raises TaskFailed for these.
FAILED_STATES = ("failed", "dead", "aborted")


@dataclass(frozen=True)
class TaskProgress:
    """The last progress a running task reported (``current_task().progress``):
    ``done`` of ``total`` (None when unknown), a short ``note``, and the
    unix ``time`` of the report."""

    done: float
    total: float | None
    note: str
    time: float

    @property
    def fraction(self) -> float | None:
        """``done / total`` when a total is known and not zero."""
        return self.done / self.total if self.total else None


@dataclass(frozen=True)
class TaskState:
    """A task's state with what came with it: ``attempt`` (from 1) of
    ``attempts``, the unix ``time`` it finished (None while live or when
    unknown), the ``error`` of its last failed attempt, its ``progress``."""

    state: str
    attempt: int
    attempts: int
    time: float | None
    error: TaskError | None
    progress: TaskProgress | None

    @property
    def final(self) -> bool:
        """True once nothing more will happen to the task (or it is unknown)."""
        return self.state not in LIVE_STATES


def parse_record(raw: str) -> tuple[str, int, int, float, TaskError | None] | None:
    """A state record "<state> <attempt> <total> <time_ms>[\\n<error JSON>]"."""
    head, _, err = raw.partition("\n")
    parts = head.split(" ")
    if len(parts) != 4 or parts[0] not in STATES:
        return None
    try:
        attempt, total, when = int(parts[1]), int(parts[2]), int(parts[3]) / 1000
    except ValueError:
        return None
    return parts[0], attempt, total, when, TaskError.from_json(err) if err else None


def parse_progress(raw: str | None) -> TaskProgress | None:
    if not raw:
        return None
    try:
        d = json.loads(raw)
        total = d.get("total")
        return TaskProgress(float(d["done"]), None if total is None else float(total),
                            str(d.get("note") or ""), float(d.get("time", 0.0)))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def from_reply(reply: list[Any]) -> TaskState:
    """A TaskState from the reply of ``Calls.task_state``."""
    live, attempt, total, raw, prog = reply
    record = parse_record(raw) if raw else None
    progress = parse_progress(prog)
    if live:
        # A task on a later attempt (waiting, delayed or running again)
        # shows the error of the attempt that failed before it.
        error = record[4] if record and record[0] == "retrying" else None
        return TaskState(live, attempt, total, None, error, progress)
    if record is None:
        return TaskState("unknown", attempt, total, None, None, progress)
    state, attempt, total, when, error = record
    if state == "retrying":
        # The record of a retry whose task has since gone (cleared, or its
        # keys removed by hand): nothing says how it ended.
        return TaskState("unknown", attempt, total, None, error, progress)
    return TaskState(state, attempt, total, when, error, progress)


def read(store: Store, queue: str, taskid: str) -> TaskState:
    return from_reply(store.run(store.calls.task_state(queue, taskid)))


async def aread(store: Store, queue: str, taskid: str) -> TaskState:
    return from_reply(await store.arun(store.calls.task_state(queue, taskid)))


def outcome(store_result: Any, st: TaskState, taskid: str) -> Any:
    """get()'s answer for a final state: the result, or the matching error."""
    if st.state in FAILED_STATES:
        raise TaskFailed(taskid, st.state, st.error)
    if st.state == "cancelled":
        raise TaskCancelled(taskid)
    return decode_result(store_result)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout >= 0):
        raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout!r}")


def wait_final(check: Callable[[], TaskState], taskid: str, timeout: float | None) -> TaskState:
    """Poll until the task's state is final; TimeoutError after ``timeout`` s."""
    _check_timeout(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        st = check()
        if st.final:
            return st
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"task {taskid} still {st.state} after {timeout}s")
        time.sleep(pause if left is None else min(pause, left))
        pause = min(pause * 2, 0.05)


async def await_final(check: Callable[[], Awaitable[TaskState]], taskid: str,
                      timeout: float | None) -> TaskState:
    """``wait_final`` for asyncio code."""
    _check_timeout(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.001
    while True:
        st = await check()
        if st.final:
            return st
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"task {taskid} still {st.state} after {timeout}s")
        await asyncio.sleep(pause if left is None else min(pause, left))
        pause = min(pause * 2, 0.05)
