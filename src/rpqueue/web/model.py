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

from ..views import dead, items, queues
from ..views import schedules as schedule_view
from ..views import workers as worker_view
from ..views.dead import CHUNK, DeadAction
from ..views.queues import PROCESSED_COUNTERS
from ..views.workers import NO_REGISTRY

if TYPE_CHECKING:
    from ..app import RPQueue

__all__ = ["CHUNK", "NO_REGISTRY", "PROCESSED_COUNTERS", "DeadAction", "RateSampler",
           "dead_action", "dead_letters", "queue_items", "queue_overview", "schedule", "workers"]


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
    return {"now": view.now, "queues": rows,
            "scheduling": {"mode": view.mode, "age": view.age}}


def queue_items(rpq: RPQueue, queue: str, page: int, per_page: int) -> dict[str, Any]:
    """One page of a queue's pending tasks: waiting ones in run order, then delayed ones."""
    (q,) = queues.counts(rpq.ctx, [queue])
    found = items.get_page(rpq.ctx, queue, page, per_page)
    return {"now": rpq.redis_time(), "queue": queue, "page": page, "per_page": per_page,
            "total": q.size, "waiting": q.waiting, "delayed": q.delayed, "running": q.running,
            "items": found}


def dead_letters(rpq: RPQueue, queue: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The oldest ``limit`` dead letters (of one queue, or of all) and how many exist."""
    return dead.listing(rpq.ctx, queue, limit)


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
