"""Per-queue throughput history in Redis: one small string per queue per minute.

Workers already keep monotonic per-queue counters (the ``stats`` hash:
``done``, ``failed``, ``retried``, ``dead``, ``enqueued``, written by the
Lua scripts in the same step that changes a task). History records, per
minute, the last reading of those totals and the queue's depth:

    <prefix>q:{<queue>}:stats:m:<unix minute>   STRING, with an expiry
        "<done> <failed> <retried> <dead> <enqueued> <depth> <t>"
        the counter totals at the minute's last sample, the tasks waiting
        or delayed then, and the Redis time of that sample (ms)

so a minute's throughput is the difference between its totals and those of
the minute before. Recording totals rather than adding deltas makes the
writes idempotent: any number of workers may sample the same queue, and a
worker that dies between two samples loses nothing. The keys share the
queue's hash tag (one cluster slot per queue) and expire after
``RETENTION`` seconds, so the history is bounded whatever happens. A string
written with ``SET ... EX`` (rather than a hash and EXPIRE) is one command
per queue and needs nothing beyond the documented ACL (docs/SECURITY.md).

A sample costs two pipelined round trips for all the queues sampled (read
the counters and depths, then one SET per queue); workers
take one from their heartbeat thread at most every ``SAMPLE_EVERY`` seconds,
never per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .executor import Step, command
from .store import Store
from .wire import text

# Counters of the stats hash that history keeps (see the module docstring).
COUNTERS = ("done", "failed", "retried", "dead", "enqueued")
# The fields of a stored minute, in order.
FIELDS = (*COUNTERS, "depth", "t")
# Kept a day, plus an hour so the oldest minute of a day's chart has the
# minute before it to subtract from.
RETENTION = 25 * 3600
# Two samples a minute: every minute of the history gets one, at a cost a
# busy worker never notices and an idle one barely shows.
SAMPLE_EVERY = 30.0


def minute_key(store: Store, queue: str, minute: int) -> str:
    """The history key of ``queue`` for the minute starting at ``minute * 60``."""
    return f"{store.keys.queue(queue).stats}:m:{minute}"


def _int(value: Any) -> int:
    try:
        return int(text(value))
    except (TypeError, ValueError):
        return 0


def sample(store: Store, queues: Sequence[str]) -> int:
    """Record the counters and depth of ``queues`` in this minute's history
    (two round trips); returns how many queues were recorded. A queue
    whose keys cannot be read (wrong type, written by something else) is
    skipped, so one odd key never stops the others' history."""
    names = list(dict.fromkeys(queues))
    if not names:
        return 0
    steps: list[Step] = [command("TIME")]
    for name in names:
        k = store.keys.queue(name)
        steps += [command("HMGET", k.stats, *COUNTERS), command("LLEN", k.ready),
                  command("ZCARD", k.prio), command("ZCARD", k.delayed)]
    replies = store.pipeline(steps)
    now = replies[0]
    if isinstance(now, Exception):
        raise now
    now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
    minute = now_ms // 60_000
    writes: list[Step] = []
    for i, name in enumerate(names):
        counters, ready, prio, delayed = replies[1 + 4 * i:5 + 4 * i]
        if any(isinstance(r, Exception) for r in (counters, ready, prio, delayed)):
            continue
        values = [_int(v) for v in counters] + [int(ready) + int(prio) + int(delayed), now_ms]
        writes.append(command("SET", minute_key(store, name, minute),
                              " ".join(map(str, values)), "EX", RETENTION))
    if writes:
        store.pipeline(writes)
    return len(writes)


def encode(values: dict[str, int]) -> str:
    """A stored minute from its fields (missing ones are 0): the format above."""
    return " ".join(str(int(values.get(f, 0))) for f in FIELDS)


def decode(raw: Any) -> dict[str, int] | None:
    """The fields of a stored minute, or None when it is not one."""
    parts = text(raw).split(" ")
    if len(parts) != len(FIELDS):
        return None
    try:
        return dict(zip(FIELDS, map(int, parts)))
    except ValueError:
        return None


def read(store: Store, queue: str, first_minute: int, last_minute: int
         ) -> list[dict[str, int] | None]:
    """The stored minutes of ``queue`` from ``first_minute`` to ``last_minute``
    (unix minutes, both included), None for a minute with no sample (or one
    that is not readable): one round trip."""
    steps: list[Step] = [command("GET", minute_key(store, queue, m))
                         for m in range(first_minute, last_minute + 1)]
    return [None if isinstance(reply, Exception) or reply is None else decode(reply)
            for reply in (store.pipeline(steps) if steps else [])]


def redis_minute(store: Store) -> tuple[float, int]:
    """Redis time (unix seconds) and the unix minute it falls in."""
    now = store.redis_time()
    return now, int(now // 60)
