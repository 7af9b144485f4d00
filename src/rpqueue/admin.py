"""Inspection and management: queue sizes, pages, dead letters, results, flush."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .settings import parse_limit
from .storage.keys import normalize_queue
from .storage.message import MalformedMessage, decode, decode_result
from .storage.wire import text, unstamp
from .task import EnqueuedTask, TaskRef

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger("rpqueue")


def queue_sizes(app: Context) -> list[tuple[str, int, float]]:
    """Rows of (queue, tasks waiting or delayed, unix time the queue was last seen)."""
    seen = [(text(q), float(s)) for q, s in app.client.zrange(app.keys.queues, 0, -1,
                                                                withscores=True)]
    pipe = app.client.pipeline(transaction=False)
    for queue, _ in seen:
        k = app.keys.queue(queue)
        pipe.llen(k.ready)
        pipe.zcard(k.prio)
        pipe.zcard(k.delayed)
    sizes = pipe.execute() if seen else []
    return [(q, sum(int(n) for n in sizes[3 * i:3 * i + 3]), s) for i, (q, s) in enumerate(seen)]


def queue_info(app: Context, queue: str | bytes) -> dict[str, Any]:
    name = normalize_queue(queue)
    k = app.keys.queue(name)
    pipe = app.client.pipeline(transaction=False)
    pipe.llen(k.ready)
    pipe.zcard(k.prio)
    pipe.zcard(k.delayed)
    pipe.zcard(k.leases)
    pipe.zcard(k.dead)
    pipe.hgetall(k.stats)
    pipe.hgetall(k.conf)
    waiting, prio, delayed, running, dead, stats, conf = pipe.execute()
    return {"queue": name, "waiting": int(waiting) + int(prio), "delayed": int(delayed),
            "running": int(running), "dead": int(dead),
            "stats": {text(a): int(b) for a, b in stats.items() if text(a) != "seq"},
            "limit": parse_limit(conf)}


def clear_queue(app: Context, queue: str | bytes, delete: bool = False,
                is_data: bool = False) -> int:
    """Remove every waiting and delayed task (running ones finish); returns how many."""
    name = normalize_queue(queue)
    if is_data:
        from .data import Data

        removed = int(Data(name, app=app).delete_all())
        if delete:
            app.client.srem(app.keys.data_queues, name)
        return removed
    removed = _clear_all(app, name)
    if delete:
        k = app.keys.queue(name)
        app.client.delete(k.wake, k.stats, k.periodic, k.dead, k.deadmsg, k.conf, k.uniq)
        app.client.zrem(app.keys.queues, name)
        app.client.hdel(app.keys.priorities, name)
        app.store.forget_seen(name)
    return removed


def _clear_all(app: Context, name: str) -> int:
    """Remove waiting and delayed tasks, a batch per script call."""
    removed = 0
    while True:
        call = app.store.calls.clear(name, CLEAR_BATCH)
        n = int(app.store.run(call))
        removed += n
        if n < CLEAR_BATCH:
            return removed


CLEAR_BATCH = 1000


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _describe(taskid: str, raw: Any, status: str, due: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": taskid, "status": status}
    if due is not None:
        item["due"] = due
    if raw is None:
        return item
    try:
        m = decode(raw)
    except MalformedMessage as exc:
        item["error"] = str(exc)
        return item
    item.update(name=m.name, args=m.args, kwargs=m.kwargs)
    return item


def get_page(app: Context, queue: str | bytes, page: int, per_page: int = 50) -> list[dict[str, Any]]:
    """Page ``page`` (from 0) of a queue: waiting tasks in run order, then delayed ones by due time."""
    if page < 0 or per_page < 1:
        raise ValueError(f"page must be >= 0 and per_page >= 1, got {page}, {per_page}")
    k = app.keys.queue(normalize_queue(queue))
    # Run order: negative per-message priorities, the default line, positive ones.
    pipe = app.client.pipeline(transaction=False)
    pipe.zcount(k.prio, "-inf", "(0")
    pipe.llen(k.ready)
    pipe.zcard(k.prio)
    urgent, plain, prio = (int(n) for n in pipe.execute())
    segments: list[tuple[int, Callable[[int, int], list[tuple[str, str, float | None]]]]] = [
        (urgent, lambda a, b: [(text(i), "waiting", None)
                               for i in app.client.zrange(k.prio, a, b)]),
        (plain, lambda a, b: [(text(i), "waiting", None)
                              for i in app.client.lrange(k.ready, a, b)]),
        (prio - urgent, lambda a, b: [(text(i), "waiting", None)
                                      for i in app.client.zrange(k.prio, urgent + a,
                                                                 urgent + b)]),
        (1 << 62, lambda a, b: [(text(i), "delayed", float(score) / 1000)
                                for i, score in app.client.zrange(k.delayed, a, b,
                                                                  withscores=True)]),
    ]
    rows: list[tuple[str, str, float | None]] = []
    start = page * per_page
    for size, read in segments:
        room = per_page - len(rows)
        if room <= 0:
            break
        if start < size:
            rows += read(start, min(size, start + room) - 1)
            start = 0
        else:
            start -= size
    if not rows:
        return []
    pipe = app.client.pipeline(transaction=False)
    pipe.hmget(k.msg, [r[0] for r in rows])
    pipe.hmget(k.meta, [r[0] for r in rows])
    raws, metas = pipe.execute()
    out = []
    for (i, st, due), raw, meta in zip(rows, raws, metas):
        item = _describe(i, unstamp(raw), st, due)
        priority, unique_key = _meta_policies(meta)
        if priority:
            item["priority"] = priority
        if unique_key:
            item["unique_key"] = unique_key
        out.append(item)
    return out


def _meta_policies(meta: Any) -> tuple[int, str]:
    """The per-message priority (0 if none) and unique key ('' if none) in a
    meta string (format in scripts/lib/common.lua)."""
    if not meta:
        return 0, ""
    parts = text(meta).split(" ", 5)
    try:
        priority = int(parts[4]) if len(parts) > 4 else 0
    except ValueError:
        return 0, ""
    return priority, parts[5] if len(parts) > 5 else ""


def delete_item(app: Context, queue: str | bytes, taskid: str) -> bool:
    """Remove one task that has not started."""
    return app.store.run(app.store.calls.cancel(normalize_queue(queue), text(taskid))) == 1


def dead_records(app: Context, queues: Iterable[str] | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    """Dead-lettered tasks, oldest first, across the given (or all known) queues."""
    out: list[dict[str, Any]] = []
    for queue in queues if queues is not None else app.known_queues():
        k = app.keys.queue(queue)
        # Read back with the ids exactly as stored: an id that is not UTF-8
        # would not match once decoded.
        rids = app.client.zrange(k.dead, 0, limit - 1)
        if not rids:
            continue
        for rid, raw in zip(rids, app.client.hmget(k.deadmsg, rids)):
            record = _dead_record(queue, text(rid), raw)
            if record is not None:
                if isinstance(rid, bytes) and rid != record["id"].encode("utf-8"):
                    record["rid"] = rid  # for delete_dead / requeue_dead
                out.append(record)
    out.sort(key=lambda r: r.get("time", 0))
    return out[:limit]


def _dead_record(queue: str, taskid: str, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        # A message that was not UTF-8 is inside the record as raw bytes.
        raw = raw.decode("utf-8", "replace")
    try:
        record = json.loads(raw)
    except ValueError:
        record = {"reason": "unreadable dead-letter record"}
    item = _describe(taskid, record.get("message"), "dead")
    item.update(queue=queue, reason=record.get("reason"), error=record.get("error"),
                attempts_used=record.get("attempts_used"), time=record.get("time"),
                message=record.get("message"))
    if record.get("priority"):
        item["priority"] = record["priority"]
    return item


def delete_dead(app: Context, records: Iterable[Mapping[str, Any]]) -> int:
    pipe = app.client.pipeline(transaction=False)
    count = 0
    for r in records:
        k = app.keys.queue(r["queue"])
        rid = r.get("rid") or r["id"]
        pipe.zrem(k.dead, rid)
        pipe.hdel(k.deadmsg, rid)
        count += 1
    if count:
        pipe.execute()
    return count


def requeue_dead(app: Context, records: Iterable[Mapping[str, Any]]) -> int:
    """Queue dead tasks again, with the attempts their task now has."""
    from .storage.scripts import scripts
    from .storage.wire import task_meta

    registry = app.read_registry()
    count = 0
    for r in records:
        queue, name = r["queue"], r.get("name")
        local = app.registry.get(name) if name else None
        settings = local.settings() if local else registry.get(name or "", {})
        meta = task_meta(float(settings.get("vis_timeout", 0)), int(settings.get("attempts", 1)),
                         bool(settings.get("use_dead", False)), _int(r.get("priority")))
        k = app.keys.queue(queue)
        count += int(scripts().requeue_dead(
            app.client, [k.ready, k.msg, k.meta, k.dead, k.deadmsg, k.wake, k.prio, k.stats],
            [r.get("rid") or r["id"], meta]))
    return count


def read_deadletter(app: Context, delete: bool = False, limit: int = 100,
                    is_data: bool = False) -> list[dict[str, Any]]:
    if is_data:
        from .data import Data

        dead: list[dict[str, Any]] = Data.read_dead(app, delete=delete, limit=limit)
        return dead
    records = dead_records(app, limit=limit)
    if delete:
        delete_dead(app, records)
    return records


def results(app: Context, taskids: Iterable[str]) -> list[Any]:
    """Saved results by id alone: looks in every known queue, one round trip."""
    ids = [text(t) for t in taskids]
    queues = app.known_queues()
    if not ids or not queues:
        return [None] * len(ids)
    pipe = app.client.pipeline(transaction=False)
    for taskid in ids:
        for queue in queues:
            pipe.get(app.keys.queue(queue).result(taskid))
    raw = pipe.execute()
    n = len(queues)
    return [decode_result(next((r for r in raw[i * n:(i + 1) * n] if r is not None), None))
            for i in range(len(ids))]


def remote_task(app: Context, name: str, settings: Mapping[str, Any]) -> TaskRef:
    """A task known from the registry in Redis, callable without importing it."""
    keep = ("queue", "attempts", "retry_delay", "save_results", "vis_timeout", "use_dead")
    return TaskRef(app, name, **{k: settings[k] for k in keep if k in settings})


class KnownTasks(Mapping[str, Any]):
    """``known_tasks[name]``: tasks in this process, then the registry in Redis."""

    def __init__(self, app: Context) -> None:
        self.app = app

    def __getitem__(self, name: str) -> Any:
        local = self.app.registry.get(name)
        if local is not None:
            return local
        settings = self.app.read_registry().get(name)
        if settings is None:
            raise KeyError(name)
        return remote_task(self.app, name, settings)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self.app.registry) | set(self.app.read_registry())))

    def __len__(self) -> int:
        return len(set(self.app.registry) | set(self.app.read_registry()))


def get_task(app: Context, name: str) -> Any:
    try:
        return KnownTasks(app)[name]
    except KeyError:
        return None


def call_task(app: Context, name: str, queue: str | bytes | None = None, *args: Any,
              _verify_call: bool = False, **kwargs: Any) -> EnqueuedTask:
    """Queue a call to a task by name, from code that does not import it."""
    found = get_task(app, name)
    if found is None:
        if _verify_call:
            raise ValueError(f"unknown task {name!r}: no worker has registered it")
        found = TaskRef(app, name)
    if queue is not None:
        kwargs["_queue"] = queue
    result: EnqueuedTask = found.execute(*args, **kwargs)
    return result


def flush_tasks(
    app: Context,
    complete: bool = False,
    force_delayed: bool = False,
    wait_on_hidden: bool = False,
    timeout: float | None = None,
    log_every: float = 0,
) -> tuple[list[str], list[str], list[str]]:
    """Wait until the tasks queued now have started (or, with ``complete``, finished).

    ``force_delayed`` makes delayed tasks (and periodic tasks) due now;
    ``wait_on_hidden`` also waits for tasks already running. Returns the ids
    as (done, started, still waiting) when they are all done or started, or
    when ``timeout`` seconds have passed.
    """
    watched: list[tuple[str, str]] = []
    for queue in app.known_queues():
        k = app.keys.queue(queue)
        watched += [(queue, text(i)) for i in app.client.zrange(k.prio, 0, -1)]
        watched += [(queue, text(i)) for i in app.client.lrange(k.ready, 0, -1)]
        delayed = [text(i) for i in app.client.zrange(k.delayed, 0, -1)]
        if force_delayed:
            if delayed:
                app.client.zadd(k.delayed, dict.fromkeys(delayed, 0), xx=True)
            due = app.client.zrange(k.periodic, 0, -1)
            if due:
                now_ms = round(app.redis_time() * 1000)
                app.client.zadd(k.periodic, dict.fromkeys(due, now_ms), xx=True)
            app.client.rpush(k.wake, "1")
            app.client.ltrim(k.wake, 0, 0)
        watched += [(queue, i) for i in delayed]
        if wait_on_hidden:
            watched += [(queue, text(i)) for i in app.client.zrange(k.leases, 0, -1)]
    deadline = None if timeout is None else time.monotonic() + timeout
    target = ("done",) if complete else ("started", "done")
    last_log = time.monotonic()
    pause = 0.005
    while True:
        statuses = [app.store.run(app.store.calls.status(q, i)) for q, i in watched]
        pending = sum(s not in target for s in statuses)
        if log_every and time.monotonic() - last_log >= log_every:
            log.info("flush_tasks: %d of %d tasks pending", pending, len(watched))
            last_log = time.monotonic()
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    done = [i for (_, i), s in zip(watched, statuses) if s == "done"]
    started = [i for (_, i), s in zip(watched, statuses) if s == "started"]
    waiting = [i for (_, i), s in zip(watched, statuses) if s not in ("done", "started")]
    return done, started, waiting
