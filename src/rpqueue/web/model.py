"""What the dashboard shows and changes, with no HTTP in sight.

Every function takes the RPQueue and returns plain JSON-ready values, so the
JSON API is a thin layer over this module and tests can call it directly.
The listings are the read model's (``rpqueue.views``), shared with the
command line and the metrics; this module adds what only the page needs:
rate histories and the JSON shapes. A view costs a fixed few round trips
however many queues exist.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from .. import settings
from ..views import dead, history, items, queues, tasks
from ..views import schedules as schedule_view
from ..views import workers as worker_view
from ..views.dead import CHUNK, DeadAction
from ..views.queues import PROCESSED_COUNTERS
from ..views.workers import NO_REGISTRY

if TYPE_CHECKING:
    from ..app import RPQueue

__all__ = [
    "CHUNK",
    "NO_REGISTRY",
    "PROCESSED_COUNTERS",
    "DeadAction",
    "RateSampler",
    "data_queues",
    "dead_action",
    "dead_item",
    "dead_letters",
    "dead_search",
    "delete_task",
    "pause_queue",
    "queue_history",
    "queue_items",
    "queue_overview",
    "run_now",
    "schedule",
    "search",
    "task_detail",
    "task_item",
    "workers",
]


class RateSampler:
    """Per-queue throughput from the monotonic ``stats`` counters.

    The counters only say how many tasks a queue has ever processed; a rate
    needs two readings and the time between them. The dashboard reads the
    counters on every poll anyway, so it keeps the last ``keep`` readings per
    queue in memory. Readings closer together than ``min_interval`` are
    dropped, so several open tabs do not turn the sparkline into noise.
    """

    def __init__(self, keep: int = 60, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keep = keep
        self.min_interval = min_interval
        self.clock = clock
        self._last = float("-inf")
        self._samples: dict[str, deque[tuple[float, int, int]]] = {}
        # Starlette runs the Redis reads in a thread pool: polls may overlap.
        self._lock = threading.Lock()

    def observe(self, counts: Mapping[str, tuple[int, int]]) -> None:
        """Record (processed, enqueued) totals per queue, if enough time has passed."""
        now = self.clock()
        with self._lock:
            if now - self._last < self.min_interval:
                return
            self._last = now
            for queue in list(self._samples):
                if queue not in counts:
                    del self._samples[queue]
            for queue, (processed, enqueued) in counts.items():
                history = self._samples.get(queue)
                if history is None:
                    history = self._samples[queue] = deque(maxlen=self.keep + 1)
                history.append((now, processed, enqueued))

    def smoothed(self, queue: str, window: float = 10.0) -> float | None:
        """Processed tasks per second over the last ``window`` seconds of
        readings (at least two readings): workers report in bursts, so the
        rate between two polls alone swings between 0 and double."""
        with self._lock:
            history = list(self._samples.get(queue, ()))
        if len(history) < 2:
            return None
        t1, p1, _ = history[-1]
        start = next((s for s in history if t1 - s[0] <= window), history[-2])
        if start is history[-1]:
            start = history[-2]
        t0, p0, _ = start
        return round(max(0, p1 - p0) / (t1 - t0), 3) if t1 > t0 else None

    def rates(self, queue: str) -> tuple[list[float], list[float]]:
        """Processed and enqueued tasks per second between readings, oldest first."""
        with self._lock:
            history = list(self._samples.get(queue, ()))
        processed: list[float] = []
        enqueued: list[float] = []
        for (t0, p0, e0), (t1, p1, e1) in pairwise(history):
            span = t1 - t0
            if span <= 0:
                continue
            # A queue deleted and recreated restarts its counters at zero;
            # that reads as a drop, not as negative throughput.
            processed.append(round(max(0, p1 - p0) / span, 3))
            enqueued.append(round(max(0, e1 - e0) / span, 3))
        return processed, enqueued


def queue_overview(rpq: RPQueue, sampler: RateSampler | None = None) -> dict[str, Any]:
    """Every known queue with its sizes, counters, priority and rate history."""
    view = queues.overview(rpq.ctx)
    rows = [q.as_dict() for q in view.queues]
    if sampler is not None:
        sampler.observe({q.name: (q.processed, q.stats.get("enqueued", 0)) for q in view.queues})
        for row in rows:
            row["rate"], row["rate_enqueued"] = sampler.rates(row["name"])
            row["rate_now"] = sampler.smoothed(row["name"])
    return {"now": view.now, "queues": rows,
            "scheduling": {"mode": view.mode, "age": view.age}}


def queue_history(rpq: RPQueue, queue: str, minutes: int) -> dict[str, Any]:
    """Per-minute throughput and depth of a queue, and smoothed rates (views.history)."""
    return history.history(rpq.ctx, queue, minutes)


def data_queues(rpq: RPQueue) -> dict[str, Any]:
    """Every data queue (rpqueue.Data) with its counts (views.queues.data_queues)."""
    return {"queues": queues.data_queues(rpq.ctx)}


def queue_items(rpq: RPQueue, queue: str, page: int, per_page: int) -> dict[str, Any]:
    """One page of a queue's pending tasks: waiting ones in run order, then delayed ones."""
    (q,) = queues.counts(rpq.ctx, [queue])
    # Long arguments are cut here; task_item has them whole.
    found = [items.shorten(i) for i in items.get_page(rpq.ctx, queue, page, per_page)]
    return {"now": rpq.redis_time(), "queue": queue, "page": page, "per_page": per_page,
            "total": q.size, "waiting": q.waiting, "delayed": q.delayed, "running": q.running,
            "items": found}


