"""``rpqueue events``: follow task state changes like ``tail -f``
(``RPQueue.events``; events are opt-in, see docs/TASK_STATE.md)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from rich.console import Console

from .. import default_app
from ..events import Event


def _clean(value: object) -> str:
    """Task names, ids and notes are data: control characters are shown
    escaped, so none can move the cursor or forge a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))


def _line(e: Event) -> str:
    when = datetime.datetime.fromtimestamp(e.time).strftime("%H:%M:%S.%f")[:-3]
    extra = ""
    if e.event == "progress":
        done, total, note = e.data.get("done"), e.data.get("total"), e.data.get("note")
        if done is not None:
            extra = f" {done:g}" + (f"/{total:g}" if total is not None else "")
        if note:
            extra += f" {note}"
    return (f"{when} {_clean(e.queue)} {e.event:<9} {_clean(e.name)} {_clean(e.id)} "
            f"attempt {e.attempt}{_clean(extra)}")


def cmd_events(args: argparse.Namespace, out: Console) -> int:
    """Print events of the given queues (all by default) as they come: one
    line each, or one JSON object per line with --json."""
    since: float | str | None = args.since
    if isinstance(since, str) and since.replace(".", "", 1).isdigit() and "." in since:
        since = float(since)
    elif isinstance(since, str) and since.isdigit() and len(since) < 13:
        since = float(since)  # unix seconds; a stream id has 13-digit milliseconds
    app = default_app()
    if not app.store.events_maxlen and not args.json:
        print("note: this process does not write events; workers and producers must turn "
              "them on (RPQUEUE_EVENTS=1 or app.set_events())", file=sys.stderr)
    for e in app.events(args.queues or None, since=since, timeout=args.idle):
        if args.json:
            sys.stdout.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(_line(e) + "\n")
        sys.stdout.flush()
    return 0
