"""The worker list: live workers from the registry hash (rpqueue.registry).

``live`` is what the command line and the metrics use: workers that beat
within ``registry.STALE`` seconds (stale entries are pruned as a side
effect). ``snapshot`` is the dashboard's: it never writes (a page refresh
must not prune), shows values that are not JSON objects raw, and says when
there is no registry to read.
"""

from __future__ import annotations

import json
from typing import Any

from ..context import Context
from ..registry import STALE, live_workers
from ..storage import reads
from ..storage.wire import text

NO_REGISTRY = "worker registry not available"


def live(ctx: Context) -> list[dict[str, Any]]:
    """Workers that beat within STALE seconds, by host and pid; older entries are removed."""
    return live_workers(ctx)


def snapshot(ctx: Context) -> dict[str, Any]:
    """Live workers without pruning, with how many entries are stale, for display."""
    kind, raw, now = reads.worker_registry(ctx.store)
    key = ctx.store.keys.workers
    if kind == "none":
        return {"available": False, "reason": NO_REGISTRY, "key": key, "workers": [],
                "stale": 0, "now": now}
    if kind != "hash" or not isinstance(raw, dict):
        return {"available": False, "reason": f"{NO_REGISTRY}: {key} is a {kind}, not a hash",
                "key": key, "workers": [], "stale": 0, "now": now}
    found: list[dict[str, Any]] = []
    stale = 0
    for wid, value in raw.items():
        try:
            record = json.loads(value)
        except ValueError:
            record = None
        entry: dict[str, Any] = dict(record) if isinstance(record, dict) else {"info": text(value)}
        entry["id"] = text(wid)
        beat = entry.get("beat")
        if isinstance(beat, (int, float)) and not isinstance(beat, bool) and now - beat > STALE:
            stale += 1
            continue
        found.append(entry)
    found.sort(key=lambda w: str(w["id"]))
    return {"available": True, "key": key, "workers": found, "stale": stale, "now": now}
