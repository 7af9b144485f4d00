"""The schedule listing: periodic and cron tasks with their next planned run."""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..storage import reads


def listing(ctx: Context) -> dict[str, Any]:
    """``{"now": Redis time, "items": [...]}``: each periodic task of every known
    queue with its queue, schedule description (None if unknown) and next run
    (unix seconds), soonest first. One round trip for all queues."""
    found, now = reads.schedules(ctx.store, ctx.store.known_queues())
    items = [{"name": name, "queue": queue, "schedule": described, "next_run": score / 1000}
             for queue, name, score, described in found]
    items.sort(key=lambda item: (item["next_run"], item["name"]))
    return {"now": now, "items": items}
