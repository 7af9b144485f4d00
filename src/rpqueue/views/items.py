"""What is queued, task by task: one page of a queue, in the order it will run."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..context import Context
from ..storage import reads
from ..storage.keys import normalize_queue
from ..storage.message import MalformedMessage, decode
from ..storage.wire import text, unstamp

# Far more than any queue holds: the delayed segment has no known size.
_UNBOUNDED = 1 << 62


# How much of a task's arguments (as JSON text) and of an error a listing
# carries: a listing polled every 2 s must not ship megabytes per task. The
# full value is on the task's own page (get_item, views.dead.get_record).
PREVIEW_CHARS = 500
ERROR_CHARS = 2000


def describe(taskid: str, raw: Any, status: str, due: float | None = None) -> dict[str, Any]:
    """A task as listings show it: id, status, due time, and the name and
    arguments read from its message (or the reason it cannot be read)."""
    item: dict[str, Any] = {"id": taskid, "status": status}
    if due is not None:
        item["due"] = due
    if raw is None:
        return item
    if not isinstance(raw, (str, bytes)):
        item["error"] = f"message is not text but {type(raw).__name__}"
        return item
    try:
        m = decode(raw)
    except MalformedMessage as exc:
        item["error"] = str(exc)
        return item
    item.update(name=m.name, args=m.args, kwargs=m.kwargs)
    return item


def shorten(item: dict[str, Any], chars: int = PREVIEW_CHARS) -> dict[str, Any]:
    """A copy of a listed task whose long values are cut: ``args`` and
    ``kwargs`` over ``chars`` characters of JSON become that text, cut, and
    ``error`` is cut at ERROR_CHARS; ``truncated`` names what was cut, with
    the full sizes in ``sizes``."""
    out = dict(item)
    cut: list[str] = []
    sizes: dict[str, int] = {}
    for key in ("args", "kwargs"):
        if key not in out:
            continue
        text = json.dumps(out[key], ensure_ascii=False, separators=(",", ":"))
        if len(text) > chars:
            out[key] = text[:chars] + "…"
            cut.append(key)
            sizes[key] = len(text)
    error = out.get("error")
    if isinstance(error, str) and len(error) > ERROR_CHARS:
        out["error"] = error[:ERROR_CHARS] + "…"
        cut.append("error")
        sizes["error"] = len(error)
    if cut:
        out["truncated"] = cut
        out["sizes"] = sizes
    return out


def get_item(ctx: Context, queue: str | bytes, taskid: str) -> dict[str, Any] | None:
    """One queued task in full (its arguments uncut), or None if it is not queued."""
    name = normalize_queue(queue)
    raws, metas = reads.messages(ctx.store, name, [taskid])
    if raws[0] is None:
        return None
    item = describe(taskid, unstamp(raws[0]), "queued")
    item["queue"] = name
    priority, unique_key = meta_policies(metas[0])
    if priority:
        item["priority"] = priority
    if unique_key:
        item["unique_key"] = unique_key
    return item


def meta_policies(meta: Any) -> tuple[int, str]:
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


def get_page(ctx: Context, queue: str | bytes, page: int, per_page: int = 50) -> list[dict[str, Any]]:
    """Page ``page`` (from 0) of a queue: waiting tasks in run order, then delayed ones by due time."""
    if page < 0 or per_page < 1:
        raise ValueError(f"page must be >= 0 and per_page >= 1, got {page}, {per_page}")
    name = normalize_queue(queue)
    store = ctx.store
    # Run order: negative per-message priorities, the default line, positive ones.
    urgent, plain, prio = reads.page_counts(store, name)
    Read = Callable[[int, int], list[tuple[Any, float | None]]]
    segments: list[tuple[int, Read]] = [
        (urgent, lambda a, b: reads.page_segment(store, name, "prio", a, b)),
        (plain, lambda a, b: reads.page_segment(store, name, "ready", a, b)),
        (prio - urgent, lambda a, b: reads.page_segment(store, name, "prio", urgent + a,
                                                        urgent + b)),
        (_UNBOUNDED, lambda a, b: reads.page_segment(store, name, "delayed", a, b)),
    ]
    rows: list[tuple[Any, float | None]] = []
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
    raws, metas = reads.messages(store, name, [r[0] for r in rows])
    out = []
    for (rid, score), raw, meta in zip(rows, raws, metas):
        due = None if score is None else score / 1000
        item = describe(text(rid), unstamp(raw), "waiting" if score is None else "delayed", due)
        priority, unique_key = meta_policies(meta)
        if priority:
            item["priority"] = priority
        if unique_key:
            item["unique_key"] = unique_key
        out.append(item)
    return out
