"""The ``rpqueue`` command (also ``python -m rpqueue``).

With no subcommand it is the original inspection tool: a table of queues,
``--queue Q`` pages through one, ``--clear`` empties it, ``--delete ID``
removes one task. Subcommands run the embedded server, the demo, a worker,
and list schedules and dead letters.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from . import default_app
from .run import add_connection_options, configure


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    if ts >= 2**53 / 1000:  # periodic.NEVER_MS: a schedule with no further run
        return "never"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def cmd_info(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    if args.queue is None:
        table = Table("queue", "size", "seen", "priority", "paused", "limit",
                      show_header=not args.skip_header)
        pri = app.priorities()
        paused = set(app.paused_queues())
        rows = app.queue_sizes()
        # A queue paused before anything used it is listed too.
        rows += [(q, 0, 0.0) for q in sorted(paused - {r[0] for r in rows})]
        for queue, size, seen in rows:
            limit = app.queue_limit(queue)
            table.add_row(_plain(queue), str(size), _when(seen), str(pri.get(queue, "")),
                          "paused" if queue in paused else "",
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
               _when(item.get("due")), item.get("priority", ""), item.get("unique_key", "")]
        if args.show_args:
            row += [json.dumps(item.get("args")), json.dumps(item.get("kwargs"))]
        # Markup off: task names and arguments are data, never formatting.
        table.add_row(*[_plain(c) for c in row])
    out.print(table)
    return 0


def _plain(value: Any) -> Any:
    from rich.text import Text

    return Text(str(value))


@contextlib.contextmanager
def _progress(out: Console, what: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; nothing otherwise. Yields ``update(done)``."""
    if not out.is_terminal or total <= 0:
        yield lambda done: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=out, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=min(done, total))


def _clear(app: Any, args: argparse.Namespace, out: Console) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from .storage.keys import normalize_queue

    name = normalize_queue(args.queue)
    total = 0
    if not args.data and out.is_terminal:
        info = app.queue_info(name)
        total = info["waiting"] + info["delayed"]
    with _progress(out, f"clearing {name!r}", total) as update, \
            ThreadPoolExecutor(1) as pool:
        job = pool.submit(app.clear_queue, name, is_data=args.data)
        while total and not job.done():
            time.sleep(0.1)
            with contextlib.suppress(Exception):
                info = app.queue_info(name)
                update(total - info["waiting"] - info["delayed"])
        removed = job.result()
    out.print(f"cleared {removed} item(s) from {args.queue!r}")
    return 0


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

    records = admin.dead_records(app.ctx, [args.queue] if args.queue else None, args.limit)
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
        n = 0
        with _progress(out, "requeueing dead tasks", len(records)) as update:
            for start in range(0, len(records), 100):
                n += admin.requeue_dead(app.ctx, records[start:start + 100])
                update(start + 100)
        out.print(f"requeued {n} dead task(s)")
        return 0
    n = admin.delete_dead(app.ctx, records)
    out.print(f"purged {n} dead task(s)")
    return 0


def cmd_workers(args: argparse.Namespace, out: Console) -> int:
    from .registry import live_workers

    table = Table("worker", "queues", "threads", "up since", "done", "failed", "running")
    for w in live_workers(default_app().ctx):
        running = ", ".join(f"{r['task']} ({r['id']}, {r['for']:.1f}s)" for r in w["running"])
        table.add_row(_plain(w["id"]), _plain(", ".join(w["queues"]) or "all"),
                      str(w["threads"]), _when(w["started"]), str(w["done"]), str(w["failed"]),
                      _plain(running or "-"))
    out.print(table)
    return 0


def cmd_dashboard(args: argparse.Namespace, out: Console) -> int:
    from .web import serve

    return serve(args.url, args.host, args.port, args.token, args.prefix)


def cmd_pause(args: argparse.Namespace, out: Console) -> int:

    app = default_app()
    for queue in args.queues:
        if args.resume:
            done = app.resume_queue(queue)
            out.print(_plain(f"resumed {queue!r}" if done else f"{queue!r} was not paused"))
        else:
            done = app.pause_queue(queue)
            out.print(_plain(f"paused {queue!r}" if done else f"{queue!r} was already paused"))
    return 0


