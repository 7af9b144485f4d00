"""The worker list: live workers from the registry hash (rpqueue.registry).

``live`` is what the command line and the metrics use: workers that beat
within ``registry.STALE`` seconds (stale entries are pruned as a side
effect). ``snapshot`` is the dashboard's: it never writes (a page refresh
must not prune), shows values that are not JSON objects raw, and says when
there is no registry to read.
"""

from __future__ import annotations

import math
from typing import Any

from ..context import Context
from ..registry import STALE, live_workers
from ..storage import reads
from ..storage.message import MalformedMessage, loads_strict
from ..storage.wire import text

# What the page says when no worker has ever registered (or all have
# stopped and their entries were pruned): the words a user looks for.
NO_REGISTRY = "no workers running"


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _running(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    taskid, task, queue = value.get("id"), value.get("task"), value.get("queue")
    took = _number(value.get("for"))
    if not (isinstance(taskid, str) and isinstance(task, str) and isinstance(queue, str)):
        return None
    return {"id": taskid, "task": task, "queue": queue, "for": took or 0.0}


def clean(wid: str, record: Any) -> dict[str, Any]:
    """A registry entry with every field rpqueue writes checked (registry.py):
    a field of the wrong type is dropped (``unreadable`` names it) and a
    running task that is not one is shown as such, so one odd entry never
    breaks a listing. Other fields are kept as they are."""
    if not isinstance(record, dict):
        return {"id": wid, "unreadable": ["entry"], "info": str(record)[:200], "queues": [],
                "running": [], "threads": 0, "done": 0, "failed": 0, "started": None}
    out: dict[str, Any] = dict(record)
    out["id"] = wid
    bad: list[str] = []
    for key in ("threads", "done", "failed", "pid"):
        if key in out and (_number(out[key]) is None or isinstance(out[key], float)):
            bad.append(key)
            del out[key]
    for key in ("threads", "done", "failed"):
        out.setdefault(key, 0)
    for key in ("started", "beat"):
        if key in out and _number(out[key]) is None:
            bad.append(key)
            del out[key]
    out.setdefault("started", None)
    queues = out.get("queues", [])
    if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
        bad.append("queues")
        queues = [q for q in queues if isinstance(q, str)] if isinstance(queues, list) else []
    out["queues"] = queues
    running = out.get("running", [])
    if not isinstance(running, list):
        bad.append("running")
        running = []
    shown = []
    for entry in running:
        one = _running(entry)
        if one is None:
            bad.append("running")
            one = {"id": "?", "task": "(unreadable)", "queue": "?", "for": 0.0}
        shown.append(one)
    out["running"] = shown
    if bad:
        out["unreadable"] = sorted(set(bad))
    return out


def live(ctx: Context) -> list[dict[str, Any]]:
    """Workers that beat within STALE seconds, by host and pid; older entries
    are removed. Every entry is checked (``clean``)."""
    found = [clean(str(w.get("id", "?")), w) for w in live_workers(ctx)]
    return sorted(found, key=lambda r: (str(r.get("host", "")),
                                        r["pid"] if isinstance(r.get("pid"), int) else 0))


def snapshot(ctx: Context) -> dict[str, Any]:
    """Live workers without pruning, with how many entries are stale, for display."""
    kind, raw, now = reads.worker_registry(ctx.store)
    key = ctx.store.keys.workers
    if kind == "none":
        return {"available": False, "reason": NO_REGISTRY, "key": key, "workers": [],
                "stale": 0, "now": now}
    if kind != "hash" or not isinstance(raw, dict):
        return {"available": False, "reason": f"the worker list cannot be read: {key} is a {kind}, "
                "not a hash",
                "key": key, "workers": [], "stale": 0, "now": now}
    found: list[dict[str, Any]] = []
    stale = 0
    for wid, value in raw.items():
        try:
            # Strict: a NaN in an entry would make the dashboard's JSON fail.
            record = loads_strict(text(value))
        except MalformedMessage:
            record = None
        if isinstance(record, dict):
            entry = clean(text(wid), record)
        else:
            entry = {"id": text(wid), "info": text(value)[:200]}
        beat = entry.get("beat")
        if isinstance(beat, (int, float)) and now - beat > STALE:
            stale += 1
            continue
        found.append(entry)
    found.sort(key=lambda w: str(w["id"]))
    return {"available": True, "key": key, "workers": found, "stale": stale, "now": now}
