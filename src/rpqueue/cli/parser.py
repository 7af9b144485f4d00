"""The argument parser of the ``rpqueue`` command.

Every option means the same before and after the verb: the main parser
holds the defaults, and each verb's copy of an option is added with
``argparse.SUPPRESS`` as its default, so that leaving it out after the verb
never undoes what was given before it (``rpqueue --url X dead purge`` and
``rpqueue dead purge --url X`` both purge X's dead letters).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..run import add_connection_options, add_worker_options
from .dead import cmd_dead
from .events import cmd_events
from .inspection import cmd_info, cmd_schedule, cmd_workers
from .ops import (
    cmd_dashboard,
    cmd_demo,
    cmd_flush,
    cmd_limit,
    cmd_migrate,
    cmd_pause,
    cmd_priority,
    cmd_prune,
    cmd_scheduling,
    cmd_server,
    cmd_weight,
    cmd_worker,
)

S = argparse.SUPPRESS

# The options of the command without a verb (the queue table), with their
# defaults; given with a verb that does not take them, they are refused.
INFO_DEFAULTS: dict[str, Any] = {"queue": None, "page": None, "per_page": 50,
                                 "skip_header": False, "show_args": False, "clear": False,
                                 "delete": None, "data": False}

DEAD_HELP = """actions:
  list     show the dead letters (the default)
  requeue  queue them again, each with its attempts renewed, and remove the dead letter
  purge    delete them for good (with no --queue, --name or --id: every dead letter;
           asks first on a terminal, needs --yes otherwise)

