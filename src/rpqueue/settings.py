"""Queue settings, all in one place: priority, weight, scheduling mode,
length limit, and pause.

Each setting lives in Redis so that every worker and producer agrees on it;
changes that alter the order workers serve queues in bump the queues
version, which busy workers watch.
"""

from __future__ import annotations

from typing import Any

from .context import Context
from .storage.keys import normalize_queue
from .storage.wire import text
from .worker.scheduling import check_mode, check_weight, parse_settings

OVERFLOW_POLICIES = ("refuse", "drop_oldest")


# -- priority ------------------------------------------------------------------------

def set_priority(ctx: Context, queue: str | bytes, qpri: float) -> None:
    name = normalize_queue(queue)
    ctx.client.hset(ctx.keys.priorities, name, qpri)
    ctx.client.incr(ctx.keys.queues_version)
    ctx.note_queue(name)


# -- scheduling mode and weights ------------------------------------------------------

def set_scheduling(ctx: Context, mode: str, age: float | None = None) -> None:
    mode, age = check_mode(mode, age)
    pipe = ctx.client.pipeline(transaction=False)
    if age is None:
        pipe.hset(ctx.keys.scheduling, "mode", mode)
        pipe.hdel(ctx.keys.scheduling, "age")
    else:
        pipe.hset(ctx.keys.scheduling, mapping={"mode": mode, "age": repr(age)})
    pipe.incr(ctx.keys.queues_version)
    pipe.execute()


def get_scheduling(ctx: Context) -> dict[str, Any]:
    settings = parse_settings(ctx.client.hgetall(ctx.keys.scheduling), {})
    return {"mode": settings.mode, "age": settings.age}


def set_queue_weight(ctx: Context, queue: str | bytes, weight: float) -> None:
    name = normalize_queue(queue)
    value = check_weight(weight)
    ctx.client.hset(ctx.keys.weights, name, repr(value))
    ctx.client.incr(ctx.keys.queues_version)
    ctx.note_queue(name)


def queue_weights(ctx: Context) -> dict[str, float]:
    return dict(parse_settings({}, ctx.client.hgetall(ctx.keys.weights)).weights)


# -- length limit ----------------------------------------------------------------------

def parse_limit(conf: dict[Any, Any]) -> dict[str, Any] | None:
    fields = {text(a): text(b) for a, b in conf.items()}
    try:
        max_len = int(fields.get("max_len", 0))
    except ValueError:
        return None
    if max_len <= 0:
        return None
    return {"max_len": max_len, "overflow": fields.get("overflow", "refuse")}


def set_queue_limit(ctx: Context, queue: str | bytes, max_len: int | None,
                    overflow: str = "refuse") -> None:
    name = normalize_queue(queue)
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, "
                         f"got {overflow!r}")
    k = ctx.keys.queue(name)
    if max_len is None or max_len == 0:
        ctx.client.delete(k.conf)
        return
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
        raise ValueError(f"max_len must be a whole number >= 0 (or None), got {max_len!r}")
    ctx.client.hset(k.conf, mapping={"max_len": max_len, "overflow": overflow})
    ctx.note_queue(name)


def queue_limit(ctx: Context, queue: str | bytes) -> dict[str, Any] | None:
    return parse_limit(ctx.client.hgetall(ctx.keys.queue(normalize_queue(queue)).conf))


# -- pause -------------------------------------------------------------------------------
# The paused queues are one global SET, ``<prefix>paused``. Workers read it at
# most once a second and leave paused queues out of the queues they take from
# and wait on. Tasks already running finish normally; delayed tasks of a
# paused queue wait, and run once it is resumed.

def pause_queue(ctx: Context, queue: str | bytes) -> bool:
    name = normalize_queue(queue)
    return bool(ctx.client.sadd(ctx.keys.paused, name))


def resume_queue(ctx: Context, queue: str | bytes) -> bool:
    name = normalize_queue(queue)
    removed = bool(ctx.client.srem(ctx.keys.paused, name))
    if removed:
        # Wake an idle worker serving every queue: it re-reads its queue list
        # (paused set included) now rather than at its next refresh.
        ctx.client.rpush(ctx.keys.queues_wake, "1")
        ctx.client.ltrim(ctx.keys.queues_wake, -1, -1)
    return removed


def paused_queues(ctx: Context) -> list[str]:
    return sorted(text(q) for q in ctx.client.smembers(ctx.keys.paused))


def is_paused(ctx: Context, queue: str | bytes) -> bool:
    return bool(ctx.client.sismember(ctx.keys.paused, normalize_queue(queue)))