def dead_letters(rpq: RPQueue, queue: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The oldest ``limit`` dead letters (of one queue, or of all) and how many exist."""
    return dead.listing(rpq.ctx, queue, limit)


def task_item(rpq: RPQueue, queue: str, taskid: str) -> dict[str, Any] | None:
    """One queued task with its arguments uncut (None if it is not queued)."""
    return items.get_item(rpq.ctx, queue, taskid)


def dead_search(rpq: RPQueue, queue: str | None, filters: Mapping[str, str], page: int,
                per_page: int) -> dict[str, Any]:
    """A page of dead letters, newest first, filtered (views.dead.search)."""
    return dead.search(rpq.ctx, queue, name=filters.get("name", ""),
                       error=filters.get("error", ""), taskid=filters.get("id", ""),
                       page=page, per_page=per_page)


def search(rpq: RPQueue, text: str) -> dict[str, Any]:
    """What the page's search box finds for ``text``: the queues whose name
    holds it, the tasks with that exact id (in any queue), and how many dead
    letters have it in their task name or in their error."""
    names = [q.name for q in queues.overview(rpq.ctx).queues if text.casefold() in q.name.casefold()]
    by_name = dead.search(rpq.ctx, name=text, per_page=1)
    by_error = dead.search(rpq.ctx, error=text, per_page=1)
    return {"query": text, "queues": names, "tasks": tasks.find(rpq.ctx, text),
            "dead_by_name": by_name["matched"], "dead_by_error": by_error["matched"],
            "complete": by_name["complete"] and by_error["complete"]}


def task_detail(rpq: RPQueue, queue: str, taskid: str) -> dict[str, Any] | None:
    """One task in full: message, state, attempts, error, progress, result (views.tasks)."""
    return tasks.detail(rpq.ctx, queue, taskid)


def delete_task(rpq: RPQueue, queue: str, taskid: str) -> dict[str, bool]:
    """Remove a waiting or delayed task; ``deleted`` is False when it was not queued."""
    return {"deleted": tasks.delete(rpq.ctx, queue, taskid)}


def run_now(rpq: RPQueue, queue: str, taskid: str) -> dict[str, bool]:
    """Make a delayed task due now; ``moved`` is False when it was not delayed."""
    return {"moved": tasks.run_now(rpq.ctx, queue, taskid)}


def pause_queue(rpq: RPQueue, queue: str, paused: bool) -> dict[str, Any]:
    """Pause (``paused=True``) or resume a queue; ``changed`` is False when it
    already was so. Workers notice within about a second (settings.py)."""
    changed = (settings.pause_queue(rpq.ctx, queue) if paused
               else settings.resume_queue(rpq.ctx, queue))
    return {"queue": queue, "paused": paused, "changed": changed}


def dead_item(rpq: RPQueue, queue: str, taskid: str) -> dict[str, Any] | None:
    """One dead letter with its arguments and error uncut (None if there is none)."""
    return dead.get_record(rpq.ctx, queue, taskid)


def schedule(rpq: RPQueue) -> dict[str, Any]:
    """Periodic and cron tasks with their schedule and next planned run, soonest first."""
    return schedule_view.listing(rpq.ctx)


def workers(rpq: RPQueue) -> dict[str, Any]:
    """Live workers from the registry, without pruning (see views.workers.snapshot)."""
    return worker_view.snapshot(rpq.ctx)


def dead_action(rpq: RPQueue, action: DeadAction, targets: Iterable[tuple[str, str]] | None = None,
                queue: str | None = None) -> dict[str, int]:
    """Requeue or delete dead letters: the given (queue, id) pairs, or with no
    targets every dead letter (of ``queue``, or of every known queue)."""
    return dead.act(rpq.ctx, action, targets, queue)
