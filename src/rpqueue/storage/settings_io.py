"""Where the queue settings live in Redis: reads and writes for ``rpqueue.settings``.

``settings.py`` checks values and decides; these functions only move them.
Changes that alter the order workers serve queues in bump the queues
version in the same round trip, so busy workers see them before their next task.
"""

from __future__ import annotations

from typing import Any

from .executor import Step, command, raise_first
from .store import Store
from .wire import text

# INCRBY, not INCR: the documented ACL line (docs/SECURITY.md) grants only
# INCRBY, which is what redis-py's incr() sends.


def _run(store: Store, *steps: Step) -> list[Any]:
    return raise_first(store.pipeline(list(steps)))


def set_priority(store: Store, queue: str, qpri: float) -> None:
    k = store.keys
    _run(store, command("HSET", k.priorities, queue, qpri), command("INCRBY", k.queues_version, 1))


def set_scheduling(store: Store, mode: str, age: float | None) -> None:
    k = store.keys
    if age is None:
        steps: list[Step] = [command("HSET", k.scheduling, "mode", mode),
                             command("HDEL", k.scheduling, "age")]
    else:
        steps = [command("HSET", k.scheduling, "mode", mode, "age", repr(age))]
    _run(store, *steps, command("INCRBY", k.queues_version, 1))


def scheduling(store: Store) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """The raw scheduling and weights hashes (see worker.scheduling.parse_settings)."""
    sched, weights = _run(store, command("HGETALL", store.keys.scheduling),
                          command("HGETALL", store.keys.weights))
    return dict(sched or {}), dict(weights or {})


def set_weight(store: Store, queue: str, weight: float) -> None:
    k = store.keys
    _run(store, command("HSET", k.weights, queue, repr(weight)), command("INCRBY", k.queues_version, 1))


def set_limit(store: Store, queue: str, max_len: int, overflow: str) -> None:
    _run(store, command("HSET", store.keys.queue(queue).conf, "max_len", max_len,
                        "overflow", overflow))


def drop_limit(store: Store, queue: str) -> None:
    _run(store, command("DEL", store.keys.queue(queue).conf))


def limit(store: Store, queue: str) -> dict[Any, Any]:
    """The raw length-limit hash of a queue."""
    (conf,) = _run(store, command("HGETALL", store.keys.queue(queue).conf))
    return dict(conf or {})


def pause(store: Store, queue: str) -> bool:
    (added,) = _run(store, command("SADD", store.keys.paused, queue, parse=int))
    return bool(added)


def resume(store: Store, queue: str) -> bool:
    k = store.keys
    (removed,) = _run(store, command("SREM", k.paused, queue, parse=int))
    if removed:
        # Wake an idle worker serving every queue: it re-reads its queue list
        # (paused set included) now rather than at its next refresh.
        _run(store, command("RPUSH", k.queues_wake, "1"), command("LTRIM", k.queues_wake, -1, -1))
    return bool(removed)


def paused(store: Store) -> list[str]:
    (members,) = _run(store, command("SMEMBERS", store.keys.paused))
    return sorted(text(q) for q in members or ())


def is_paused(store: Store, queue: str) -> bool:
    (member,) = _run(store, command("SISMEMBER", store.keys.paused, queue, parse=int))
    return bool(member)
