"""Writing the outcomes of ``async def`` tasks (aio.py), in batches.

The asyncio lane's reporter thread hands each batch of ended coroutines
here: their done/fail calls go out in one pipelined round trip (the same
scripts as sync tasks), sent again while Redis is unreachable, then logs and
hooks follow.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from ..storage.message import Message
from ..storage.worker_io import RETRYABLE_ERRORS
from .state import FailurePlan, Finished, Running, log, plan_failure

if TYPE_CHECKING:
    from ..storage.calls import Call, Taken
    from ..task import Task
    from .runner import Runner

# Tries to write a batch of outcomes while Redis is unreachable (0.2, 0.6, 1.8 s apart).
REPORT_TRIES = 4


class TaskRun:
    """One coroutine and what it takes to report it."""

    __slots__ = ("expired", "inner", "message", "reported", "runner", "running", "taken",
                 "task", "timers")

    def __init__(self, runner: Runner, taken: Taken, task: Task, message: Message,
                 running: Running) -> None:
        self.runner, self.taken, self.task = runner, taken, task
        self.message, self.running = message, running
        self.inner: asyncio.Future[Any] | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.expired = False  # cancelled at its time limit
        self.reported = False  # its failure was recorded before it ended (grace passed)


class Outcome:
    """How one coroutine ended, for the reporter thread."""

    __slots__ = ("error", "run", "value")

    def __init__(self, run: TaskRun, value: Any, error: Exception | None) -> None:
        self.run, self.value, self.error = run, value, error


def write_outcomes(batch: list[Outcome]) -> None:
    """Write a batch of outcomes in one round trip, then log them and call hooks."""
    calls: list[tuple[Outcome, Call[Any], Finished | FailurePlan]] = []
    for outcome in batch:
        run = outcome.run
        runner, taken, task = run.runner, run.taken, run.task
        calls_of = runner.app.store.calls
        try:
            if outcome.error is None:
                f = runner.finished(taken, task, outcome.value, run.running)
                calls.append((outcome, calls_of.done(
                    taken.queue, taken.key, taken.token, f.result, task.save_results), f))
                continue
            runner.log_failure(taken, task, outcome.error)
            plan = plan_failure(task, run.message, taken, outcome.error)
            calls.append((outcome, runner.fail_call(taken, plan), plan))
        except Exception:
            log.exception("reporting async task %s failed", taken.id)
    if not calls:
        return
    app = calls[0][0].run.runner.app
    replies: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    for attempt in range(REPORT_TRIES):
        try:
            got = app.store.pipeline([calls[i][1] for i in pending])
        except RETRYABLE_ERRORS as exc:  # the pipeline as a whole
            got = [exc] * len(pending)
        again = []
        for i, reply in zip(pending, got):
            if isinstance(reply, RETRYABLE_ERRORS) and attempt < REPORT_TRIES - 1:
                again.append(i)
            else:
                replies[i] = reply
        if not again:
            break
        # Sent again: each call is fenced by its lease token, so one that
        # did run before the connection broke only reports a lost lease.
        log.warning("Redis unreachable while reporting %d async task(s); retrying",
                    len(again))
        time.sleep(0.2 * 3 ** attempt)
        pending = again
    for (outcome, _, what), reply in zip(calls, replies):
        run = outcome.run
        if isinstance(reply, Exception):
            log.error("reporting async task %s failed: %s", run.taken.id, reply)
        elif isinstance(what, Finished):
            run.runner.report(what, bool(reply))
        else:
            run.runner.after_fail(run.taken, run.task, what, int(reply))
