"""Helpers for the CLI tests (tests/integration/test_cli_*.py)."""

from __future__ import annotations

from typing import Any

import rpqueue
from rpqueue.storage.wire import FailMode


def noted(*args: Any, **kwargs: Any) -> None:
    """A task body for tasks that only need to exist."""


def bury(app: rpqueue.RPQueue, queue: str, n: int, name: str = "cli_support.victim") -> list[str]:
    """Dead-letter ``n`` calls of a task called ``name`` in ``queue`` of
    ``app``, the way a worker does: take each, then fail it for good."""
    task: Any = app.registry.get(name) or app.task(name=name, queue=queue)(noted)
    ids = [task.execute(str(i), _queue=queue).taskid for i in range(n)]
    for _ in range(n):
        taken = app.store.run(app.store.calls.take(queue, 300)).taken
        assert taken is not None
        app.store.run(app.store.calls.fail(queue, taken.key, taken.token, "boom",
                                           FailMode.DEAD, "test"))
    return ids
