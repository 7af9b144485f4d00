"""Lifecycle hooks: objects told before and after each task runs.

A hook is any object with some of ``before_task(running)``,
``after_task(running, result, error)``, ``on_retry(task, taskid, delay)``
and ``on_dead(task, taskid, reason, error)``; missing methods are skipped.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("rpqueue")


class Hooks:
    """The hooks of one app, called in the order they were added."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def add(self, hook: Any) -> None:
        self.items.append(hook)

    def remove(self, hook: Any) -> None:
        if hook in self.items:
            self.items.remove(hook)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __contains__(self, hook: Any) -> bool:
        return hook in self.items

    def __iter__(self) -> Any:
        return iter(list(self.items))

    def emit(self, event: str, *args: Any) -> None:
        for hook in list(self.items):
            method = getattr(hook, event, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception:
                # A broken hook (tracing, metrics) must never fail the task.
                log.exception("hook %r failed in %s", hook, event)
