"""The read model's Redis reads (and its few writes), each one pipelined round trip.

``rpqueue.views`` (what the API, the command line, the dashboard and the
Prometheus collector show) and ``rpqueue.admin`` ask these functions for
plain values; none of them holds a Redis client. Every function takes the
``Store`` and sends one pipeline whatever the number of queues, so a view
costs a fixed few round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from .calls import Call
from .executor import Step, command, raise_first
from .scripts import scripts
from .store import Store
from .wire import text

# What a read that reached no answer raises: front ends (the dashboard) turn
# it into "Redis unavailable" without importing redis themselves.
StorageError = RedisError

# -- reply parsing ---------------------------------------------------------------------


def pairs(reply: Any) -> list[tuple[Any, float]]:
    """(member, score) pairs of a ZRANGE ... WITHSCORES reply.

    A plain command in a pipeline gets no redis-py reshaping: RESP2 answers
    a flat list, RESP3 a list of pairs; both are read here.
    """
    items = list(reply or [])
    if items and isinstance(items[0], (list, tuple)):
        return [(m, float(s)) for m, s in items]
    return [(items[i], float(items[i + 1])) for i in range(0, len(items) - 1, 2)]


def _hash(reply: Any) -> dict[Any, Any]:
    if isinstance(reply, dict):
        return reply
    items = list(reply or [])
    return {items[i]: items[i + 1] for i in range(0, len(items) - 1, 2)}


def _time(reply: Any) -> float:
    secs, micros = reply
    return int(secs) + int(micros) / 1e6


def _counter(value: Any) -> int:
    try:
        return int(text(value))
    except ValueError:
        return 0


# -- queues ----------------------------------------------------------------------------


@dataclass
class QueueIndex:
    """The queue-wide settings and the known-queues index, as read."""

    seen: dict[str, float]  # queue -> unix time last seen, in index order
    priorities: dict[str, float]
    paused: set[str]
    scheduling: dict[Any, Any]  # raw hash, for worker.scheduling.parse_settings
    weights: dict[Any, Any]  # raw hash, likewise


def queue_index(store: Store) -> QueueIndex:
    """Known queues, priorities, paused queues and scheduling settings: one round trip."""
    k = store.keys
    seen, pri, paused, sched, weights = raise_first(store.pipeline([
        command("ZRANGE", k.queues, 0, -1, "WITHSCORES", parse=pairs),
        command("HGETALL", k.priorities, parse=_hash),
        command("SMEMBERS", k.paused),
        command("HGETALL", k.scheduling, parse=_hash),
        command("HGETALL", k.weights, parse=_hash),
    ]))
    priorities: dict[str, float] = {}
    for name, value in pri.items():
        try:
            priorities[text(name)] = float(text(value))
        except ValueError:
            continue  # written by hand or by something else: not a priority
    return QueueIndex({text(q): s for q, s in seen}, priorities,
                      {text(q) for q in paused or ()}, sched, weights)


@dataclass
class QueueCounts:
    """What one queue holds, as read in one pipeline with the others."""

    queue: str
    ready: int
    prio: int
    delayed: int
    leases: int
    dead: int
    stats: dict[str, int] = field(default_factory=dict)
    conf: dict[str, str] = field(default_factory=dict)


def queue_counts(store: Store, names: Sequence[str]) -> tuple[list[QueueCounts], float]:
    """Sizes, counters and settings of each queue, and Redis time: one round trip."""
    steps: list[Step] = []
    for name in names:
        k = store.keys.queue(name)
        steps += [command("LLEN", k.ready, parse=int), command("ZCARD", k.prio, parse=int),
                  command("ZCARD", k.delayed, parse=int), command("ZCARD", k.leases, parse=int),
                  command("ZCARD", k.dead, parse=int), command("HGETALL", k.stats, parse=_hash),
                  command("HGETALL", k.conf, parse=_hash)]
    replies = raise_first(store.pipeline([*steps, command("TIME", parse=_time)]))
    out = []
    for i, name in enumerate(names):
        ready, prio, delayed, leases, dead, stats, conf = replies[7 * i:7 * i + 7]
        # "seq" orders per-message priorities; it counts nothing.
        counters = {text(a): _counter(b) for a, b in stats.items() if text(a) != "seq"}
        out.append(QueueCounts(name, ready, prio, delayed, leases, dead, counters,
                               {text(a): text(b) for a, b in conf.items()}))
    return out, replies[-1]


def periodic_counts(store: Store, names: Sequence[str]) -> list[int]:
    """How many periodic tasks each queue holds: one round trip."""
    steps: list[Step] = [command("ZCARD", store.keys.queue(q).periodic, parse=int) for q in names]
    return list(raise_first(store.pipeline(steps))) if steps else []


def prune_queues(store: Store, names: Sequence[str]) -> list[str]:
    """Drop the given (found empty) queues from the known-queues index and delete
    their leftover keys, then look again: a queue that received work meanwhile
    is put back in the index. Returns the names that stayed removed."""
    if not names:
        return []
    k = store.keys
    steps: list[Step] = []
    for name in names:
        q = k.queue(name)
        steps += [command("ZREM", k.queues, name),
                  command("DEL", q.wake, q.stats, q.uniq, q.conf, q.periodic_def)]
    raise_first(store.pipeline(steps))
    for name in names:
        store.forget_seen(name)
    found, now = queue_counts(store, names)
    # A task queued between the check and the removal must not be stranded
    # outside the index, where workers serving every queue would miss it.
    back = [c.queue for c in found if c.ready or c.prio or c.delayed or c.leases or c.dead]
    if back:
        raise_first(store.pipeline([command("ZADD", k.queues, *[x for q in back
                                                                 for x in (now, q)])]))
    return [n for n in names if n not in back]


# -- schedules -------------------------------------------------------------------------


def schedules(store: Store, queues: Sequence[str]) -> tuple[list[tuple[str, str, float, str | None]],
                                                            float]:
    """(queue, task, next run in ms, description) of every periodic task, and Redis time."""
    steps: list[Step] = []
    for queue in queues:
        k = store.keys.queue(queue)
        steps += [command("ZRANGE", k.periodic, 0, -1, "WITHSCORES", parse=pairs),
                  command("HGETALL", k.periodic_def, parse=_hash)]
    replies = raise_first(store.pipeline([*steps, command("TIME", parse=_time)]))
    out = []
    for i, queue in enumerate(queues):
        planned, defs = replies[2 * i], replies[2 * i + 1]
        described = {text(a): text(b) for a, b in defs.items()}
        out += [(queue, text(name), score, described.get(text(name))) for name, score in planned]
    return out, replies[-1]


# -- dead letters ----------------------------------------------------------------------
# Ids are kept exactly as Redis returned them (bytes, usually): an id that is
# not UTF-8 would no longer match once decoded.


def dead_total(store: Store, queues: Sequence[str]) -> int:
    """How many dead letters the queues hold together."""
    return sum(dead_counts(store, queues))


def dead_counts(store: Store, queues: Sequence[str]) -> list[int]:
    """How many dead letters each queue holds: one round trip."""
    steps: list[Step] = [command("ZCARD", store.keys.queue(q).dead, parse=int) for q in queues]
    return list(raise_first(store.pipeline(steps))) if steps else []


def dead_ids(store: Store, queues: Sequence[str], limit: int = 0) -> list[list[Any]]:
    """The oldest ``limit`` (0: every) raw dead-letter ids of each queue."""
    steps: list[Step] = [command("ZRANGE", store.keys.queue(q).dead, 0, limit - 1)
                         for q in queues]
    return [list(r or []) for r in raise_first(store.pipeline(steps))] if steps else []


def data_counts(store: Store) -> list[tuple[str, int, int, int, int]]:
    """(name, items, delayed, leased, dead) of every data queue (rpqueue.Data),
    sorted by name: two round trips, and read-only (unlike ``Data.count``,
    whose upkeep moves expired leases, a dashboard poll changes nothing)."""
    (names,) = raise_first(store.pipeline([command("SMEMBERS", store.keys.data_queues)]))
    queues = sorted(text(n) for n in names or ())
    steps: list[Step] = []
    for q in queues:
        k = store.keys.data(q)
        steps += [command(verb, key, parse=int) for verb, key in
                  (("HLEN", k.msg), ("ZCARD", k.delayed), ("ZCARD", k.leases), ("ZCARD", k.dead))]
    found = raise_first(store.pipeline(steps)) if steps else []
    return [(q, *found[4 * i:4 * i + 4]) for i, q in enumerate(queues)]


def newest_dead(store: Store, queues: Sequence[str], limit: int) -> list[list[tuple[Any, float]]]:
    """The newest ``limit`` (raw id, unix time it died) of each queue's dead letters."""
    # ZRANGE from the end, reversed here: ZREVRANGE is not in the documented ACL.
    steps: list[Step] = [command("ZRANGE", store.keys.queue(q).dead, -limit, -1,
                                 "WITHSCORES", parse=pairs) for q in queues]
    found = raise_first(store.pipeline(steps)) if steps else []
    return [[(rid, score / 1000) for rid, score in reversed(r)] for r in found]


