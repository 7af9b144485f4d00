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


def prune(ctx: Context, idle: float, dry_run: bool = False) -> list[str]:
    """Forget known queue names that are empty and unused: no task waiting,
    delayed, running, dead or periodic, no settings (limit, priority, weight,
    pause), and registered more than ``idle`` seconds ago. Returns their names.

    For a flood of names (a producer making up queue names): each costs every
    worker serving all queues and every dashboard poll. A producer process
    that still uses a pruned name registers it again when it next starts;
    until then workers serving every queue do not see new tasks in it, so
    choose ``idle`` well beyond the life of a quiet queue.
    """
    if not idle >= 0:
        raise ValueError(f"idle must be a number of seconds >= 0, got {idle!r}")
    view = overview(ctx)
    weights = _weighted(ctx)
    candidates = [q for q in view.queues
                  if q.seen is not None and view.now - q.seen > idle and not q.size
                  and not q.running and not q.dead and q.limit is None and q.priority is None
                  and not q.paused and q.name not in weights]
    periodic = reads.periodic_counts(ctx.store, [q.name for q in candidates])
    names = [q.name for q, n in zip(candidates, periodic) if not n]
    if dry_run:
        return names
    return reads.prune_queues(ctx.store, names)


def _weighted(ctx: Context) -> set[str]:
    """Queues with a weight of their own (a setting: never pruned)."""
    index = reads.queue_index(ctx.store)
    return {q.decode("utf-8", "replace") if isinstance(q, bytes) else str(q)
            for q in index.weights}


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


def data_queues(ctx: Context) -> list[dict[str, Any]]:
    """Every data queue (``rpqueue.Data``) with its counts: ``items`` stored,
    ``available`` to read now, ``delayed``, ``leased`` (read, not yet done)
    and ``dead``. Read-only: expired leases still count as leased until the
    next read of the queue returns them."""
    return [{"name": name, "items": items, "available": max(0, items - delayed - leased),
             "delayed": delayed, "leased": leased, "dead": dead}
            for name, items, delayed, leased, dead in reads.data_counts(ctx.store)]
