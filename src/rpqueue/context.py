"""What the layers between storage and the app object share.

A ``Context`` bundles the store (the door to Redis), the tasks this
process defined, and the lifecycle hooks. Data queues, the read model, the
scheduler of periodic tasks and the worker take a Context; the app object
(``app.RPQueue``) owns one and is the only thing above it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .hooks import Hooks
from .storage import Store
from .storage.keys import DEFAULT_PREFIX
from .task import Task

log = logging.getLogger("rpqueue")

DEFAULT_QUEUE = "default"
DEADLETTER_QUEUE = "DEADLETTER_QUEUE"
MINIMUM_DELAY = 1


class Context:
    """The store, task registry and hooks of one app."""

    def __init__(self, name: str = "default", prefix: str = DEFAULT_PREFIX) -> None:
        self.name = name
        self.store = Store(prefix)
        self.registry: dict[str, Task] = {}
        self.hooks = Hooks()

    def emit(self, event: str, *args: Any) -> None:
        self.hooks.emit(event, *args)

    # -- queues --------------------------------------------------------------------

    def ordered_queues(self, queues: list[str] | None = None) -> list[str]:
        """Queues in the order a worker serves them.

        Named queues keep the order given. Otherwise every known queue:
        those with a priority first, lowest value first, then the rest by name.
        """
        from .storage.keys import normalize_queue

        if queues:
            return [normalize_queue(q) for q in queues]
        pri = self.store.priorities()
        names = set(self.store.known_queues()) | set(pri)
        return sorted(names, key=lambda q: (q not in pri, pri.get(q, 0.0), q))

    # -- the task registry ---------------------------------------------------------

    def register(self, task: Task) -> None:
        old = self.registry.get(task.name)
        if old is not None and old.function is not task.function:
            log.warning("task %s defined twice; the later definition wins", task.name)
        self.registry[task.name] = task

    def publish_registry(self) -> None:
        """Write this process's task settings to Redis, for call_task and known_tasks."""
        self.store.publish_tasks({name: json.dumps(t.settings())
                                  for name, t in self.registry.items()})

    def read_registry(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, raw in self.store.read_tasks().items():
            try:
                settings = json.loads(raw)
            except ValueError:
                continue
            if isinstance(settings, dict):
                out[name] = settings
        return out


# The context of each app made by app.new_rpqueue, by app name: lets lower
# layers (a Data queue made without an app) find the default app's context
# without importing the package top.
CONTEXTS: dict[str, Context] = {}


def default_context() -> Context:
    """The context of the default app (the one the module-level API uses)."""
    return CONTEXTS["default"]


def context_of(owner: Any) -> Context:
    """The context of an app, or the context itself."""
    ctx = getattr(owner, "ctx", owner)
    if not isinstance(ctx, Context):
        raise TypeError(f"expected an rpqueue app, not {type(owner).__name__}")
    return ctx