def dead_messages(store: Store, wanted: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
    """The stored records of the given (queue, raw ids), one list per queue."""
    steps: list[Step] = [command("HMGET", store.keys.queue(q).deadmsg, *ids)
                         for q, ids in wanted if ids]
    replies = iter(raise_first(store.pipeline(steps)) if steps else [])
    return [list(next(replies)) if ids else [] for _, ids in wanted]


def delete_dead(store: Store, targets: Sequence[tuple[str, Any]]) -> list[bool]:
    """Remove the given (queue, raw id) dead letters; for each, whether it existed."""
    steps: list[Step] = []
    for queue, rid in targets:
        k = store.keys.queue(queue)
        steps += [command("ZREM", k.dead, rid, parse=int), command("HDEL", k.deadmsg, rid, parse=int)]
    replies = raise_first(store.pipeline(steps)) if steps else []
    return [bool(replies[i] or replies[i + 1]) for i in range(0, len(replies), 2)]


def requeue_dead(store: Store, targets: Sequence[tuple[str, Any, str]]) -> int:
    """Queue the given (queue, raw id, meta) dead letters again; how many were."""
    steps: list[Step] = []
    for queue, rid, meta in targets:
        k = store.keys.queue(queue)
        steps.append(Call(scripts().requeue_dead,
                          [k.ready, k.msg, k.meta, k.dead, k.deadmsg, k.wake, k.prio, k.stats],
                          [rid, meta], int, f"dead letter {text(rid)} of queue {queue!r}"))
    return sum(raise_first(store.pipeline(steps))) if steps else 0


# -- workers ---------------------------------------------------------------------------


def worker_registry(store: Store) -> tuple[str, Any, float]:
    """(type of the registry key, its hash or the error reading it, Redis time).

    Without raising: a registry key of another type is something the
    dashboard reports, not a failure.
    """
    key = store.keys.workers
    kind, raw, now = store.pipeline([command("TYPE", key, parse=text),
                                     command("HGETALL", key, parse=_hash),
                                     command("TIME", parse=_time)])
    raise_first([kind, now])
    return kind, raw, now


# -- pages, results and flushing (admin.py) ------------------------------------------


def page_counts(store: Store, queue: str) -> tuple[int, int, int]:
    """(urgent, plain, prioritised) waiting tasks: the run-order segments of a page."""
    k = store.keys.queue(queue)
    urgent, plain, prio = raise_first(store.pipeline([
        command("ZCOUNT", k.prio, "-inf", "(0", parse=int), command("LLEN", k.ready, parse=int),
        command("ZCARD", k.prio, parse=int)]))
    return urgent, plain, prio


def page_segment(store: Store, queue: str, part: str, start: int,
                 stop: int) -> list[tuple[Any, float | None]]:
    """Ids (and due times in ms, for "delayed") of one segment of a queue's page."""
    k = store.keys.queue(queue)
    if part == "ready":
        step = command("LRANGE", k.ready, start, stop)
    elif part == "delayed":
        step = command("ZRANGE", k.delayed, start, stop, "WITHSCORES", parse=pairs)
    else:
        step = command("ZRANGE", k.prio, start, stop)
    (reply,) = raise_first(store.pipeline([step]))
    return list(reply) if part == "delayed" else [(i, None) for i in reply]


def messages(store: Store, queue: str, ids: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(stored messages, metas) of the given ids."""
    k = store.keys.queue(queue)
    raws, metas = raise_first(store.pipeline([command("HMGET", k.msg, *ids),
                                              command("HMGET", k.meta, *ids)]))
    return list(raws), list(metas)


def saved_results(store: Store, wanted: Sequence[tuple[str, str]]) -> list[Any]:
    """The saved result (or None) of each (queue, task id)."""
    steps: list[Step] = [command("GET", store.keys.queue(q).result(t)) for q, t in wanted]
    return raise_first(store.pipeline(steps)) if steps else []


def queued_ids(store: Store, queue: str) -> dict[str, list[Any]]:
    """Every id of a queue by where it is: prio, ready, delayed, leases, periodic."""
    k = store.keys.queue(queue)
    parts = {"prio": k.prio, "ready": k.ready, "delayed": k.delayed, "leases": k.leases,
             "periodic": k.periodic}
    steps: list[Step] = [command("LRANGE" if part == "ready" else "ZRANGE", key, 0, -1)
                         for part, key in parts.items()]
    return dict(zip(parts, (list(r) for r in raise_first(store.pipeline(steps)))))


def make_due(store: Store, queue: str, delayed: Sequence[Any], periodic: Sequence[Any]) -> None:
    """Make delayed tasks due at once and periodic ones due now, then wake a worker."""
    k = store.keys.queue(queue)
    now_ms = round(store.redis_time() * 1000)
    steps: list[Step] = []
    if delayed:
        steps.append(command("ZADD", k.delayed, "XX", *[x for i in delayed for x in (0, i)]))
    if periodic:
        steps.append(command("ZADD", k.periodic, "XX",
                             *[x for i in periodic for x in (now_ms, i)]))
    steps += [command("RPUSH", k.wake, "1"), command("LTRIM", k.wake, 0, 0)]
    raise_first(store.pipeline(steps))


def forget_queue(store: Store, queue: str) -> None:
    """Delete a queue's remaining keys and drop it from the queue-wide indexes."""
    k = store.keys.queue(queue)
    raise_first(store.pipeline([
        command("DEL", k.wake, k.stats, k.periodic, k.dead, k.deadmsg, k.conf, k.uniq),
        command("ZREM", store.keys.queues, queue), command("HDEL", store.keys.priorities, queue)]))
    store.forget_seen(queue)


def forget_data_queue(store: Store, queue: str) -> None:
    """Drop a data queue from the data-queue index."""
    raise_first(store.pipeline([command("SREM", store.keys.data_queues, queue)]))
