"""The app's queue methods: settings, inspection and cleanup of task queues.

A part of ``RPQueue`` (app.py), kept apart to keep each module small; the
work is done by ``settings`` (queue settings), the read model ``views``
(what the queues hold) and ``admin`` (changing what is queued). Data
queues (``rpqueue.data``) are told apart here, so that admin never needs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from . import admin, settings
from .context import Context
from .events import DEFAULT_EVENTS_MAXLEN, Event, afollow, follow
from .storage import reads
from .storage.keys import normalize_queue
from .views import items, queues


class QueueMethods:
    """Queue settings, inspection and cleanup, as methods of the app."""

    ctx: Context

    # -- task state and events (docs/TASK_STATE.md) ------------------------------------

    @property
    def state_keep(self) -> float:
        """Seconds a finished task's state record (``EnqueuedTask.state``,
        ``error``) is kept; 0 keeps none. Default 3600, or $RPQUEUE_STATE_KEEP.
        Set it where tasks finish and are cancelled: in the workers' module."""
        return self.ctx.store.state_keep

    @state_keep.setter
    def state_keep(self, seconds: float) -> None:
        self.ctx.store.set_task_state(seconds, self.ctx.store.events_maxlen)

    def set_events(self, enabled: bool = True, maxlen: int = DEFAULT_EVENTS_MAXLEN) -> None:
        """Write task state changes to each queue's event stream (off by
        default; $RPQUEUE_EVENTS=1 turns it on too). ``maxlen`` bounds each
        stream (approximately: Redis trims whole nodes). Producers write
        'enqueued', workers the rest: turn it on in both."""
        if not isinstance(enabled, bool):
            raise ValueError(f"enabled must be True or False, not {enabled!r}")
        if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
            raise ValueError(f"maxlen must be an int >= 1, not {maxlen!r}")
        self.ctx.store.set_task_state(self.ctx.store.state_keep, maxlen if enabled else 0)

    def events(self, queues: Iterable[str | bytes] | None = None,
               since: float | str | None = None,
               timeout: float | None = None) -> Iterator[Event]:
        """Follow task events (``rpqueue.events.Event``) of ``queues`` (None:
        every queue) after ``since`` (unix seconds, a stream id, or None for
        from now on), in order per queue; the iterator ends once ``timeout``
        seconds pass without an event (None: never)."""
        return follow(self.ctx.store, queues, since, timeout)

    def aevents(self, queues: Iterable[str | bytes] | None = None,
                since: float | str | None = None,
                timeout: float | None = None) -> AsyncIterator[Event]:
        """``events`` as an async iterator: ``async for e in app.aevents(): ...``."""
        return afollow(self.ctx.store, queues, since, timeout)

    # -- settings ------------------------------------------------------------------------

    def set_priority(self, queue: str | bytes, qpri: float) -> None:
        """Set a queue's priority: workers serving several queues take from the
        lowest value first (queues without one come after, by name);
        ``rpqueue priority QUEUE N`` from the shell.

        Written to Redis at once (calling it at import time in a tasks module
        connects to Redis then); busy workers see it before their next task.
        """
        settings.set_priority(self.ctx, queue, qpri)

    def priorities(self) -> dict[str, float]:
        """The queue priorities set with ``set_priority``: queue -> priority."""
        return self.ctx.store.priorities()

    def set_scheduling(self, mode: str, age: float | None = None) -> None:
        """How workers share out their queues: "strict" priority order (the
        default), "weighted" (``set_queue_weight``) or "aging" (a queue whose
        next task waited over ``age`` seconds goes first). Raises ValueError
        for an unknown mode. See docs/OPERATIONS.md."""
        settings.set_scheduling(self.ctx, mode, age)

    def get_scheduling(self) -> dict[str, Any]:
        """``{"mode": ..., "age": seconds or None}``, as workers read it."""
        return settings.get_scheduling(self.ctx)

    def set_queue_weight(self, queue: str | bytes, weight: float) -> None:
        """The share of ``queue`` in the weighted mode (default 1; must be > 0)."""
        settings.set_queue_weight(self.ctx, queue, weight)

    def queue_weights(self) -> dict[str, float]:
        """The weights set with ``set_queue_weight`` (queues not listed weigh 1)."""
        return settings.queue_weights(self.ctx)

    def set_queue_limit(self, queue: str | bytes, max_len: int | None,
                        overflow: str = "refuse") -> None:
        """Bound a queue to ``max_len`` queued (waiting + delayed) tasks; None
        or 0 unbounds it.

        ``overflow``: 'refuse' (``execute`` raises QueueFull, nothing is
        queued) or 'drop_oldest' (the new task goes in; the longest-waiting
        task of the least urgent priority is dead-lettered with reason
        'dropped: queue full'). Raises ValueError for other values.
        """
        settings.set_queue_limit(self.ctx, queue, max_len, overflow)

    def queue_limit(self, queue: str | bytes) -> dict[str, Any] | None:
        """``{'max_len': n, 'overflow': policy}`` for a bounded queue, else None."""
        return settings.queue_limit(self.ctx, queue)

    def pause_queue(self, queue: str | bytes) -> bool:
        """Workers stop taking from this queue (within about a second);
        producers may still queue. False if it was already paused."""
        return settings.pause_queue(self.ctx, queue)

    def resume_queue(self, queue: str | bytes) -> bool:
        """Workers take from this queue again; False if it was not paused."""
        return settings.resume_queue(self.ctx, queue)

    def paused_queues(self) -> list[str]:
        """The names of the paused queues, sorted."""
        return settings.paused_queues(self.ctx)

    def is_paused(self, queue: str | bytes) -> bool:
        """True if ``queue`` is paused."""
        return settings.is_paused(self.ctx, queue)

    # -- inspection ------------------------------------------------------------------------

    def known_queues(self) -> list[str]:
        """Every queue a producer or worker has used, sorted by name."""
        return self.ctx.store.known_queues()

    def ordered_queues(self, queues: list[str] | None = None) -> list[str]:
        """Queues in the order a worker serves them (``queues`` as given, else
        every known queue, by priority)."""
        return self.ctx.ordered_queues(queues)

    def queue_sizes(self) -> list[tuple[str, int, float]]:
        """Rows of (queue, tasks waiting or delayed, unix time the queue was last seen)."""
        return queues.queue_sizes(self.ctx)

    def queue_info(self, queue: str | bytes) -> dict[str, Any]:
        """Counts of one queue: waiting, delayed, running, dead, its counters
        (``stats``) and its length limit."""
        return queues.queue_info(self.ctx, queue)

    def get_page(self, queue: str | bytes, page: int, per_page: int = 50) -> list[dict[str, Any]]:
        """Page ``page`` (from 0) of a queue: waiting tasks in run order, then
        delayed ones by due time; each a dict with id, name, args, status."""
        return items.get_page(self.ctx, queue, page, per_page)

    def read_deadletter(self, *, delete: bool = False, limit: int = 100,
                        is_data: bool = False) -> list[dict[str, Any]]:
        """Up to ``limit`` dead letters, oldest first, as dicts (id, queue,
        name, args, kwargs, reason, error, attempts_used, time).

        They stay where they are unless ``delete``; ``is_data`` reads the data
        queues' dead letters instead. (``Data(DEADLETTER_QUEUE,
        is_tasks=True).get_data()``, the 0.33 way, removes what it returns.)
        The flags are keyword-only. ``rpqueue dead`` lists, requeues and
        purges them from the shell.
        """
        if is_data:
            # Imported on use: an app that never touches data queues does not load them.
            from .data import Data

            found: list[dict[str, Any]] = Data.read_dead(self.ctx, delete=delete, limit=limit)
            return found
        return admin.read_deadletter(self.ctx, delete, limit)

    # -- cleanup ---------------------------------------------------------------------------

    def clear_queue(self, queue: str | bytes, *, delete: bool = False,
                    is_data: bool = False) -> int:
        """Remove every waiting and delayed task (running ones finish); returns
        how many. ``delete`` also forgets the queue and its counters;
        ``is_data`` clears a data queue instead."""
        if not is_data:
            return admin.clear_queue(self.ctx, queue, delete)
        from .data import Data  # on use, as in read_deadletter

        name = normalize_queue(queue)
        removed = int(Data(name, app=self.ctx).delete_all())
        if delete:
            reads.forget_data_queue(self.ctx.store, name)
        return removed

    def prune_queues(self, idle: float, dry_run: bool = False) -> list[str]:
        """Forget queue names that are empty, unused for ``idle`` seconds and
        without settings (a flood of made-up names slows workers serving all
        queues and the dashboard); returns them. See views.queues.prune."""
        return queues.prune(self.ctx, idle, dry_run)

    def delete_item(self, queue: str | bytes, taskid: str) -> bool:
        """Remove one waiting or delayed task; False if it is not there."""
        return admin.delete_item(self.ctx, queue, taskid)
