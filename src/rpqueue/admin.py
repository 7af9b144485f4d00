"""Inspection and management: queue sizes, pages, dead letters, results, flush.

The listings themselves are the read model's (``rpqueue.views``); the names
here stay for code that imports them from this module. Data queues are
``manage.py``'s business: this module never imports ``rpqueue.data``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .storage import reads
from .storage.executor import raise_first
from .storage.keys import normalize_queue
from .storage.message import decode_result
from .storage.wire import text
from .task import EnqueuedTask, TaskRef
from .views import dead, items, queues

if TYPE_CHECKING:
    from .context import Context

log = logging.getLogger("rpqueue")

# The read model, under the names this module has always offered.
queue_sizes = queues.queue_sizes
queue_info = queues.queue_info
get_page = items.get_page
dead_records = dead.dead_records
delete_dead = dead.delete_dead
requeue_dead = dead.requeue_dead

CLEAR_BATCH = 1000


def clear_queue(app: Context, queue: str | bytes, delete: bool = False) -> int:
    """Remove every waiting and delayed task (running ones finish); returns how many.
    ``delete`` also forgets the queue and its counters."""
    name = normalize_queue(queue)
    removed = _clear_all(app, name)
    if delete:
        reads.forget_queue(app.store, name)
    return removed


def _clear_all(app: Context, name: str) -> int:
    """Remove waiting and delayed tasks, a batch per script call."""
    removed = 0
    while True:
        call = app.store.calls.clear(name, CLEAR_BATCH)
        n = int(app.store.run(call))
        removed += n
        if n < CLEAR_BATCH:
            return removed


def delete_item(app: Context, queue: str | bytes, taskid: str) -> bool:
    """Remove one task that has not started."""
    return app.store.run(app.store.calls.cancel(normalize_queue(queue), text(taskid))) == 1


def read_deadletter(app: Context, delete: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """Up to ``limit`` dead letters of the task queues, oldest first; ``delete`` removes them."""
    records = dead.dead_records(app, limit=limit)
    if delete:
        dead.delete_dead(app, records)
    return records


def results(app: Context, taskids: Iterable[str]) -> list[Any]:
    """Saved results by id alone: looks in every known queue, one round trip."""
    ids = [text(t) for t in taskids]
    queues = app.store.known_queues()
    if not ids or not queues:
        return [None] * len(ids)
    raw = reads.saved_results(app.store, [(q, t) for t in ids for q in queues])
    n = len(queues)
    return [decode_result(next((r for r in raw[i * n:(i + 1) * n] if r is not None), None))
            for i in range(len(ids))]


def remote_task(app: Context, name: str, settings: Mapping[str, Any]) -> TaskRef:
    """A task known from the registry in Redis, callable without importing it."""
    # Every default a worker publishes (TaskRef.settings) that a producer
    # applies when queueing: leaving one out would queue calls without it.
    keep = ("queue", "attempts", "retry_delay", "save_results", "vis_timeout", "use_dead",
            "priority", "unique_for", "on_duplicate")
    return TaskRef(app, name, **{k: settings[k] for k in keep if k in settings})


class KnownTasks(Mapping[str, Any]):
    """``known_tasks[name]``: tasks in this process, then the registry in Redis."""

    def __init__(self, app: Context) -> None:
        self.app = app

    def __getitem__(self, name: str) -> Any:
        local = self.app.registry.get(name)
        if local is not None:
            return local
        settings = self.app.read_registry().get(name)
        if settings is None:
            raise KeyError(name)
        return remote_task(self.app, name, settings)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self.app.registry) | set(self.app.read_registry())))

    def __len__(self) -> int:
        return len(set(self.app.registry) | set(self.app.read_registry()))


def get_task(app: Context, name: str) -> Any:
    """The task called ``name`` (defined here, else from the registry), or None."""
    try:
        return KnownTasks(app)[name]
    except KeyError:
        return None


def call_task(app: Context, name: str, queue: str | bytes | None = None, *args: Any,
              _verify_call: bool = False, **kwargs: Any) -> EnqueuedTask:
    """Queue a call to a task by name, from code that does not import it."""
    found = get_task(app, name)
    if found is None:
        if _verify_call:
            raise ValueError(f"unknown task {name!r}: no worker has registered it")
        found = TaskRef(app, name)
    if queue is not None:
        kwargs["_queue"] = queue
    result: EnqueuedTask = found.execute(*args, **kwargs)
    return result


def flush_tasks(
    app: Context,
    complete: bool = False,
    force_delayed: bool = False,
    wait_on_hidden: bool = False,
    timeout: float | None = None,
    log_every: float = 0,
) -> tuple[list[str], list[str], list[str]]:
    """Wait until the tasks queued now have started (or, with ``complete``, finished).

    ``force_delayed`` makes delayed tasks (and periodic tasks) due now;
    ``wait_on_hidden`` also waits for tasks already running. Returns the ids
    as (done, started, still waiting) when they are all done or started, or
    when ``timeout`` seconds have passed.
    """
    watched: list[tuple[str, str]] = []
    for queue in app.store.known_queues():
        found = reads.queued_ids(app.store, queue)
        watched += [(queue, text(i)) for i in found["prio"] + found["ready"] + found["delayed"]]
        if force_delayed:
            reads.make_due(app.store, queue, found["delayed"], found["periodic"])
        if wait_on_hidden:
            watched += [(queue, text(i)) for i in found["leases"]]
    deadline = None if timeout is None else time.monotonic() + timeout
    target = ("done",) if complete else ("started", "done")
    last_log = time.monotonic()
    pause = 0.005
    while True:
        statuses = raise_first(app.store.pipeline([app.store.calls.status(q, i)
                                                   for q, i in watched])) if watched else []
        pending = sum(s not in target for s in statuses)
        if log_every and time.monotonic() - last_log >= log_every:
            log.info("flush_tasks: %d of %d tasks pending", pending, len(watched))
            last_log = time.monotonic()
        if not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    done = [i for (_, i), s in zip(watched, statuses) if s == "done"]
    started = [i for (_, i), s in zip(watched, statuses) if s == "started"]
    waiting = [i for (_, i), s in zip(watched, statuses) if s not in ("done", "started")]
    return done, started, waiting
