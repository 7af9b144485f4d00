"""What the dashboard shows and changes, read from Redis with no HTTP in sight.

Every function takes the RPQueue and returns plain JSON-ready values, so the
JSON API is a thin layer over this module and tests can call it directly.
Reads are pipelined: a view costs a fixed few round trips however many queues exist.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from .. import admin
from ..registry import STALE
from ..settings import parse_limit
from ..storage.message import MalformedMessage, decode
from ..storage.wire import text
from ..worker.scheduling import read_settings

if TYPE_CHECKING:
    from ..app import RPQueue

# Counters in a queue's stats hash whose sum is "tasks finished", success or not.
PROCESSED_COUNTERS = ("done", "failed")
# Dead letters are read and changed in chunks so that "all" on a queue with a
# huge dead-letter set never builds one enormous reply or pipeline.
CHUNK = 500


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


def _int(value: Any) -> int:
    try:
        return int(text(value))
    except ValueError:
        return 0


def queue_overview(rpq: RPQueue, sampler: RateSampler | None = None) -> dict[str, Any]:
    """Every known queue with its sizes, counters, priority and rate history."""
    client = rpq.client
    seen = {text(q): float(s) for q, s in client.zrange(rpq.keys.queues, 0, -1, withscores=True)}
    priorities = rpq.priorities()
    # The order a worker serving all queues uses: prioritised queues first.
    names = sorted(set(seen) | set(priorities),
                   key=lambda q: (q not in priorities, priorities.get(q, 0.0), q))
    pipe = client.pipeline(transaction=False)
    for name in names:
        k = rpq.keys.queue(name)
        pipe.llen(k.ready)
        pipe.zcard(k.delayed)
        pipe.zcard(k.leases)
        pipe.zcard(k.dead)
        pipe.hgetall(k.stats)
        pipe.zcard(k.prio)
        pipe.hgetall(k.conf)
    replies = pipe.execute() if names else []
    now = rpq.redis_time()
    rows: list[dict[str, Any]] = []
    counts: dict[str, tuple[int, int]] = {}
    for i, name in enumerate(names):
        waiting, delayed, running, dead, raw_stats, prio, conf = replies[7 * i:7 * i + 7]
        waiting = int(waiting) + int(prio)
        raw_stats.pop(b"seq", None)
        raw_stats.pop("seq", None)
        stats = {text(a): _int(b) for a, b in raw_stats.items()}
        counts[name] = (sum(stats.get(c, 0) for c in PROCESSED_COUNTERS), stats.get("enqueued", 0))
        rows.append({"name": name, "waiting": int(waiting), "delayed": int(delayed),
                     "running": int(running), "dead": int(dead), "seen": seen.get(name),
                     "priority": priorities.get(name), "stats": stats,
                     "limit": parse_limit(conf)})
    # Anti-starvation settings as workers read them (worker/scheduling.py).
    scheduling = read_settings(rpq.ctx)
    for row in rows:
        row["weight"] = scheduling.weight(row["name"])
    if sampler is not None:
        sampler.observe(counts)
        for row in rows:
            row["rate"], row["rate_enqueued"] = sampler.rates(row["name"])
    return {"now": now, "queues": rows,
            "scheduling": {"mode": scheduling.mode, "age": scheduling.age}}


def queue_items(rpq: RPQueue, queue: str, page: int, per_page: int) -> dict[str, Any]:
    """One page of a queue's pending tasks: waiting ones in run order, then delayed ones."""
    k = rpq.keys.queue(queue)
    pipe = rpq.client.pipeline(transaction=False)
    pipe.llen(k.ready)
    pipe.zcard(k.delayed)
    pipe.zcard(k.leases)
    pipe.zcard(k.prio)
    waiting, delayed, running, prio = pipe.execute()
    waiting = int(waiting) + int(prio)
    items = admin.get_page(rpq.ctx, queue, page, per_page)
    return {"now": rpq.redis_time(), "queue": queue, "page": page,
            "per_page": per_page, "total": int(waiting) + int(delayed), "waiting": int(waiting),
            "delayed": int(delayed), "running": int(running), "items": items}


def _public_dead(record: Mapping[str, Any]) -> dict[str, Any]:
    # The raw message repeats name and arguments as one JSON string; the page
    # has no use for it and it would double the size of every reply.
    return {key: record.get(key) for key in
            ("id", "queue", "name", "args", "kwargs", "reason", "error", "attempts_used", "time")}


