"""The schedule listing: periodic and cron tasks with their next planned run."""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..storage import reads


def listing(ctx: Context) -> dict[str, Any]:
    """``{"now": Redis time, "items": [...]}``: each periodic task of every known
    queue with its queue, schedule description (None if unknown) and next run
    (unix seconds), soonest first; ``tz`` is the zone a cron task's crontab
    reads (None for a periodic task). One round trip for all queues."""
    found, now = reads.schedules(ctx.store, ctx.store.known_queues())
    items = [{"name": name, "queue": queue, "schedule": described, "tz": _zone(described),
              "next_run": score / 1000}
             for queue, name, score, described in found]
    items.sort(key=lambda item: (item["next_run"], item["name"]))
    return {"now": now, "items": items}


def _zone(described: str | None) -> str | None:
    """The zone of a cron description, "cron '0 5 * * *' (Europe/Paris)" (Cron.describe)."""
    if described is None or not described.startswith("cron ") or not described.endswith(")"):
        return None
    return described.rpartition(" (")[2][:-1] or None
