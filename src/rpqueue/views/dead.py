"""Dead letters: listing, deletion and requeueing, for every front end.

Records carry the id as text (``id``) and, when the stored id is not UTF-8
and so does not survive decoding, the raw id too (``rid``): deleting and
requeueing use the raw id, so every dead letter can be acted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..context import Context
from ..storage import reads
from ..storage.message import MalformedMessage, decode, loads_strict
from ..storage.wire import task_meta, text
from .items import describe, shorten

# Dead letters are read and changed in chunks so that "all" on a queue with a
# huge dead-letter set never builds one enormous reply or pipeline.
CHUNK = 500


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _record(queue: str, rid: Any, raw: Any) -> dict[str, Any] | None:
    """A stored record as listings show it. Written by hand or by another
    client, a record may be anything: every field is checked, and a record
    that is not one is listed as unreadable, with its id, never raising."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        # A message that was not UTF-8 is inside the record as raw bytes.
        raw = raw.decode("utf-8", "replace")
    why = None
    try:
        record = loads_strict(raw)
    except MalformedMessage as exc:
        record, why = None, str(exc).replace("message", "record", 1)
    if not isinstance(record, dict):
        record = {}
        why = why or "record is not a JSON object"
    message = record.get("message")
    # An oversized message is kept as its first bytes and its size only
    # (lib/take.lua): a readable record, with no arguments to show.
    head = _str(record.get("message_head"))
    if why is None and not isinstance(message, str) and head is None:
        why = "record has no message text"
    item = describe(text(rid), message if isinstance(message, str) else None, "dead")
    item.update(queue=queue, reason=_str(record.get("reason")), error=_str(record.get("error")),
                attempts_used=_int(record.get("attempts_used")) or None,
                time=_time(record.get("time")), message=_str(message))
    if head is not None and message is None:
        item["message_size"] = _int(record.get("message_size"))
    if why is not None:
        item.update(unreadable=True, reason="unreadable dead-letter record", error=why)
    priority = _int(record.get("priority"))
    if priority:
        item["priority"] = priority
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
    out = {key: record.get(key) for key in
           ("id", "queue", "name", "args", "kwargs", "reason", "error", "attempts_used", "time")}
    for key in ("unreadable", "truncated", "sizes", "message_size"):
        if key in record:
            out[key] = record[key]
    return out


def listing(ctx: Context, queue: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The oldest ``limit`` dead letters (of one queue, or of all) and how many
    exist; long arguments and errors cut (``get_record`` has them whole)."""
    queues = [queue] if queue is not None else ctx.store.known_queues()
    counts = reads.dead_counts(ctx.store, queues)
    total = sum(counts)
    # Only the queues that hold dead letters are read further: with many
    # queue names, most hold none.
    holding = [q for q, n in zip(queues, counts) if n]
    records = dead_records(ctx, holding, limit) if total else []
    return {"total": total, "items": [public(shorten(r)) for r in records]}


def get_record(ctx: Context, queue: str, taskid: str) -> dict[str, Any] | None:
    """One dead letter in full (arguments and error uncut), or None."""
    (found,) = reads.dead_messages(ctx.store, [(queue, [taskid])])
    record = _record(queue, taskid, found[0])
    return None if record is None else public(record)


def _task_name(raw_record: Any) -> tuple[bool, str | None]:
    """(record has a message to requeue, task name) of a stored dead-letter record."""
    try:
        record = json.loads(raw_record)
    except (ValueError, RecursionError):
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


# How many of the newest dead letters a filtered search reads at most: a
# search must answer in bounded time whatever the dead-letter sets hold.
SCAN_LIMIT = 10_000


def _matches(record: Mapping[str, Any], name: str, error: str, taskid: str) -> bool:
    """Case-insensitive substring tests of a record against the given filters."""
    def has(value: Any, wanted: str) -> bool:
        return not wanted or (isinstance(value, str) and wanted.casefold() in value.casefold())
    error_text = " ".join(v for v in (record.get("error"), record.get("reason"))
                          if isinstance(v, str))
    return has(record.get("name"), name) and has(error_text, error) and has(record.get("id"), taskid)


def _records_in_order(ctx: Context, rows: Sequence[tuple[float, str, Any]]) -> list[dict[str, Any]]:
    """The records of (time, queue, raw id) rows, in the rows' order (one round trip)."""
    by_queue: dict[str, list[Any]] = {}
    for _, q, rid in rows:
        by_queue.setdefault(q, []).append(rid)
    wanted = list(by_queue.items())
    found = {(q, rid): raw for (q, ids), raws in zip(wanted, reads.dead_messages(ctx.store, wanted))
             for rid, raw in zip(ids, raws)}
    out = []
    for _, q, rid in rows:
        record = _record(q, rid, found.get((q, rid)))
        if record is not None:
            out.append(record)
    return out


def search(ctx: Context, queue: str | None = None, *, name: str = "", error: str = "",
           taskid: str = "", page: int = 0, per_page: int = 50,
           scan: int = SCAN_LIMIT) -> dict[str, Any]:
    """One page of dead letters, newest first, of one queue or all, filtered
    by task name, error (or reason) text and task id (case-insensitive
    substrings; empty: any).

    Returns ``total`` (dead letters in those queues), ``matched`` (how many
    pass the filters), ``complete`` (False when a filtered search stopped
    after the newest ``scan`` letters, so older matches are not counted),
    ``page``, ``per_page`` and ``items`` (long values cut, as ``listing``).
    """
    if page < 0 or per_page < 1 or scan < 1:
        raise ValueError(f"page must be >= 0 and per_page, scan >= 1, got {page}, {per_page}, "
                         f"{scan}")
    queues = [queue] if queue is not None else ctx.store.known_queues()
    counts = reads.dead_counts(ctx.store, queues)
    total = sum(counts)
    holding = [q for q, n in zip(queues, counts) if n]
    filtered = bool(name or error or taskid)
    # Unfiltered, the newest (page + 1) * per_page of each queue hold the
    # page whatever the mix; filtered, up to ``scan`` are read and tested.
    want = scan if filtered else (page + 1) * per_page
    newest = reads.newest_dead(ctx.store, holding, want) if holding else []
    rows = sorted(((when, q, rid) for q, found in zip(holding, newest) for rid, when in found),
                  key=lambda row: -row[0])
    first = page * per_page
    if not filtered:
        items = _records_in_order(ctx, rows[first:first + per_page])
        matched, complete = total, True
    else:
        rows = rows[:scan]
        hits: list[dict[str, Any]] = []
        for start in range(0, len(rows), CHUNK):
            hits += [r for r in _records_in_order(ctx, rows[start:start + CHUNK])
                     if _matches(r, name, error, taskid)]
        items, matched, complete = hits[first:first + per_page], len(hits), len(rows) >= total
    return {"total": total, "matched": matched, "complete": complete, "page": page,
            "per_page": per_page, "items": [public(shorten(r)) for r in items]}
