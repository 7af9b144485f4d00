"""The ``rpqueue`` command (also ``python -m rpqueue``).

With no subcommand it is the original inspection tool: a table of queues,
``--queue Q`` pages through one, ``--clear`` empties it, ``--delete ID``
removes one task. Subcommands run the embedded server, the demo, a worker,
and list schedules and dead letters.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from . import default_app
from .run import add_connection_options, configure


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def cmd_info(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    if args.queue is None:
        table = Table("queue", "size", "seen", "priority", show_header=not args.skip_header)
        pri = app.priorities()
        for queue, size, seen in app.queue_sizes():  # type: ignore[attr-defined]
            table.add_row(queue, str(size), _when(seen), str(pri.get(queue, "")))
        out.print(table)
        return 0
    if args.clear:
        removed = app.clear_queue(args.queue, is_data=args.data)  # type: ignore[attr-defined]
        out.print(f"cleared {removed} item(s) from {args.queue!r}")
        return 0
    if args.delete:
        ok = app.delete_item(args.queue, args.delete)  # type: ignore[attr-defined]
        out.print(f"deleted {args.delete}" if ok else f"no waiting task {args.delete} in "
                  f"{args.queue!r}")
        return 0 if ok else 1
    items = app.get_page(args.queue, args.page, args.per_page)  # type: ignore[attr-defined]
    columns = ["id", "status", "task", "due"] + (["args", "kwargs"] if args.show_args else [])
    table = Table(*columns, show_header=not args.skip_header)
    for item in items:
        row = [item["id"], item["status"], item.get("name", item.get("error", "?")),
               _when(item.get("due"))]
        if args.show_args:
            row += [json.dumps(item.get("args")), json.dumps(item.get("kwargs"))]
        # Markup off: task names and arguments are data, never formatting.
        table.add_row(*[_plain(c) for c in row])
    out.print(table)
    return 0


def _plain(value: Any) -> Any:
    from rich.text import Text

    return Text(str(value))


def cmd_server(args: argparse.Namespace, out: Console) -> int:
    from .server import serve_forever

    return serve_forever(args.data_dir, args.port, args.unix_socket)


def cmd_demo(args: argparse.Namespace, out: Console) -> int:
    from .demo import run_demo

    return run_demo(url=args.url, tasks=args.tasks, processes=args.processes,
                    threads=args.threads, console=out)


def cmd_schedule(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    table = Table("task", "queue", "schedule", "next run")
    for queue in app.known_queues():
        k = app.keys.queue(queue)
        planned = app.client.zrange(k.periodic, 0, -1, withscores=True)
        if not planned:
            continue
        defs = app.client.hgetall(k.periodic_def)
        defs = {_s(a): _s(b) for a, b in defs.items()}
        for name, score in planned:
            table.add_row(_plain(_s(name)), _plain(queue), _plain(defs.get(_s(name), "?")),
                          _when(float(score) / 1000))
    out.print(table)
    return 0


def cmd_dead(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    from . import admin

    records = admin.dead_records(app, [args.queue] if args.queue else None, args.limit)
    if args.name:
        records = [r for r in records if r.get("name") == args.name]
    if args.id:
        records = [r for r in records if r["id"] in set(args.id)]
    if args.action == "list":
        table = Table("id", "queue", "task", "reason", "error", "attempts", "died")
        for r in records:
            table.add_row(*[_plain(x) for x in (r["id"], r["queue"], r.get("name", "?"),
                            r.get("reason"), r.get("error") or "", r.get("attempts_used"))],
                          _when(r.get("time")))
        out.print(table)
        return 0
    if args.action == "requeue":
        n = admin.requeue_dead(app, records)
        out.print(f"requeued {n} dead task(s)")
        return 0
    n = admin.delete_dead(app, records)
    out.print(f"purged {n} dead task(s)")
    return 0


def cmd_workers(args: argparse.Namespace, out: Console) -> int:
    from .registry import live_workers

    table = Table("worker", "queues", "threads", "up since", "done", "failed", "running")
    for w in live_workers(default_app()):
        running = ", ".join(f"{r['task']} ({r['id']}, {r['for']:.1f}s)" for r in w["running"])
        table.add_row(_plain(w["id"]), _plain(", ".join(w["queues"]) or "all"),
                      str(w["threads"]), _when(w["started"]), str(w["done"]), str(w["failed"]),
                      _plain(running or "-"))
    out.print(table)
    return 0


def cmd_dashboard(args: argparse.Namespace, out: Console) -> int:
    from .web import serve

    return serve(args.url, args.host, args.port, args.token, args.prefix)


def cmd_worker(args: argparse.Namespace, out: Console) -> int:
    from .run import main as run_main

    return run_main(args.worker_args)


def _s(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpqueue", description="Inspect and run rpqueue.")
    add_connection_options(p)
    p.add_argument("--queue", help="show (or with --clear/--delete, change) one queue")
    p.add_argument("--page", type=int, default=0, help="page of the queue to show, from 0")
    p.add_argument("--per-page", type=int, default=50, help="items per page")
    p.add_argument("--skip-header", action="store_true", help="print tables without a header")
    p.add_argument("--show-args", action="store_true", help="show task arguments")
    p.add_argument("--clear", action="store_true", help="remove every waiting task of --queue")
    p.add_argument("--delete", metavar="ID", help="remove one waiting task of --queue")
    p.add_argument("--data", action="store_true", help="--queue names a data queue")
    p.set_defaults(func=cmd_info)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = sub.add_parser("server", help="run a local persistent Redis server (AOF on)")
    s.add_argument("--data-dir", help="where the data lives (default ./.rpqueue-data)")
    s.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default 6379)")
    s.add_argument("--unix-socket", help="listen on this unix socket instead of TCP")
    s.set_defaults(func=cmd_server)

    d = sub.add_parser("demo", help="run workers and a mixed workload, with live progress")
    d.add_argument("--url", help="use this Redis instead of starting an embedded one")
    d.add_argument("--tasks", type=int, default=2000, help="tasks to send (default 2000)")
    d.add_argument("--processes", type=int, default=2, help="worker processes")
    d.add_argument("--threads", type=int, default=2, help="threads per worker process")
    d.set_defaults(func=cmd_demo)

    sc = sub.add_parser("schedule", help="list periodic and cron tasks with their next run")
    add_connection_options(sc)
    sc.set_defaults(func=cmd_schedule)

    dl = sub.add_parser("dead", help="list, requeue or purge dead-lettered tasks")
    add_connection_options(dl)
    dl.add_argument("action", choices=("list", "requeue", "purge"), nargs="?", default="list")
    dl.add_argument("--queue", help="only this queue")
    dl.add_argument("--name", help="only tasks with this name")
    dl.add_argument("--id", action="append", help="only this task id (repeatable)")
    dl.add_argument("--limit", type=int, default=1000, help="at most this many")
    dl.set_defaults(func=cmd_dead)

    db = sub.add_parser("dashboard", help="serve the web dashboard (127.0.0.1:8765)")
    db.add_argument("--url", help="Redis URL (default: $RPQUEUE_URL, else localhost:6379)")
    db.add_argument("--prefix", help="key prefix (default 'rpqueue:')")
    db.add_argument("--host", default="127.0.0.1", help="address to listen on")
    db.add_argument("--port", type=int, default=8765, help="port to listen on")
    db.add_argument("--token", help="require this token (default: $RPQUEUE_DASHBOARD_TOKEN)")
    db.set_defaults(func=cmd_dashboard)

    ws = sub.add_parser("workers", help="list live worker processes")
    add_connection_options(ws)
    ws.set_defaults(func=cmd_workers)

    w = sub.add_parser("worker", help="run a worker (same options as python -m rpqueue.run)",
                       add_help=False)
    w.add_argument("worker_args", nargs=argparse.REMAINDER)
    w.set_defaults(func=cmd_worker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Console()
    if args.func not in (cmd_server, cmd_demo, cmd_worker, cmd_dashboard):
        configure(args)
    try:
        code: int = args.func(args, out)
    except (ValueError, TypeError) as exc:
        print(f"rpqueue: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__module__.startswith("redis"):
            print(f"rpqueue: cannot reach Redis: {exc}", file=sys.stderr)
            return 1
        raise
    return code


if __name__ == "__main__":
    sys.exit(main())
