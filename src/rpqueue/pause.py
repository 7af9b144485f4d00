"""Pausing a queue: workers stop taking its tasks, producers may still queue them.

The paused queues are one global SET, ``<prefix>paused``. Workers read it at
most once a second (``worker.loop.QueueList``) and leave paused queues out of
the queues they take from and wait on, so a pause or a resume takes effect
within about a second. Tasks already running when a queue is paused finish
normally; delayed tasks of a paused queue wait, and run once it is resumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .broker import text
from .keys import normalize_queue

if TYPE_CHECKING:
    from .app import RPQueue


def pause_queue(app: RPQueue, queue: str | bytes) -> bool:
    """Stop workers taking tasks from ``queue``; False if it was already paused."""
    name = normalize_queue(queue)
    return bool(app.client.sadd(app.keys.paused, name))


def resume_queue(app: RPQueue, queue: str | bytes) -> bool:
    """Let workers take from ``queue`` again; False if it was not paused."""
    name = normalize_queue(queue)
    removed = bool(app.client.srem(app.keys.paused, name))
    if removed:
        # Wake an idle worker serving every queue: it re-reads its queue list
        # (paused set included) now rather than at its next refresh.
        app.client.rpush(app.keys.queues_wake, "1")
        app.client.ltrim(app.keys.queues_wake, -1, -1)
    return removed


def paused_queues(app: RPQueue) -> list[str]:
    """The names of the paused queues, sorted."""
    return sorted(text(q) for q in app.client.smembers(app.keys.paused))


def is_paused(app: RPQueue, queue: str | bytes) -> bool:
    return bool(app.client.sismember(app.keys.paused, normalize_queue(queue)))
