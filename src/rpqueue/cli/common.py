"""What every verb of the command shares: usage errors, checking queue and
task names against what Redis knows, JSON output, tables that suit where
they are printed, and asking before a destructive step."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..context import Context
from ..views import queues


class UsageError(ValueError):
    """A command line that names something that is not there, or asks for a
    combination that means nothing; printed as one line, exit code 2."""


def console() -> Console:
    """The console verbs print to: no highlighting of numbers or quotes in
    messages (they are data, not emphasis); colour only on a terminal;
    messages never broken across lines (tables still fit the width)."""
    return Console(highlight=False, soft_wrap=True)


def table(out: Console, *columns: str, **options: Any) -> Table:
    """A table drawn with box characters on a terminal and plain ASCII
    otherwise (piped output is read by tools and other people's terminals)."""
    if not out.is_terminal:
        options.setdefault("box", box.ASCII)
    return Table(*columns, **options)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (never through rich: no wrapping)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def closest_first(name: str, known: Iterable[str]) -> list[str]:
    """``known`` sorted by likeness to ``name`` (most alike first)."""
    names = sorted(set(known))
    scored = sorted(names, key=lambda k: (-difflib.SequenceMatcher(None, name, k).ratio(), k))
    return scored


def unknown(kind: str, name: str, known: Iterable[str], hint: str = "") -> UsageError:
    """The error for a name that is not there, listing the known ones."""
    names = closest_first(name, known)
    listed = ", ".join(repr(n) for n in names[:10]) + (", ..." if len(names) > 10 else "")
    text = f"unknown {kind} {name!r}; " + (f"known: {listed}" if names else f"there is no {kind} yet")
    return UsageError(text + (f" ({hint})" if hint else ""))


def queue_names(ctx: Context) -> list[str]:
    """Every task queue Redis knows: used, given a priority or paused."""
    return [q.name for q in queues.overview(ctx).queues]


def data_queue_names(ctx: Context) -> list[str]:
    """Every data queue (``rpqueue.Data``) Redis knows."""
    from ..data.base import run_steps
    from ..storage.data_calls import data_queue_names as names_call

    names: list[str] = run_steps(ctx, [names_call(ctx.store.keys)])[0]
    return names


def check_queue(ctx: Context, name: str, create: bool = False, hint: str = "") -> None:
    """Refuse a task queue name Redis does not know, unless ``create``."""
    if create:
        return
    known = queue_names(ctx)
    if name not in known:
        raise unknown("queue", name, known, hint)


def confirm(question: str, yes: bool, refusal: str) -> bool:
    """True when ``yes`` or a person at a terminal answers y; without a
    terminal (and without ``yes``) raise ``refusal`` as a usage error."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(refusal)
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
