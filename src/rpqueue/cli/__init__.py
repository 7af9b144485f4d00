"""The ``rpqueue`` command (also ``python -m rpqueue``).

With no subcommand it is the original inspection tool: a table of queues,
``--queue Q`` pages through one, ``--clear`` empties it, ``--delete ID``
removes one task, ``--data`` lists the data queues. Subcommands run the
embedded server, the demo, a worker and the dashboard, list schedules,
workers and dead letters, and change queue settings.

The verbs live in ``inspection`` (what is queued, schedules, workers),
``dead`` (dead letters) and ``ops`` (everything that runs or changes
something); ``parser`` wires them to the command line and ``common`` holds
what they share.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import default_app
from ..run import configure
from .common import UsageError, console
from .dead import cmd_dead
from .events import cmd_events
from .inspection import cmd_info, cmd_schedule, cmd_workers
from .ops import (
    cmd_dashboard,
    cmd_demo,
    cmd_flush,
    cmd_limit,
    cmd_priority,
    cmd_prune,
    cmd_scheduling,
    cmd_server,
    cmd_weight,
    cmd_worker,
)
from .parser import INFO_DEFAULTS, parser

__all__ = ["main", "parser"]

# Verbs that make their own connection (or none): no connection to set up here.
_OWN_CONNECTION = (cmd_server, cmd_demo, cmd_worker, cmd_dashboard)
# Verbs that can print JSON (the rest run something or change one setting).
_READS = (cmd_info, cmd_schedule, cmd_workers, cmd_dead, cmd_flush, cmd_scheduling,
          cmd_priority, cmd_weight, cmd_limit, cmd_prune, cmd_events)
# Options of the verb-less command that a verb takes too (given before it).
_SHARED_INFO: dict[object, tuple[str, ...]] = {cmd_dead: ("queue",)}


def _settle(args: argparse.Namespace) -> None:
    """Fill in the verb-less options and refuse those the verb does not take."""
    given = [k for k in INFO_DEFAULTS if k in vars(args)]
    if args.func is cmd_info:
        for key, value in INFO_DEFAULTS.items():
            vars(args).setdefault(key, value)
        if args.queue is None:
            needs = [k for k in ("page", "clear", "delete", "show_args") if k in given
                     and getattr(args, k) not in (None, False)]
            if needs:
                raise UsageError(f"--{needs[0].replace('_', '-')} needs --queue QUEUE")
        return
    stray: list[str] = [k for k in given if k not in _SHARED_INFO.get(args.func, ())]
    if stray:
        raise UsageError(f"--{stray[0].replace('_', '-')} applies only without a command "
                         "(rpqueue --queue QUEUE ...)")
    vars(args).setdefault("queue", None)
    if args.json and args.func not in _READS:
        raise UsageError("--json applies to the commands that read (the queue table, "
                         "schedule, workers, dead, flush, scheduling, priority, weight, limit)")
    if args.func is cmd_server and any(getattr(args, k) not in (None, False) for k in (
            "url", "prefix", "host", "db", "password", "pwprompt", "unixpath")):
        raise UsageError("rpqueue server takes --port (and --data-dir, --unix-socket), "
                         "not the other connection options")


def _redis_error(exc: Exception) -> str:
    """One line for an error from Redis or the redis package."""
    where = default_app().describe_connection()
    name = type(exc).__name__
    if name in ("ConnectionError", "TimeoutError") or "Connection" in name:
        return (f"cannot reach Redis at {where}: {exc} (point rpqueue at your server with "
                "--url redis://HOST:PORT/DB or RPQUEUE_URL)")
    return f"Redis at {where} answered with an error: {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rpqueue`` command; returns its exit code."""
    args = parser().parse_args(argv)
    out = console()
    try:
        _settle(args)
        if args.func not in _OWN_CONNECTION:
            configure(args)
        code: int = args.func(args, out)
    except (ValueError, TypeError, KeyError) as exc:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"rpqueue: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rpqueue: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Connection and server errors: whatever the redis package raised.
        if any(c.__module__.startswith("redis") for c in type(exc).__mro__):
            print(f"rpqueue: {_redis_error(exc)}", file=sys.stderr)
            return 1
        raise
    return code
