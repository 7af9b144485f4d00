"""``rpqueue dead``: list, requeue or purge dead-lettered tasks (``rpqueue.views.dead``)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from .. import default_app
from ..views import dead
from .show import plain, progress, when

# Requeued a batch per round trip, so a progress bar can follow.
BATCH = 100


def cmd_dead(args: argparse.Namespace, out: Console) -> int:
    """List, requeue or purge the dead letters chosen by queue, name and id."""
    ctx = default_app().ctx
    records = dead.dead_records(ctx, [args.queue] if args.queue else None, args.limit)
    if args.name:
        records = [r for r in records if r.get("name") == args.name]
    if args.id:
        records = [r for r in records if r["id"] in set(args.id)]
    if args.action == "list":
        table = Table("id", "queue", "task", "reason", "error", "attempts", "died")
        for r in records:
            table.add_row(*[plain(x) for x in (r["id"], r["queue"], r.get("name", "?"),
                            r.get("reason"), r.get("error") or "", r.get("attempts_used"))],
                          when(r.get("time")))
        out.print(table)
        return 0
    if args.action == "requeue":
        n = 0
        with progress(out, "requeueing dead tasks", len(records)) as update:
            for start in range(0, len(records), BATCH):
                n += dead.requeue_dead(ctx, records[start:start + BATCH])
                update(start + BATCH)
        out.print(f"requeued {n} dead task(s)")
        return 0
    n = dead.delete_dead(ctx, records)
    out.print(f"purged {n} dead task(s)")
    return 0
