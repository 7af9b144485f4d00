"""How the command line shows things: times, plain text cells, progress bars."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console
from rich.text import Text


def when(ts: float | None) -> str:
    """A unix time as UTC, '-' for none and 'never' for a schedule with no further run."""
    if not ts:
        return "-"
    if ts >= 2**53 / 1000:  # periodic.NEVER_MS: a schedule with no further run
        return "never"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def plain(value: Any) -> Text:
    """A table cell with markup off: task names and arguments are data, never formatting."""
    return Text(str(value))


@contextlib.contextmanager
def progress(out: Console, what: str, total: int) -> Iterator[Callable[[int], None]]:
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
