"""Queue settings, all in one place: priority, weight, scheduling mode,
length limit, and pause.

Each setting lives in Redis so that every worker and producer agrees on it;
changes that alter the order workers serve queues in bump the queues
version, which busy workers watch. The values are checked here; moving
them to and from Redis is ``storage.settings_io``'s job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .context import Context
from .storage import settings_io as io
from .storage.keys import normalize_queue
from .storage.wire import text
from .worker.scheduling import check_mode, check_weight, parse_settings

OVERFLOW_POLICIES = ("refuse", "drop_oldest")


# -- priority ------------------------------------------------------------------------

def set_priority(ctx: Context, queue: str | bytes, qpri: float) -> None:
    """Set a queue's priority (lower values are served first)."""
    name = normalize_queue(queue)
    io.set_priority(ctx.store, name, qpri)
    ctx.store.note_queue(name)


# -- scheduling mode and weights ------------------------------------------------------

def set_scheduling(ctx: Context, mode: str, age: float | None = None) -> None:
    """Set how workers share out their queues (see worker.scheduling)."""
    mode, age = check_mode(mode, age)
    io.set_scheduling(ctx.store, mode, age)


def get_scheduling(ctx: Context) -> dict[str, Any]:
    """``{"mode": ..., "age": seconds or None}``, as workers read it."""
    settings = parse_settings(io.scheduling(ctx.store)[0], {})
    return {"mode": settings.mode, "age": settings.age}


def set_queue_weight(ctx: Context, queue: str | bytes, weight: float) -> None:
    """Set a queue's share in the weighted mode."""
    name = normalize_queue(queue)
    io.set_weight(ctx.store, name, check_weight(weight))
    ctx.store.note_queue(name)


def queue_weights(ctx: Context) -> dict[str, float]:
    """The weights set (queues not listed weigh 1)."""
    return dict(parse_settings({}, io.scheduling(ctx.store)[1]).weights)


# -- length limit ----------------------------------------------------------------------

def parse_limit(conf: Mapping[Any, Any]) -> dict[str, Any] | None:
    """``{'max_len': n, 'overflow': policy}`` from a queue's conf hash, or None if unbounded."""
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
    """Bound a queue's length (None or 0 unbounds it)."""
    name = normalize_queue(queue)
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_POLICIES)}, "
                         f"got {overflow!r}")
    if max_len is None or max_len == 0:
        io.drop_limit(ctx.store, name)
        return
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 0:
        raise ValueError(f"max_len must be a whole number >= 0 (or None), got {max_len!r}")
    io.set_limit(ctx.store, name, max_len, overflow)
    ctx.store.note_queue(name)


def queue_limit(ctx: Context, queue: str | bytes) -> dict[str, Any] | None:
    """The length limit of a queue, or None if unbounded."""
    return parse_limit(io.limit(ctx.store, normalize_queue(queue)))


# -- pause -------------------------------------------------------------------------------
# The paused queues are one global SET, ``<prefix>paused``. Workers read it at
# most once a second and leave paused queues out of the queues they take from
# and wait on. Tasks already running finish normally; delayed tasks of a
# paused queue wait, and run once it is resumed.

def pause_queue(ctx: Context, queue: str | bytes) -> bool:
    """Pause a queue; False if it was already paused."""
    return io.pause(ctx.store, normalize_queue(queue))


def resume_queue(ctx: Context, queue: str | bytes) -> bool:
    """Resume a queue; False if it was not paused."""
    return io.resume(ctx.store, normalize_queue(queue))


def paused_queues(ctx: Context) -> list[str]:
    """The names of the paused queues, sorted."""
    return io.paused(ctx.store)


def is_paused(ctx: Context, queue: str | bytes) -> bool:
    """True if ``queue`` is paused."""
    return io.is_paused(ctx.store, normalize_queue(queue))
