"""Our side of the migration: tasks with the names rpqueue 0.33 queued.

Each run is recorded as one JSON object on the list ``test:legacy:ran``
through the worker's own connection.
"""

from __future__ import annotations

import json
from typing import Any

import rpqueue

RAN = "test:legacy:ran"


def _note(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    running = rpqueue.current_task()
    record = {"task": name, "args": list(args), "kwargs": kwargs,
              "id": running.taskid if running else None,
              "queue": running.queue if running else None}
    rpqueue.default_app().client.rpush(RAN, json.dumps(record))


@rpqueue.task(queue="alpha", name="legacy_tasks.add")
def add(*args: Any, **kwargs: Any) -> None:
    _note("add", args, kwargs)


@rpqueue.task(queue="beta", name="legacy_tasks.greet")
def greet(*args: Any, **kwargs: Any) -> None:
    _note("greet", args, kwargs)


@rpqueue.task(queue="alpha", name="legacy_tasks.retrying", attempts=3)
def retrying(*args: Any, **kwargs: Any) -> None:
    _note("retrying", args, kwargs)


@rpqueue.task(queue="vis", name="legacy_tasks.vis_retry", vis_timeout=1, attempts=3)
def vis_retry(*args: Any, **kwargs: Any) -> None:
    _note("vis_retry", args, kwargs)


@rpqueue.task(queue="pq", name="legacy_tasks.soon")
def soon(*args: Any, **kwargs: Any) -> None:
    _note("soon", args, kwargs)
