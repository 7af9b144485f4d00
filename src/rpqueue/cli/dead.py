"""``rpqueue dead``: list, requeue or purge dead-lettered tasks (``rpqueue.views.dead``).

The filters (--queue, --name, --id) choose first and --limit caps what is
left, so a name filter is never starved by the dead letters of other tasks;
what the cap leaves over is reported."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from .. import default_app
from ..storage.keys import normalize_queue
from ..views import dead
from ..views.items import shorten
from .common import check_queue, confirm, emit_json, table, unknown
from .show import plain, progress, when

# Requeued a batch per round trip, so a progress bar can follow.
BATCH = 100


def _chosen(args: argparse.Namespace) -> tuple[list[dict[str, Any]], int]:
    """The dead letters the filters choose, capped at --limit, and how many
    more matched."""
    ctx = default_app().ctx
    if args.limit < 1:
        raise ValueError(f"--limit must be at least 1, not {args.limit}")
    queues = None
    if args.queue:
        name = normalize_queue(args.queue)
        check_queue(ctx, name)
        queues = [name]
    total = dead.dead_total(ctx, queues)
    records = dead.dead_records(ctx, queues, max(total, 1))
    if args.name:
        names = {r.get("name") for r in records} | set(default_app().known_tasks)
        if args.name not in names:
            raise unknown("task", args.name, [n for n in names if n],
                          "names of dead-lettered and published tasks")
        records = [r for r in records if r.get("name") == args.name]
    if args.id:
        wanted = set(args.id)
        records = [r for r in records if r["id"] in wanted]
    return records[:args.limit], max(len(records) - args.limit, 0)


def cmd_dead(args: argparse.Namespace, out: Console) -> int:
    """List, requeue or purge the dead letters chosen by queue, name and id."""
    ctx = default_app().ctx
    records, left = _chosen(args)
    more = (f"{left} more match: raise --limit (now {args.limit}) or run it again"
            if left else "")
    if args.action == "list":
        # Long arguments and errors are cut in a listing; dead letters asked
        # for by --id are shown whole.
        shown_records = records if args.id else [shorten(r) for r in records]
        if args.json:
            emit_json({"dead": [dead.public(r) for r in shown_records], "more": left})
            return 0
        if not records:
            out.print("no dead letters" + (" match" if args.queue or args.name or args.id
                                           else ""))
            return 0
        shown = table(out, "id", "queue", "task", "reason", "error", "attempts", "died")
        for r in shown_records:
            name = "(unreadable record)" if r.get("unreadable") else r.get("name") or "?"
            shown.add_row(*[plain(x) for x in (r["id"], r["queue"], name, r.get("reason") or "",
                                               r.get("error") or "", r.get("attempts_used") or "")],
                          when(r.get("time")))
        out.print(shown)
        if more:
            out.print(plain(more))
        return 0
    if args.action == "requeue":
        n = 0
        with progress(out, "requeueing dead tasks", len(records)) as update:
            for start in range(0, len(records), BATCH):
                n += dead.requeue_dead(ctx, records[start:start + BATCH])
                update(start + BATCH)
        return _done(args, out, "requeued", n, left, more)
    if not (args.queue or args.name or args.id) and records:
        question = f"purge all {len(records) + left} dead letter(s)?"
        if not confirm(question, args.yes, "dead purge without --queue, --name or --id "
                       "deletes every dead letter: add --yes to do so"):
            out.print("nothing purged")
            return 1
    n = dead.delete_dead(ctx, records)
    return _done(args, out, "purged", n, left, more)


def _done(args: argparse.Namespace, out: Console, verb: str, n: int, left: int,
          more: str) -> int:
    if args.json:
        emit_json({verb: n, "more": left})
    else:
        out.print(plain(f"{verb} {n} dead task(s)" + (f"; {more}" if more else "")))
    return 0
