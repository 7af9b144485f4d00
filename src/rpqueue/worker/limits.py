"""Time limits and abort requests for running tasks, enforced by one monitor
thread per worker process.

A plain function cannot be stopped from outside its thread except by
raising an exception in it (``PyThreadState_SetAsyncExc``), which takes
effect at its next Python bytecode: a task stuck in a C call or a blocking
system call does not see it. So a hard ``timeout`` first raises
TimeLimitExceeded in the task; if the task is still running a grace period
later, its failure is recorded and, when a supervisor runs this process
(``--processes``, or any task with a hard timeout), the process exits and is
replaced. ``async def`` tasks are cancelled by their event loop instead (aio.py).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

from ..errors import SoftTimeLimitExceeded, TaskAborted, TaskError, TimeLimitExceeded
from ..storage.wire import FailMode, FailOutcome
from ..storage.worker_io import WorkerIO
from .runner import Runner
from .state import Running, _safe, worker_id

if TYPE_CHECKING:
    from ..context import Context

log = logging.getLogger("rpqueue.worker")

TICK = 0.05
ABORT_POLL = 0.5
GRACE = 1.0
EXIT_CODE = 70
SUPERVISED_ENV = "RPQUEUE_SUPERVISED"


def raise_in_thread(thread_id: int, exc: type[BaseException]) -> bool:
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                      ctypes.py_object(exc))
    return int(done) == 1


class Monitor:
    """Enforces time limits and abort requests on the tasks of one process."""

    def __init__(self, app: Context, runner: Runner, stop: threading.Event) -> None:
        self.app = app
        self.io = WorkerIO(app.store)
        self.runner = runner
        self.stop = stop
        self._last_poll = 0.0

    def run(self) -> None:
        while not self.stop.wait(TICK):
            try:
                self.check()
            except Exception:
                log.exception("task monitor error")

    def check(self) -> None:
        now = time.monotonic()
        running = [(k, r) for k, r in list(self.runner.running.items())]
        for key, r in running:
            self._limits(key, r, now - r.started)
        if running and now - self._last_poll >= ABORT_POLL:
            self._last_poll = now
            self._aborts([r for _, r in running])

    def _is_sync(self, r: Running) -> bool:
        return r.thread != self.runner.lane_thread()

    def _fire(self, key: int, r: Running, what: str, exc: type[BaseException]) -> None:
        r.fired.add(what)
        # Only while this very run is still registered: an exception that
        # arrived after the task ended would hit the worker loop instead.
        if self.runner.running.get(key) is r:
            raise_in_thread(r.thread, exc)

    def _limits(self, key: int, r: Running, elapsed: float) -> None:
        task = r.task
        if not self._is_sync(r):
            return  # the event loop enforces limits on coroutines
        if task.soft_timeout and elapsed > task.soft_timeout and "soft" not in r.fired:
            log.warning("task %s (%s) passed its soft time limit of %ss", _safe(task.name), r.taskid,
                        task.soft_timeout)
            self._fire(key, r, "soft", SoftTimeLimitExceeded)
        if task.timeout and elapsed > task.timeout:
            if "hard" not in r.fired:
                log.error("task %s (%s) passed its time limit of %ss; stopping it", _safe(task.name),
                          r.taskid, task.timeout)
                self._fire(key, r, "hard", TimeLimitExceeded)
            elif elapsed > task.timeout + GRACE and "exit" not in r.fired:
                r.fired.add("exit")
                self._stuck(r)

    def _stuck(self, r: Running) -> None:
        """The task ignored the exception (a C call?): record it and, if supervised, exit."""
        error = f"did not stop {GRACE}s after its time limit of {r.task.timeout}s"
        self.app.emit("after_task", r, None, TimeLimitExceeded(error))
        store = self.app.store
        # The state record's error (docs/TASK_STATE.md): no traceback, the task never returned.
        attempt = r.task.attempts - int(r.token) if r.task.vis_timeout > 0 else 1
        record = TaskError("rpqueue.errors.TimeLimitExceeded", error, "", max(1, attempt),
                           worker_id(), time.time()).to_json()
        code = store.run(store.calls.fail(r.queue, r.taskid, r.token, error, FailMode.RETRY,
                                          "time limit exceeded", record=record))
        if code == FailOutcome.DEAD:
            self.app.emit("on_dead", r.task, r.taskid, "time limit exceeded", error)
        if os.environ.get(SUPERVISED_ENV):
            log.error("task %s (%s) is stuck past its time limit; restarting this worker "
                      "process", _safe(r.task.name), r.taskid)
            os._exit(EXIT_CODE)
        log.error("task %s (%s) is stuck past its time limit and holds its thread; run the "
                  "worker with --processes to have such processes replaced", _safe(r.task.name),
                  r.taskid)

    def _aborts(self, running: list[Running]) -> None:
        flags = self.io.abort_flags([(r.queue, r.taskid) for r in running])
        for r, flag in zip(running, flags):
            if flag is None:
                continue
            r.abort_requested = True
            if flag != "hard" or r.hard_abort:
                continue
            r.hard_abort = True
            log.warning("aborting task %s (%s)", _safe(r.task.name), r.taskid)
            if r.future is not None:
                r.future.get_loop().call_soon_threadsafe(r.future.cancel)
                continue
            for key, other in list(self.runner.running.items()):
                if other is r:
                    self._fire(key, r, "abort", TaskAborted)


def start_monitor(app: Context, runner: Runner, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=Monitor(app, runner, stop).run, name="rpqueue-monitor",
                              daemon=True)
    thread.start()
    return thread
