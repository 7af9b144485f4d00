"""Throughput history per queue per minute, from what workers record
(storage/history_io.py): tasks processed, failed, retried, dead-lettered
and enqueued in each minute, the queue's depth, and smoothed current rates.
"""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..storage import history_io
from ..storage.keys import normalize_queue

MAX_MINUTES = 24 * 60
# The current rate averages this many recent minutes: one minute alone
# swings with every burst of work.
SMOOTH_MINUTES = 5
FIELDS = ("processed", "failed", "retried", "dead", "enqueued")


def _point(minute: int, cur: dict[str, int] | None,
           prev: dict[str, int] | None) -> dict[str, Any]:
    point: dict[str, Any] = {"t": minute * 60}
    if cur is None:
        # No worker sampled this queue in that minute: nothing is known.
        return dict(point, depth=None, **{f: None for f in FIELDS})
    point["depth"] = cur.get("depth", 0)
    if prev is None:
        return dict(point, **{f: None for f in FIELDS})

    def delta(name: str) -> int:
        # A queue deleted and made again restarts its counters at zero: a
        # drop reads as no work, never as negative work.
        return max(0, cur.get(name, 0) - prev.get(name, 0))
    # "failed" counts every attempt that raised, retried or not; "processed"
    # is tasks finished, as the queue table counts it (done + failed).
    point.update(processed=delta("done") + delta("failed"), failed=delta("failed"),
                 retried=delta("retried"), dead=delta("dead"), enqueued=delta("enqueued"))
    return point


def history(ctx: Context, queue: str | bytes, minutes: int = 60) -> dict[str, Any]:
    """The last ``minutes`` whole or current minutes of ``queue``, oldest first.

    Each point: ``t`` (unix time the minute starts), ``processed``, ``failed``,
    ``retried``, ``dead``, ``enqueued`` (tasks in that minute) and ``depth``
    (tasks waiting or delayed at the minute's last sample); None when no
    worker sampled the queue then (or the minute before, for the counts).
    ``rate``: tasks processed per second over the last SMOOTH_MINUTES
    minutes with counts (None when there are none); ``failure_rate`` likewise.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be an integer from 1 to {MAX_MINUTES}, got {minutes!r}")
    name = normalize_queue(queue)
    now, current = history_io.redis_minute(ctx.store)
    first = current - minutes + 1
    # One minute more than shown: the first point's counts need the one before.
    raw = history_io.read(ctx.store, name, first - 1, current)
    points = [_point(first + i, raw[i + 1], raw[i]) for i in range(minutes)]
    return {"queue": name, "now": now, "minutes": minutes, "points": points,
            **_rates(points, raw)}


def _rates(points: list[dict[str, Any]], raw: list[dict[str, int] | None]) -> dict[str, float | None]:
    """Smoothed rates over the newest SMOOTH_MINUTES minutes that have counts.

    Each minute's counts span from the sample of the minute before to its
    own (``t`` fields), so they are divided by that time, not by 60: the
    current minute counts as far as it has gone.
    """
    spans = [(p, raw[i + 1], raw[i]) for i, p in enumerate(points) if p["processed"] is not None]
    seconds = 0.0
    processed = failed = 0
    for p, cur, prev in spans[-SMOOTH_MINUTES:]:
        assert cur is not None and prev is not None
        seconds += max(1.0, (cur.get("t", 0) - prev.get("t", 0)) / 1000)
        processed += p["processed"]
        failed += p["failed"]
    if not seconds:
        return {"rate": None, "failure_rate": None}
    return {"rate": round(processed / seconds, 3), "failure_rate": round(failed / seconds, 3)}
