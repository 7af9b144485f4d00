"""What is in each queue: sizes, counters and settings, for every queue at once.

``overview`` reads every known queue (and every queue with a priority, or
paused, that nothing has used yet) in two round trips whatever their
number: one for the queue-wide index and settings, one pipeline for the
per-queue counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..context import Context
from ..settings import parse_limit
from ..storage import reads
from ..storage.keys import normalize_queue
from ..worker.scheduling import DEFAULT_WEIGHT, parse_settings

# Counters in a queue's stats hash whose sum is "tasks finished", success or not.
PROCESSED_COUNTERS = ("done", "failed")


@dataclass
class QueueStats:
    """One queue as the read model shows it."""

    name: str
    waiting: int  # ready to run, at any per-message priority
    delayed: int
    running: int  # taken by a worker, lease held
    dead: int
    stats: dict[str, int] = field(default_factory=dict)
    limit: dict[str, Any] | None = None
    seen: float | None = None  # unix time last used; None if never used
    priority: float | None = None
    weight: float = DEFAULT_WEIGHT
    paused: bool = False

    @property
    def size(self) -> int:
        """Tasks queued: waiting or delayed."""
        return self.waiting + self.delayed

    @property
    def processed(self) -> int:
        """Tasks finished, success or not (from the counters)."""
        return sum(self.stats.get(c, 0) for c in PROCESSED_COUNTERS)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready fields."""
        return asdict(self)


@dataclass
class Overview:
    """Every queue, in the order a worker serving all of them uses, and the
    scheduling settings workers read."""

    now: float
    queues: list[QueueStats]
    mode: str = "strict"
    age: float | None = None

    def by_name(self) -> dict[str, QueueStats]:
        """The queues by name."""
        return {q.name: q for q in self.queues}


def _stats(counts: reads.QueueCounts) -> QueueStats:
    return QueueStats(counts.queue, counts.ready + counts.prio, counts.delayed, counts.leases,
                      counts.dead, counts.stats, parse_limit(counts.conf))


def counts(ctx: Context, queues: Sequence[str | bytes]) -> list[QueueStats]:
    """The sizes, counters and limit of the given queues (one round trip);
    the index fields (seen, priority, weight, paused) are left at their defaults."""
    names = [normalize_queue(q) for q in queues]
    found, _ = reads.queue_counts(ctx.store, names)
    return [_stats(c) for c in found]


def overview(ctx: Context) -> Overview:
    """Every queue that is known, has a priority or is paused, fully described."""
    index = reads.queue_index(ctx.store)
    pri = index.priorities
    names = sorted(set(index.seen) | set(pri) | index.paused,
                   key=lambda q: (q not in pri, pri.get(q, 0.0), q))
    found, now = reads.queue_counts(ctx.store, names)
    scheduling = parse_settings(index.scheduling, index.weights)
    rows = []
    for c in found:
        row = _stats(c)
        row.seen = index.seen.get(c.queue)
        row.priority = pri.get(c.queue)
        row.weight = scheduling.weight(c.queue)
        row.paused = c.queue in index.paused
        rows.append(row)
    return Overview(now, rows, scheduling.mode, scheduling.age)


def queue_sizes(ctx: Context) -> list[tuple[str, int, float]]:
    """Rows of (queue, tasks waiting or delayed, unix time last seen) of the
    known queues, in the order of the known-queues index."""
    rows = [q for q in overview(ctx).queues if q.seen is not None]
    rows.sort(key=lambda q: (q.seen or 0.0, q.name))
    return [(q.name, q.size, q.seen or 0.0) for q in rows]


def queue_info(ctx: Context, queue: str | bytes) -> dict[str, Any]:
    """Counts of one queue: waiting, delayed, running, dead, counters and limit."""
    (q,) = counts(ctx, [queue])
    return {"queue": q.name, "waiting": q.waiting, "delayed": q.delayed, "running": q.running,
            "dead": q.dead, "stats": q.stats, "limit": q.limit}