def cmd_scheduling(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    if args.mode is not None:
        app.set_scheduling(args.mode, args.age)
    elif args.age is not None:
        raise ValueError("--age needs a mode: rpqueue scheduling aging --age S")
    current = app.get_scheduling()
    line = f"scheduling: {current['mode']}"
    if current["age"] is not None:
        line += f", age {current['age']:g}s"
    out.print(_plain(line))
    weights = app.queue_weights()
    if current["mode"] == "weighted" and weights:
        listed = ", ".join(f"{q!r} {w:g}" for q, w in sorted(weights.items()))
        out.print(_plain(f"weights: {listed} (others 1)"), soft_wrap=True)
    return 0


def cmd_weight(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    if args.weight is not None:
        app.set_queue_weight(args.queue, args.weight)
    weight = app.queue_weights().get(args.queue)
    shown = "1 (default)" if weight is None else f"{weight:g}"
    out.print(_plain(f"weight of {args.queue!r}: {shown}"))
    return 0


def cmd_limit(args: argparse.Namespace, out: Console) -> int:
    app = default_app()
    if args.off:
        app.set_queue_limit(args.queue, None)
    elif args.max_len is not None:
        app.set_queue_limit(args.queue, args.max_len, args.overflow)
    limit = app.queue_limit(args.queue)
    shown = (f"max_len {limit['max_len']}, overflow {limit['overflow']}" if limit
             else "unbounded")
    out.print(_plain(f"limit of {args.queue!r}: {shown}"))
    return 0


def cmd_flush(args: argparse.Namespace, out: Console) -> int:
    import logging
    import re

    app = default_app()
    logger = logging.getLogger("rpqueue")
    # flush_tasks reports "<pending> of <total> tasks pending" in its log
    # every log_every seconds; the bar follows those records.
    pattern = re.compile(r"flush_tasks: (\d+) of (\d+) tasks pending")
    state: dict[str, Any] = {}

    class Follow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = pattern.match(record.getMessage())
            if found:
                pending, total = int(found.group(1)), int(found.group(2))
                if "stack" not in state and total:
                    state["stack"] = contextlib.ExitStack()
                    state["update"] = state["stack"].enter_context(
                        _progress(out, "tasks pending", total))
                if "update" in state:
                    state["update"](total - pending)

    follow = Follow()
    old_level = logger.level
    if out.is_terminal:
        logger.addHandler(follow)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        done, started, waiting = app.flush_tasks(
            complete=args.complete, force_delayed=args.force_delayed,
            timeout=args.flush_timeout, log_every=0.2 if out.is_terminal else 0)
    finally:
        logger.removeHandler(follow)
        logger.setLevel(old_level)
        if "stack" in state:
            state["stack"].close()
    out.print(f"{len(done)} done, {len(started)} started, {len(waiting)} still waiting")
    return 1 if waiting else 0


def cmd_migrate(args: argparse.Namespace, out: Console) -> int:
    from .legacy import migrate_legacy

    app = default_app()
    total = 0
    if not args.dry_run and out.is_terminal:
        total = migrate_legacy(app.ctx, args.legacy_prefix, True, args.legacy_queue).moved
    with _progress(out, "moving tasks", total) as update:
        report = migrate_legacy(app.ctx, args.legacy_prefix, args.dry_run, args.legacy_queue,
                                progress=update)
    table = Table("queue", "waiting", "delayed", "retried", "moved", "left in place",
                  title="would move (dry run, nothing written)" if args.dry_run else "moved")
    for q in report.queues:
        table.add_row(_plain(q.queue), str(q.waiting), str(q.delayed), str(q.retried),
                      str(q.moved), str(len(q.left)))
    out.print(table)

    def say(line: str) -> None:
        out.print(_plain(line), soft_wrap=True)  # one line each, whatever the width

    verb = "would move" if args.dry_run else "moved"
    say(f"{verb} {report.moved} task(s) from {sum(1 for q in report.queues if q.moved)} "
        "queue(s)")
    for q in report.queues:
        if q.dropped:
            say(f"{q.queue}: {'would drop' if args.dry_run else 'dropped'} "
                f"{q.dropped} id(s) without a message (0.33 skips those too)")
        for taskid, reason in sorted(q.left.items()):
            say(f"{q.queue}: left {taskid}: {reason}")
    for queue, pri in sorted(report.priorities.items()):
        say(f"priority of {queue!r}: {pri:g} "
            f"({'would be copied' if args.dry_run else 'copied'})")
    if report.dead_letters:
        say(f"left {report.dead_letters} 0.33 dead letter(s) in place (see docs/MIGRATING.md)")
    for problem in report.problems:
        say(problem)
    return 0


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

    pa = sub.add_parser("pause", help="stop workers taking tasks from queues (producers "
                        "may still queue them)")
    add_connection_options(pa)
    pa.add_argument("queues", nargs="+", metavar="QUEUE")
    pa.set_defaults(func=cmd_pause, resume=False)

    re_ = sub.add_parser("resume", help="let workers take from paused queues again")
    add_connection_options(re_)
    re_.add_argument("queues", nargs="+", metavar="QUEUE")
    re_.set_defaults(func=cmd_pause, resume=True)

    sg = sub.add_parser("scheduling", help="show or set how workers share out their queues "
                        "(strict priority, weighted, aging)")
    add_connection_options(sg)
    sg.add_argument("mode", nargs="?", metavar="{strict,weighted,aging}",
                    help="strict: priority order (default); weighted: by queue weight; "
                         "aging: a queue whose next task waited over --age seconds first")
    sg.add_argument("--age", type=float, metavar="S", help="seconds (aging only)")
    sg.set_defaults(func=cmd_scheduling)

    wt = sub.add_parser("weight", help="show or set a queue's weight in the weighted mode")
    add_connection_options(wt)
    wt.add_argument("queue", metavar="QUEUE")
    wt.add_argument("weight", nargs="?", type=float, metavar="N", help="a number > 0 "
                    "(default 1)")
    wt.set_defaults(func=cmd_weight)

    lm = sub.add_parser("limit", help="show or set a queue's maximum length")
    add_connection_options(lm)
    lm.add_argument("queue", metavar="QUEUE")
    lm.add_argument("max_len", nargs="?", type=int, metavar="N",
                    help="most tasks waiting or delayed")
    lm.add_argument("--overflow", choices=["refuse", "drop_oldest"], default="refuse",
                    help="when full: refuse new tasks (QueueFull), or dead-letter the oldest "
                         "of the least urgent priority")
    lm.add_argument("--off", action="store_true", help="remove the limit")
    lm.set_defaults(func=cmd_limit)

    fl = sub.add_parser("flush", help="wait until the tasks queued now have started (or "
                        "finished)", conflict_handler="resolve")
    add_connection_options(fl)
    fl.add_argument("--complete", action="store_true", help="wait until they have finished")
    fl.add_argument("--force-delayed", action="store_true",
                    help="make delayed and periodic tasks due now")
    # Replaces the connection --timeout here; the socket timeout stays at its default.
    fl.add_argument("--timeout", dest="flush_timeout", type=float, metavar="S",
                    help="give up after S seconds (exit code 1 if tasks still wait)")
    fl.set_defaults(func=cmd_flush)

    mg = sub.add_parser("migrate-legacy", help="move tasks queued by rpqueue 0.33 into this "
                        "layout (see docs/MIGRATING.md)")
    add_connection_options(mg)
    mg.add_argument("--legacy-prefix", default="",
                    help="the key prefix rpqueue 0.33 used (set_key_prefix; default none)")
    mg.add_argument("--dry-run", action="store_true", help="count per queue, write nothing")
    mg.add_argument("--queue", dest="legacy_queue", action="append", metavar="QUEUE",
                    help="also look at this 0.33 queue (repeatable; those in its queues:all "
                         "are always included)")
    mg.set_defaults(func=cmd_migrate)

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