def dead_letters(rpq: RPQueue, queue: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The oldest ``limit`` dead letters (of one queue, or of all) and how many exist."""
    queues = [queue] if queue is not None else rpq.known_queues()
    pipe = rpq.client.pipeline(transaction=False)
    for name in queues:
        pipe.zcard(rpq.keys.queue(name).dead)
    total = sum(int(n) for n in pipe.execute()) if queues else 0
    records = admin.dead_records(rpq.ctx, queues, limit) if total else []
    return {"total": total, "items": [_public_dead(r) for r in records]}


def schedule(rpq: RPQueue) -> dict[str, Any]:
    """Periodic and cron tasks with their schedule and next planned run, soonest first."""
    queues = rpq.known_queues()
    pipe = rpq.client.pipeline(transaction=False)
    for queue in queues:
        k = rpq.keys.queue(queue)
        pipe.zrange(k.periodic, 0, -1, withscores=True)
        pipe.hgetall(k.periodic_def)
    replies = pipe.execute() if queues else []
    items: list[dict[str, Any]] = []
    for i, queue in enumerate(queues):
        planned, defs = replies[2 * i], replies[2 * i + 1]
        described = {text(a): text(b) for a, b in defs.items()}
        for name, score in planned:
            task = text(name)
            items.append({"name": task, "queue": queue, "schedule": described.get(task),
                          "next_run": float(score) / 1000})
    items.sort(key=lambda item: (item["next_run"], item["name"]))
    return {"now": rpq.redis_time(), "items": items}


NO_REGISTRY = "worker registry not available"


def workers(rpq: RPQueue) -> dict[str, Any]:
    """Live workers from the registry hash ``<prefix>workers`` (rpqueue.registry).

    Each worker process keeps one field (its id) holding a JSON object and
    rewrites it every few seconds with a fresh ``beat`` (Redis time).
    Entries that stopped beating more than STALE seconds ago belong to
    workers that died without saying so; they are counted, not shown. Unlike
    ``rpqueue workers`` this never prunes them: a page refresh must not write.
    Values that are not JSON objects are shown raw, so a registry written by
    something else (another client library) still shows up.
    """
    key = rpq.keys.workers
    pipe = rpq.client.pipeline(transaction=False)
    pipe.type(key)
    pipe.hgetall(key)
    # Without raising: HGETALL on a key of another type is a registry this
    # dashboard cannot read, which the page reports rather than failing on.
    kind, raw = pipe.execute(raise_on_error=False)
    now = rpq.redis_time()
    kind = text(kind)
    if kind == "none":
        return {"available": False, "reason": NO_REGISTRY, "key": key, "workers": [],
                "stale": 0, "now": now}
    if kind != "hash" or not isinstance(raw, dict):
        return {"available": False, "reason": f"{NO_REGISTRY}: {key} is a {kind}, not a hash",
                "key": key, "workers": [], "stale": 0, "now": now}
    found: list[dict[str, Any]] = []
    stale = 0
    for field, value in raw.items():
        try:
            record = json.loads(value)
        except ValueError:
            record = None
        entry: dict[str, Any] = dict(record) if isinstance(record, dict) else {"info": text(value)}
        entry["id"] = text(field)
        beat = entry.get("beat")
        if isinstance(beat, (int, float)) and not isinstance(beat, bool) and now - beat > STALE:
            stale += 1
            continue
        found.append(entry)
    found.sort(key=lambda w: str(w["id"]))
    return {"available": True, "key": key, "workers": found, "stale": stale, "now": now}


# -- dead-letter actions -------------------------------------------------------------

DeadAction = Literal["requeue", "delete"]


def _task_name(raw_record: Any) -> tuple[bool, str | None]:
    """(record has a message to requeue, task name) of a stored dead-letter record."""
    try:
        record = json.loads(raw_record)
    except ValueError:
        return False, None
    message = record.get("message") if isinstance(record, dict) else None
    if not isinstance(message, str):
        return False, None
    try:
        return True, decode(message).name
    except MalformedMessage:
        # Still requeueable: the worker will dead-letter it again with the reason.
        return True, None


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def dead_action(rpq: RPQueue, action: DeadAction, targets: Iterable[tuple[str, str]] | None = None,
                queue: str | None = None) -> dict[str, int]:
    """Requeue or delete dead letters: the given (queue, id) pairs, or with no
    targets every dead letter (of ``queue``, or of every known queue).

    Returns how many were acted on, and how many could not be requeued
    (records without a message, which only deleting can clear).
    """
    by_queue: dict[str, list[str]] = {}
    if targets is not None:
        for q, taskid in targets:
            by_queue.setdefault(q, []).append(taskid)
    else:
        for q in [queue] if queue is not None else rpq.known_queues():
            # Snapshot the ids first: a requeued task that dies again at once
            # must not be picked up a second time by this same request.
            ids = [text(i) for i in rpq.client.zrange(rpq.keys.queue(q).dead, 0, -1)]
            if ids:
                by_queue[q] = ids
    done = skipped = 0
    for q, ids in by_queue.items():
        k = rpq.keys.queue(q)
        for chunk in _chunks(ids):
            if action == "delete":
                pipe = rpq.client.pipeline(transaction=False)
                for taskid in chunk:
                    pipe.zrem(k.dead, taskid)
                    pipe.hdel(k.deadmsg, taskid)
                replies = pipe.execute()
                done += sum(1 for i in range(0, len(replies), 2) if replies[i] or replies[i + 1])
                continue
            records: list[dict[str, Any]] = []
            for taskid, raw in zip(chunk, rpq.client.hmget(k.deadmsg, list(chunk))):
                if raw is None:
                    continue
                requeueable, name = _task_name(raw)
                if not requeueable:
                    skipped += 1
                    continue
                records.append({"queue": q, "id": taskid, "name": name})
            done += admin.requeue_dead(rpq.ctx, records)
    key = "requeued" if action == "requeue" else "deleted"
    return {key: done, "skipped": skipped}