--queue, --name and --id choose the dead letters first; --limit then caps how many
are acted on, and what is left over is reported."""


def _json(p: argparse.ArgumentParser, suppress: bool = True) -> None:
    p.add_argument("--json", action="store_true", default=S if suppress else False,
                   help="print JSON instead of a table (for scripts)")


def _verb(sub: Any, name: str, help: str, json: bool = False, **kw: Any) -> Any:
    p = sub.add_parser(name, help=help, description=kw.pop("description", help[0].upper()
                                                                          + help[1:] + "."),
                       **kw)
    add_connection_options(p, suppress=True)
    if json:
        _json(p)
    return p


def parser() -> argparse.ArgumentParser:
    """Every verb and option of the ``rpqueue`` command."""
    p = argparse.ArgumentParser(
        prog="rpqueue", description="Inspect and run rpqueue. Without a command: the table "
        "of task queues (--data: data queues), or with --queue a page of one queue.")
    add_connection_options(p)
    _json(p, suppress=False)
    g = p.add_argument_group("without a command")
    g.add_argument("--queue", default=S, help="show (or with --clear/--delete, change) one queue")
    g.add_argument("--page", type=int, default=S, help="page of --queue to show, from 0")
    g.add_argument("--per-page", type=int, default=S, help="items per page (default 50)")
    g.add_argument("--skip-header", action="store_true", default=S,
                   help="print tables without a header")
    g.add_argument("--show-args", action="store_true", default=S,
                   help="show the arguments of each task of --queue")
    g.add_argument("--clear", action="store_true", default=S,
                   help="remove every waiting task of --queue")
    g.add_argument("--delete", metavar="ID", default=S, help="remove one waiting task of --queue")
    g.add_argument("--data", action="store_true", default=S,
                   help="list data queues (rpqueue.Data) with their counts; with --queue "
                        "--clear, clear a data queue")
    p.set_defaults(func=cmd_info)
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    s = _verb(sub, "server", "run a local persistent Redis server (AOF on)")
    s.add_argument("--data-dir", help="where the data lives (default ./.rpqueue-data)")
    s.add_argument("--unix-socket", help="listen on this unix socket instead of TCP (--port, "
                   "default 6379, is the TCP port on 127.0.0.1)")
    s.set_defaults(func=cmd_server)

    d = _verb(sub, "demo", "run workers and a mixed workload, with live progress (without "
              "--url or --host: on an embedded Redis)")
    d.add_argument("--tasks", type=int, default=2000, help="tasks to send (default 2000)")
    d.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    d.add_argument("--threads", type=int, default=2,
                   help="threads per worker process (default 2)")
    d.set_defaults(func=cmd_demo)

    sc = _verb(sub, "schedule", "list periodic and cron tasks with their next run", json=True)
    sc.set_defaults(func=cmd_schedule)

    dl = _verb(sub, "dead", "list, requeue or purge dead-lettered tasks", json=True,
               description="List, requeue or purge dead-lettered tasks.", epilog=DEAD_HELP,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    dl.add_argument("action", choices=("list", "requeue", "purge"), nargs="?", default="list",
                    help="list (default), requeue or purge; see below")
    dl.add_argument("--queue", default=S, help="only this queue")
    dl.add_argument("--name", help="only tasks with this name")
    dl.add_argument("--id", action="append", help="only this task id (repeatable)")
    dl.add_argument("--limit", type=int, default=1000,
                    help="act on at most this many (default 1000)")
    dl.add_argument("--yes", action="store_true", help="purge without asking")
    dl.set_defaults(func=cmd_dead)

    db = _verb(sub, "dashboard", "serve the web dashboard (on 127.0.0.1:8765)")
    db.add_argument("--listen", default="127.0.0.1:8765", metavar="ADDR[:PORT]",
                    help="address (and port) the dashboard listens on (default "
                         "127.0.0.1:8765)")
    db.add_argument("--token", help="require this token (default: $RPQUEUE_DASHBOARD_TOKEN)")
    db.set_defaults(func=cmd_dashboard)

    ws = _verb(sub, "workers", "list live worker processes", json=True)
    ws.set_defaults(func=cmd_workers)

    ev = _verb(sub, "events", "follow task state changes as they happen, like tail -f "
               "(events are opt-in: RPQUEUE_EVENTS=1)", json=True)
    ev.add_argument("queues", nargs="*", metavar="QUEUE", help="these queues (default: all)")
    ev.add_argument("--since", metavar="T", help="start after unix time T or stream id T "
                    "(default: from now on; 0: everything kept)")
    ev.add_argument("--idle", type=float, metavar="S", help="exit after S seconds without "
                    "an event (default: follow until interrupted)")
    ev.set_defaults(func=cmd_events)

    for name, resume, what in (("pause", False, "stop workers taking tasks from queues "
                                "(producers may still queue them)"),
                               ("resume", True, "let workers take from paused queues again")):
        pa = _verb(sub, name, what)
        pa.add_argument("queues", nargs="+", metavar="QUEUE")
        if not resume:
            pa.add_argument("--create", action="store_true",
                            help="also pause queues nothing has used yet")
        pa.set_defaults(func=cmd_pause, resume=resume, create=False)

    sg = _verb(sub, "scheduling", "show or set how workers share out their queues "
               "(strict priority, weighted, aging)", json=True)
    sg.add_argument("mode", nargs="?", metavar="{strict,weighted,aging}",
                    help="strict: priority order (default); weighted: by queue weight; "
                         "aging: a queue whose next task waited over --age seconds first")
    sg.add_argument("--age", type=float, metavar="S", help="seconds (aging only)")
    sg.set_defaults(func=cmd_scheduling)

    for name, func, what, value in (
            ("priority", cmd_priority, "show or set a queue's priority (lowest served first)",
             "a number; queues without one come after those with one"),
            ("weight", cmd_weight, "show or set a queue's weight in the weighted mode",
             "a number > 0 (default 1)")):
        pr = _verb(sub, name, what, json=True)
        pr.add_argument("target", metavar="QUEUE")
        pr.add_argument("value", nargs="?", type=float, metavar="N", help=value)
        pr.add_argument("--create", action="store_true",
                        help="allow a queue nothing has used yet")
        pr.set_defaults(func=func)

    lm = _verb(sub, "limit", "show or set a queue's maximum length", json=True)
    lm.add_argument("target", metavar="QUEUE")
    lm.add_argument("max_len", nargs="?", type=int, metavar="N",
                    help="most tasks waiting or delayed")
    lm.add_argument("--overflow", choices=["refuse", "drop_oldest"], default="refuse",
                    help="when full: refuse new tasks (QueueFull), or dead-letter the oldest "
                         "of the least urgent priority (default refuse)")
    lm.add_argument("--off", action="store_true", help="remove the limit")
    lm.add_argument("--create", action="store_true", help="allow a queue nothing has used yet")
    lm.set_defaults(func=cmd_limit)

    fl = _verb(sub, "flush", "wait until the tasks queued now have started (or finished)",
               json=True)
    fl.add_argument("--complete", action="store_true", help="wait until they have finished")
    fl.add_argument("--force-delayed", action="store_true",
                    help="make delayed and periodic tasks due now")
    fl.add_argument("--give-up-after", dest="flush_timeout", type=float, metavar="S",
                    help="stop waiting after S seconds (exit code 1 if tasks still wait; "
                         "default: wait as long as it takes)")
    fl.set_defaults(func=cmd_flush)

    pn = _verb(sub, "prune", "forget queue names that are empty, unused and without settings",
               json=True)
    pn.add_argument("--idle", type=float, default=7 * 86400.0, metavar="S",
                    help="only names registered more than S seconds ago (default 7 days)")
    pn.add_argument("--dry-run", action="store_true", help="list them, forget nothing")
    pn.set_defaults(func=cmd_prune)

    mg = _verb(sub, "migrate-legacy", "move tasks queued by rpqueue 0.33 into this layout "
               "(see docs/MIGRATING.md)")
    mg.add_argument("--legacy-prefix", default="",
                    help="the key prefix rpqueue 0.33 used (set_key_prefix; default none)")
    mg.add_argument("--dry-run", action="store_true", help="count per queue, write nothing")
    mg.add_argument("--legacy-queue", dest="legacy_queue", action="append", metavar="QUEUE",
                    help="also look at this 0.33 queue (repeatable; those in its queues:all "
                         "are always included)")
    mg.set_defaults(func=cmd_migrate)

    w = sub.add_parser("worker", help="run a worker (the options of python -m rpqueue.run)",
                       description="Run rpqueue worker processes. Queues named here are "
                       "served in the order given; with none, every known queue in "
                       "priority order.")
    add_worker_options(w)
    add_connection_options(w, suppress=True)
    w.set_defaults(func=cmd_worker)
    return p
