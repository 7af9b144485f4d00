"""The scheduler of periodic and cron tasks, run in every worker process.

Each periodic task has one planned time in Redis (its queue's ``periodic``
zset). When it is due, every worker process may try to claim it; the claim
script is a compare-and-set on that planned time, so exactly one succeeds
per period however many workers run, and a run is missed only while no
worker is alive. All times are Redis's: worker clocks never decide.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from .schedule import next_run
from .storage.message import encode_call, new_id
from .storage.worker_io import RETRYABLE_ERRORS, WorkerIO

if TYPE_CHECKING:
    from .context import Context
    from .task import Task

log = logging.getLogger("rpqueue.periodic")

# Re-read planned times at least this often: another worker, a deploy or
# flush_tasks may have moved them.
MAX_WAIT = 1.0
# "Never again": a schedule with no further run (a cron whose years ran out).
NEVER_MS = 2**53


def to_ms(t: float) -> int:
    """A planned time in whole ms, rounded up so that reading it back never
    lands before the slot it stands for (which would plan that slot twice)."""
    if math.isinf(t):
        return NEVER_MS
    return math.ceil(t * 1000 - 1e-6)


class Scheduler:
    """Plans and claims the runs of this process's periodic tasks."""

    def __init__(self, app: Context, tasks: list[Task]) -> None:
        self.app = app
        self.io = WorkerIO(app.store)
        self.tasks = [t for t in tasks if t.schedule is not None]
        self.planned: dict[str, float] = {}  # task name -> planned run (ms)
        self.offset = 0.0  # Redis time minus local time, in seconds

    def register(self) -> None:
        """Plan each task's first run, unless another worker planned it already."""
        for task in self.tasks:
            assert task.schedule is not None
            now = self.app.store.redis_time()
            self.offset = now - time.time()
            first = to_ms(task.schedule.next_after(now))
            self.planned[task.name] = self.io.register_periodic(
                task.queue, task.name, task.schedule.describe(), first)
            self.app.store.note_queue(task.queue)

    def refresh(self) -> None:
        by_queue: dict[str, list[Task]] = {}
        for task in self.tasks:
            by_queue.setdefault(task.queue, []).append(task)
        for queue, tasks in by_queue.items():
            scores = self.io.planned(queue, [t.name for t in tasks])
            for task, score in zip(tasks, scores):
                if score is None:
                    # Someone cleared the schedule: plan it afresh.
                    self.register()
                    return
                self.planned[task.name] = score

    def claim_due(self) -> None:
        now_ms = (time.time() + self.offset) * 1000
        for task in self.tasks:
            planned = self.planned.get(task.name)
            if planned is None or planned > now_ms or planned >= NEVER_MS:
                continue
            self._claim(task, planned)

    def _claim(self, task: Task, planned: float) -> None:
        assert task.schedule is not None
        now = max(planned / 1000, time.time() + self.offset)
        # Always forward by at least a millisecond, whatever the rounding.
        after = max(to_ms(next_run(task.schedule, planned / 1000, now, task.never_skip)),
                    int(planned) + 1)
        taskid = new_id()
        kwargs = {"_attempts": task.attempts} if task.attempts > 1 else {}
        message = encode_call(taskid, task.name, task.queue, (), kwargs)
        claimed, in_force, redis_now = self.io.claim_periodic(
            task.queue, task.name, int(planned), after, taskid, message, task._meta)
        self.offset = redis_now / 1000 - time.time()
        self.planned[task.name] = in_force
        if claimed:
            log.debug("queued periodic run %s of %s", taskid, task.name)

    def wait_time(self) -> float:
        if not self.planned:
            return MAX_WAIT
        soonest = min(self.planned.values()) / 1000
        # At least a millisecond: a claim the server found early must not spin.
        return max(0.001, min(MAX_WAIT, soonest - (time.time() + self.offset)))

    def run(self, stop: threading.Event) -> None:
        backoff = 0.1
        registered = False
        while not stop.is_set():
            try:
                if not registered:
                    self.register()
                    registered = True
                self.claim_due()
                if stop.wait(self.wait_time()):
                    return
                self.refresh()
                backoff = 0.1
            except RETRYABLE_ERRORS as exc:
                log.warning("scheduler: Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("scheduler error")
                stop.wait(1.0)


def start_scheduler(app: Context, stop: threading.Event) -> threading.Thread | None:
    scheduler = Scheduler(app, list(app.registry.values()))
    if not scheduler.tasks:
        return None
    thread = threading.Thread(target=scheduler.run, args=(stop,), name="rpqueue-scheduler",
                              daemon=True)
    thread.start()
    return thread
