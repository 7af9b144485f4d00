"""Dead data items as records: read across queues, oldest first, and claimed.

Shared by ``Data.read_dead`` and the data dead-letter views.
"""

from __future__ import annotations

import json
from typing import Any

from ..context import Context
from ..storage.data_calls import DataCalls
from ..storage.executor import raise_first
from ..storage.wire import text

# Expired leases / due delayed items one call handles at most: bounds how
# long one script holds Redis when a large backlog expires at once.
UPKEEP_BATCH = 1000


def dead_data(ctx: Context, queues: list[str], limit: int, remove: bool) -> list[dict[str, Any]]:
    """The oldest ``limit`` dead letters across ``queues``; with ``remove``,
    only those this call removed (a concurrent reader gets the others)."""
    calls = {q: DataCalls(ctx.store.keys, q) for q in queues}
    replies = raise_first(ctx.store.pipeline([calls[q].dead(limit, UPKEEP_BATCH)
                                              for q in queues]))
    rows: list[dict[str, Any]] = []
    for queue, reply in zip(queues, replies):
        for i in range(0, len(reply), 2):
            if reply[i + 1]:
                rows.append(dead_row(queue, reply[i], reply[i + 1]))
    rows.sort(key=lambda r: (r["time"], r["id"]))
    rows = rows[:limit]
    if remove and rows:
        chosen = sorted({r["queue"] for r in rows})
        removed = raise_first(ctx.store.pipeline([
            calls[q].dead_remove([r["id"] for r in rows if r["queue"] == q]) for q in chosen]))
        gone = {(q, i) for q, ids in zip(chosen, removed) for i in ids}
        rows = [r for r in rows if (r["queue"], r["id"]) in gone]
    return rows


def dead_row(queue: str, itemid: Any, raw: Any) -> dict[str, Any]:
    """One dead-letter record (data_common.lua writes it) as read_dead's dict."""
    record = json.loads(raw)
    return {"id": text(itemid), "queue": queue, "item": json.loads(record["item"]),
            "reason": record.get("reason"), "attempts_used": record.get("reads"),
            "time": record.get("died_ms", 0) / 1000,
            "inserted": record.get("inserted_ms", 0) / 1000}
