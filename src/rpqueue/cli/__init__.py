"""The ``rpqueue`` command (also ``python -m rpqueue``).

With no subcommand it is the original inspection tool: a table of queues,
``--queue Q`` pages through one, ``--clear`` empties it, ``--delete ID``
removes one task. Subcommands run the embedded server, the demo, a worker,
and list schedules and dead letters.

The verbs live in ``inspection`` (what is queued, schedules, workers),
``dead`` (dead letters) and ``ops`` (everything that runs or changes
something); ``parser`` wires them to the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from ..run import configure
from .ops import cmd_dashboard, cmd_demo, cmd_server, cmd_worker
from .parser import parser

__all__ = ["main", "parser"]

# Verbs that make their own connection (or none): no connection options to apply.
_OWN_CONNECTION = (cmd_server, cmd_demo, cmd_worker, cmd_dashboard)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rpqueue`` command; returns its exit code."""
    args = parser().parse_args(argv)
    out = Console()
    if args.func not in _OWN_CONNECTION:
        configure(args)
    try:
        code: int = args.func(args, out)
    except (ValueError, TypeError) as exc:
        print(f"rpqueue: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Connection and server errors: whatever the redis package raised.
        if type(exc).__module__.startswith("redis"):
            print(f"rpqueue: cannot reach Redis: {exc}", file=sys.stderr)
            return 1
        raise
    return code
