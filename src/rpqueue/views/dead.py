"""Dead letters: listing, deletion and requeueing, for every front end.

Records carry the id as text (``id``) and, when the stored id is not UTF-8
and so does not survive decoding, the raw id too (``rid``): deleting and
requeueing use the raw id, so every dead letter can be acted on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..context import Context
from ..storage import reads
from ..storage.message import MalformedMessage, decode
from ..storage.wire import task_meta, text
from .items import describe

# Dead letters are read and changed in chunks so that "all" on a queue with a
# huge dead-letter set never builds one enormous reply or pipeline.
CHUNK = 500


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _record(queue: str, rid: Any, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        # A message that was not UTF-8 is inside the record as raw bytes.
        raw = raw.decode("utf-8", "replace")
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {"reason": "unreadable dead-letter record"}
    item = describe(text(rid), record.get("message"), "dead")
    item.update(queue=queue, reason=record.get("reason"), error=record.get("error"),
                attempts_used=record.get("attempts_used"), time=record.get("time"),
                message=record.get("message"))
    if record.get("priority"):
        item["priority"] = record["priority"]
    if isinstance(rid, bytes) and rid != item["id"].encode("utf-8"):
        item["rid"] = rid
    return item


def dead_records(ctx: Context, queues: Iterable[str] | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
    """Dead-lettered tasks, oldest first, across the given (or all known) queues."""
    names = list(queues) if queues is not None else ctx.store.known_queues()
    ids = reads.dead_ids(ctx.store, names, limit)
    raws = reads.dead_messages(ctx.store, list(zip(names, ids)))
    out = [r for queue, rids, found in zip(names, ids, raws)
           for r in (_record(queue, rid, raw) for rid, raw in zip(rids, found)) if r is not None]
    out.sort(key=lambda r: r.get("time") or 0)
    return out[:limit]


def dead_total(ctx: Context, queues: Sequence[str] | None = None) -> int:
    """How many dead letters the given (or all known) queues hold."""
    return reads.dead_total(ctx.store, list(queues) if queues is not None else ctx.store.known_queues())


def _key(record: Mapping[str, Any]) -> Any:
    return record.get("rid") or record["id"]


def delete_dead(ctx: Context, records: Iterable[Mapping[str, Any]]) -> int:
    """Remove the given dead letters; returns how many records were given."""
    targets = [(r["queue"], _key(r)) for r in records]
    reads.delete_dead(ctx.store, targets)
    return len(targets)


def requeue_dead(ctx: Context, records: Iterable[Mapping[str, Any]]) -> int:
    """Queue dead tasks again, with the attempts their task now has; how many were."""
    registry = ctx.read_registry()
    targets = []
    for r in records:
        name = r.get("name")
        local = ctx.registry.get(name) if name else None
        settings = local.settings() if local else registry.get(name or "", {})
        meta = task_meta(float(settings.get("vis_timeout", 0)), int(settings.get("attempts", 1)),
                         bool(settings.get("use_dead", False)), _int(r.get("priority")))
        targets.append((r["queue"], _key(r), meta))
    return reads.requeue_dead(ctx.store, targets)


def public(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record without its raw message and raw id, for JSON output."""
    # The raw message repeats name and arguments as one JSON string.
    return {key: record.get(key) for key in
            ("id", "queue", "name", "args", "kwargs", "reason", "error", "attempts_used", "time")}


def listing(ctx: Context, queue: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The oldest ``limit`` dead letters (of one queue, or of all) and how many exist."""
    queues = [queue] if queue is not None else ctx.store.known_queues()
    total = dead_total(ctx, queues)
    records = dead_records(ctx, queues, limit) if total else []
    return {"total": total, "items": [public(r) for r in records]}


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


DeadAction = Literal["requeue", "delete"]


def act(ctx: Context, action: DeadAction, targets: Iterable[tuple[str, Any]] | None = None,
        queue: str | None = None) -> dict[str, int]:
    """Requeue or delete dead letters: the given (queue, id) pairs, or with no
    targets every dead letter (of ``queue``, or of every known queue).

    Returns how many were acted on, and how many could not be requeued
    (records without a message, which only deleting can clear).
    """
    by_queue: dict[str, list[Any]] = {}
    if targets is not None:
        for q, taskid in targets:
            by_queue.setdefault(q, []).append(taskid)
    else:
        names = [queue] if queue is not None else ctx.store.known_queues()
        # Snapshot the raw ids first: a requeued task that dies again at once
        # must not be picked up a second time by this same request, and an
        # id that is not UTF-8 must be sent back as stored.
        for q, ids in zip(names, reads.dead_ids(ctx.store, names)):
            if ids:
                by_queue[q] = ids
    done = skipped = 0
    for q, ids in by_queue.items():
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            if action == "delete":
                done += sum(reads.delete_dead(ctx.store, [(q, i) for i in chunk]))
                continue
            records: list[dict[str, Any]] = []
            (raws,) = reads.dead_messages(ctx.store, [(q, chunk)])
            for rid, raw in zip(chunk, raws):
                if raw is None:
                    continue
                requeueable, name = _task_name(raw)
                if not requeueable:
                    skipped += 1
                    continue
                records.append({"queue": q, "id": text(rid), "rid": rid, "name": name})
            done += requeue_dead(ctx, records)
    key = "requeued" if action == "requeue" else "deleted"
    return {key: done, "skipped": skipped}
