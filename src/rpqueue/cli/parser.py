"""The argument parser of the ``rpqueue`` command."""

from __future__ import annotations

import argparse

from ..run import add_connection_options
from .dead import cmd_dead
from .inspection import cmd_info, cmd_schedule, cmd_workers
from .ops import (
    cmd_dashboard,
    cmd_demo,
    cmd_flush,
    cmd_limit,
    cmd_migrate,
    cmd_pause,
    cmd_scheduling,
    cmd_server,
    cmd_weight,
    cmd_worker,
)


def parser() -> argparse.ArgumentParser:
    """Every verb and option of the ``rpqueue`` command."""
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
