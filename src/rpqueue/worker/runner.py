"""Running one taken task: decode, call, report the outcome."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..broker import Taken
from ..message import MalformedMessage, decode, encode_result

if TYPE_CHECKING:
    from ..app import RPQueue
    from ..task import Task

log = logging.getLogger("rpqueue.worker")


def _safe(value: str, limit: int = 200) -> str:
    """Task names and errors go to logs escaped: no control characters, bounded length."""
    out = value.encode("unicode_escape").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


@dataclass
class Running:
    """The task a worker thread is running, as seen by the task itself."""

    app: RPQueue
    queue: str
    taskid: str
    token: str
    task: Task
    started: float = field(default_factory=time.monotonic)

    def extend(self, seconds: float) -> bool:
        """Keep the lease for ``seconds`` more from now; False if it was already lost."""
        return self.app.broker.extend(self.queue, self.taskid, self.token, seconds) > 0


@dataclass
class Finished:
    """A task that ran to completion, its outcome not yet written to Redis.

    The worker writes it together with its next take when it can (one
    round trip for both), else on its own.
    """

    taken: Taken
    task: Task
    result: str
    took: float


_local = threading.local()


def current_task() -> Running | None:
    """The task running in this thread, or None outside a task."""
    return getattr(_local, "running", None)


class Runner:
    def __init__(self, app: RPQueue, success_level: int = logging.DEBUG) -> None:
        self.app = app
        self.success_level = success_level
        # What each worker thread runs now: shown in the worker registry, and
        # the leases of tasks without a visibility timeout are renewed.
        self.running: dict[int, Running] = {}
        self.counts = {"done": 0, "failed": 0}
        self.in_flight = 0
        self._lock = threading.Lock()

    def _fail(self, taken: Taken, error: str, force: bool, reason: str) -> int:
        return self.app.broker.fail(taken.queue, taken.id, taken.token, error, force, reason)

    def run(self, taken: Taken) -> Finished | None:
        """Run a task; failures are reported here, successes returned to report."""
        with self._lock:
            self.in_flight += 1
        try:
            return self._run(taken)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _run(self, taken: Taken) -> Finished | None:
        try:
            message = decode(taken.raw)
        except MalformedMessage as exc:
            log.error("dead-lettering task %s in queue %s: %s",
                      _safe(taken.id), _safe(taken.queue), exc)
            self._fail(taken, str(exc), True, "malformed message")
            return None
        task = self.app.registry.get(message.name)
        if task is None:
            log.error("dead-lettering task %s in queue %s: unknown task %s",
                      _safe(taken.id), _safe(taken.queue), _safe(message.name))
            self._fail(taken, f"no task named {message.name!r} in this worker",
                       True, "unknown task")
            return None
        kwargs = message.kwargs
        if task.vis_timeout > 0 and task.attempts > 1:
            # The live count: every delivery used one, whatever the message says.
            kwargs["_attempts"] = int(taken.token) + 1
        running = Running(self.app, taken.queue, taken.id, taken.token, task)
        key = threading.get_ident()
        self.running[key] = running
        _local.running = running
        try:
            value = task.function(*message.args, **kwargs)
        except Exception as exc:
            log.exception("task %s (%s) in queue %s raised", _safe(task.name),
                          _safe(taken.id), _safe(taken.queue))
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self._fail(taken, detail, False, "task raised an exception")
            with self._lock:
                self.counts["failed"] += 1
            return None
        finally:
            _local.running = None
            self.running.pop(key, None)
        return Finished(taken, task, self._result(task, value), time.monotonic() - running.started)

    @staticmethod
    def _result(task: Task, value: Any) -> str:
        if task.save_results > 0:
            try:
                return encode_result(task.name, value)
            except TypeError as exc:
                log.error("%s; saving null instead", exc)
        return "null"

    def finish(self, f: Finished) -> None:
        """Write a finished task's outcome on its own."""
        t = f.taken
        self.report(f, self.app.broker.done(t.queue, t.id, t.token, f.result, f.task.save_results))

    def report(self, f: Finished, recorded: bool) -> None:
        task, taken = f.task, f.taken
        if recorded:
            with self._lock:
                self.counts["done"] += 1
            log.log(self.success_level, "task %s (%s) done in %.4fs", _safe(task.name),
                    _safe(taken.id), f.took)
        else:
            log.warning("task %s (%s) finished after its lease was lost; "
                        "another worker owns it now", _safe(task.name), _safe(taken.id))

    def renew_leases(self) -> None:
        for running in list(self.running.values()):
            if running.task.vis_timeout <= 0:
                running.extend(self.app.running_lease)
