"""The inspection verbs: the queue table, one queue's page, clearing, the
data queues, the schedule listing and the worker list, all read through
``rpqueue.views``."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from typing import Any

from rich.console import Console

from .. import default_app
from ..storage.keys import normalize_queue
from ..views import queues, schedules, workers
from ..views.items import shorten
from .common import check_queue, data_queue_names, emit_json, table, unknown
from .show import plain, progress, when

START_WORKER = "start one with: rpqueue worker --module=YOUR_TASKS_MODULE"


def _number(value: float | None) -> str:
    """A setting for a table cell: '' when unset, 0 shown as 0."""
    return "" if value is None else f"{value:g}"


def cmd_info(args: argparse.Namespace, out: Console) -> int:
    """No subcommand: the queue table, or with --queue a page of (or a change to) one queue."""
    app = default_app()
    if args.data and not args.clear:
        return _data_queues(args, out)
    if args.queue is None:
        return _queue_table(args, out)
    if args.clear:
        return _clear(app, args, out)
    name = normalize_queue(args.queue)
    check_queue(app.ctx, name)
    if args.delete:
        ok = app.delete_item(args.queue, args.delete)
        out.print(plain(f"deleted {args.delete}" if ok else f"no waiting task {args.delete} in "
                        f"{args.queue!r}"))
        return 0 if ok else 1
    page = args.page or 0
    items = app.get_page(args.queue, page, args.per_page)
    q = queues.overview(app.ctx).by_name()[name]
    if args.json:
        emit_json({"queue": name, "page": page, "per_page": args.per_page, "items": items,
                   "settings": {"priority": q.priority, "limit": q.limit, "paused": q.paused,
                                "weight": q.weight}})
        return 0
    limit = f"max_len {q.limit['max_len']} ({q.limit['overflow']})" if q.limit else "none"
    out.print(plain(f"queue {name!r}: priority {_number(q.priority) or 'none'}, limit {limit}, "
                    f"weight {q.weight:g}{', paused' if q.paused else ''}"))
    out.print(plain(f"{q.waiting} waiting, {q.delayed} delayed, {q.running} running, "
                    f"{q.dead} dead"))
    if not items:
        size = queues.counts(app.ctx, [args.queue])[0].size
        last = max((size - 1) // args.per_page, 0)
        out.print(plain(f"{args.queue!r} holds no waiting or delayed task" if not size else
                        f"page {page} is past the end: {args.queue!r} holds {size} task(s), "
                        f"pages 0 to {last} of {args.per_page}"))
        return 0
    if args.show_args:
        # A block per task: argument columns in a table are unreadable at 80 columns.
        for item in items:
            out.print(plain(f"{item['id']}  {item['status']}  "
                            f"{item.get('name', item.get('error', '?'))}  "
                            f"due {when(item.get('due'))}"))
            # Cut when long (issue #25): views.items.get_item has them whole.
            cut = shorten(item)
            for key in ("args", "kwargs"):
                value = cut.get(key)
                shown = value if key in cut.get("truncated", ()) else json.dumps(value)
                out.print(plain(f"    {key + ':':8}{shown}"))
        return 0
    shown = table(out, "id", "status", "task", "due", "priority", "unique key",
                  show_header=not args.skip_header)
    for item in items:
        shown.add_row(*[plain(c) for c in (
            item["id"], item["status"], item.get("name", item.get("error", "?")),
            when(item.get("due")), item.get("priority", ""), item.get("unique_key", ""))])
    out.print(shown)
    return 0


def _queue_table(args: argparse.Namespace, out: Console) -> int:
    """Every queue in the order a worker serving all of them takes from
    them: by priority, then the queues without one, by name."""
    rows = queues.overview(default_app().ctx).queues
    if args.json:
        emit_json([q.as_dict() for q in rows])
        return 0
    if not rows:
        out.print("no task queues yet: they appear once a task is queued or a worker "
                  f"starts ({START_WORKER})")
        return 0
    # Fits 80 columns: weights are shown by `rpqueue scheduling`, the year of
    # "last seen" (and its seconds) by --json.
    shown = table(out, "queue", "priority", "size", "running", "dead", "paused", "limit",
                  "seen (UTC)", show_header=not args.skip_header)
    for column in shown.columns[1:]:
        column.no_wrap = True  # numbers and times whole; a long queue name wraps instead
    for q in rows:
        limit = q.limit
        shown.add_row(plain(q.name), _number(q.priority), str(q.size), str(q.running),
                      str(q.dead), "paused" if q.paused else "",
                      f"{limit['max_len']} {limit['overflow']}" if limit else "",
                      when(q.seen)[5:-7] if q.seen else "-")
    out.print(shown)
    return 0


def _data_queues(args: argparse.Namespace, out: Console) -> int:
    """The data queues (``rpqueue.Data``) with what each holds."""
    from ..data import Data

    ctx = default_app().ctx
    names = data_queue_names(ctx)
    if args.queue is not None and args.queue not in names:
        raise unknown("data queue", args.queue, names)
    counts = {n: Data(n, app=ctx).currently_available() for n in names
              if args.queue in (None, n)}
    if args.json:
        emit_json([{"queue": n, "available": a, "invisible": i} for n, (a, i) in counts.items()])
        return 0
    if not counts:
        out.print("no data queues yet: they appear once rpqueue.Data(QUEUE).put_data(...) "
                  "stores something")
        return 0
    shown = table(out, "data queue", "available", "leased or delayed",
                  show_header=not args.skip_header)
    for n, (available, invisible) in counts.items():
        shown.add_row(plain(n), str(available), str(invisible))
    out.print(shown)
    return 0


def _clear(app: Any, args: argparse.Namespace, out: Console) -> int:
    from concurrent.futures import ThreadPoolExecutor

    name = normalize_queue(args.queue)
    if args.data:
        known = data_queue_names(app.ctx)
        if name not in known:
            raise unknown("data queue", name, known)
    else:
        check_queue(app.ctx, name)
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
    if args.json:
        emit_json({"queue": name, "cleared": removed})
    else:
        out.print(plain(f"cleared {removed} item(s) from {args.queue!r}"))
    return 0


def cmd_schedule(args: argparse.Namespace, out: Console) -> int:
    """Periodic and cron tasks with their next run, soonest first."""
    found = schedules.listing(default_app().ctx)
    if args.json:
        emit_json(found)
        return 0
    if not found["items"]:
        out.print("no periodic or cron tasks: declare one with @periodic_task or @cron_task "
                  f"and {START_WORKER}")
        return 0
    shown = table(out, "task", "queue", "schedule", "next run")
    for item in found["items"]:
        described = item["schedule"] if item["schedule"] is not None else "?"
        shown.add_row(plain(item["name"]), plain(item["queue"]), plain(described),
                      when(item["next_run"]))
    out.print(shown)
    return 0


def cmd_workers(args: argparse.Namespace, out: Console) -> int:
    """Live worker processes (stale registry entries are pruned)."""
    live = workers.live(default_app().ctx)
    if args.json:
        emit_json(live)
        return 0
    if not live:
        out.print(f"no workers: {START_WORKER}")
        return 0
    shown = table(out, "worker", "queues", "threads", "up since", "done", "failed", "running")
    for w in live:
        running = ", ".join(f"{r['task']} ({r['id']}, {r['for']:.1f}s)" for r in w["running"])
        shown.add_row(plain(w["id"]), plain(", ".join(w["queues"]) or "all"),
                      str(w["threads"]), when(w["started"]), str(w["done"]), str(w["failed"]),
                      plain(running or "-"))
    out.print(shown)
    return 0
