"""The inspection verbs: the queue table, one queue's page, clearing, the
schedule listing and the worker list, all read through ``rpqueue.views``."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from .. import default_app
from ..storage.keys import normalize_queue
from ..views import queues, schedules, workers
from .show import plain, progress, when


def cmd_info(args: argparse.Namespace, out: Console) -> int:
    """No subcommand: the queue table, or with --queue a page of (or a change to) one queue."""
    app = default_app()
    if args.queue is None:
        table = Table("queue", "size", "seen", "priority", "paused", "limit",
                      show_header=not args.skip_header)
        # Used queues in the order they were first seen, then those only
        # paused or given a priority before anything used them.
        rows = sorted(queues.overview(app.ctx).queues,
                      key=lambda q: (q.seen is None, q.seen or 0.0, q.name))
        for q in rows:
            limit = q.limit
            table.add_row(plain(q.name), str(q.size), when(q.seen),
                          str("" if q.priority is None else q.priority),
                          "paused" if q.paused else "",
                          f"{limit['max_len']} {limit['overflow']}" if limit else "")
        out.print(table)
        return 0
    if args.clear:
        return _clear(app, args, out)
    if args.delete:
        ok = app.delete_item(args.queue, args.delete)
        out.print(f"deleted {args.delete}" if ok else f"no waiting task {args.delete} in "
                  f"{args.queue!r}")
        return 0 if ok else 1
    items = app.get_page(args.queue, args.page, args.per_page)
    columns = ["id", "status", "task", "due", "priority", "unique key"] + (
        ["args", "kwargs"] if args.show_args else [])
    table = Table(*columns, show_header=not args.skip_header)
    for item in items:
        row = [item["id"], item["status"], item.get("name", item.get("error", "?")),
               when(item.get("due")), item.get("priority", ""), item.get("unique_key", "")]
        if args.show_args:
            row += [json.dumps(item.get("args")), json.dumps(item.get("kwargs"))]
        table.add_row(*[plain(c) for c in row])
    out.print(table)
    return 0


def _clear(app: Any, args: argparse.Namespace, out: Console) -> int:
    from concurrent.futures import ThreadPoolExecutor

    name = normalize_queue(args.queue)
    total = 0
    if not args.data and out.is_terminal:
        total = queues.counts(app.ctx, [name])[0].size
    with progress(out, f"clearing {name!r}", total) as update, \
            ThreadPoolExecutor(1) as pool:
        job = pool.submit(app.clear_queue, name, is_data=args.data)
        while total and not job.done():
            time.sleep(0.1)
            # The bar is a courtesy: a failed read must not stop the clearing.
            with contextlib.suppress(Exception):
                update(total - queues.counts(app.ctx, [name])[0].size)
        removed = job.result()
    out.print(f"cleared {removed} item(s) from {args.queue!r}")
    return 0


def cmd_schedule(args: argparse.Namespace, out: Console) -> int:
    """Periodic and cron tasks with their next run, soonest first."""
    table = Table("task", "queue", "schedule", "next run")
    for item in schedules.listing(default_app().ctx)["items"]:
        described = item["schedule"] if item["schedule"] is not None else "?"
        table.add_row(plain(item["name"]), plain(item["queue"]), plain(described),
                      when(item["next_run"]))
    out.print(table)
    return 0


def cmd_workers(args: argparse.Namespace, out: Console) -> int:
    """Live worker processes (stale registry entries are pruned)."""
    table = Table("worker", "queues", "threads", "up since", "done", "failed", "running")
    for w in workers.live(default_app().ctx):
        running = ", ".join(f"{r['task']} ({r['id']}, {r['for']:.1f}s)" for r in w["running"])
        table.add_row(plain(w["id"]), plain(", ".join(w["queues"]) or "all"),
                      str(w["threads"]), when(w["started"]), str(w["done"]), str(w["failed"]),
                      plain(running or "-"))
    out.print(table)
    return 0
