"""Dead-letter views: read-and-remove access to dead data items and dead tasks.

``DataDeadLetters`` (``Data(DEADLETTER_QUEUE)``, ``Data(name, is_dead=True)``)
shows dead data items; ``TaskDeadLetters`` (the same with ``is_tasks=True``)
shows dead-lettered tasks. A view of ``DEADLETTER_QUEUE`` covers every data
queue (or every task queue), a named view that one queue. Reads return
rpqueue 0.33's rows, ``{id: [id, name, args or item, kwargs or details,
time]}``, and remove what they return unless ``vis_timeout`` < 0 (to look
without removing, use ``rpqueue.read_deadletter()``); they
never wait. Puts and receipts are refused (``Data``'s defaults).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..context import DEADLETTER_QUEUE
from ..storage.data_calls import (
    DataCalls,
    data_queue_names,
    task_dead_clear,
    task_dead_count,
    task_dead_remove,
)
from ..storage.executor import Step
from .base import Data, item_count, run_steps, split_ids
from .records import UPKEEP_BATCH, dead_data


class _DeadView(Data):
    """What both dead-letter views share: reads are admin reads that never wait."""

    def get_data(self, items: int = 1, vis_timeout: float | None = None,
                 get_timeout: float | None = None) -> dict[str, Any]:
        """Up to ``items`` dead letters as 0.33's rows, oldest first; removes
        them unless ``vis_timeout`` < 0. Never waits (``get_timeout`` is ignored)."""
        n, vis = item_count(items), self._vis(vis_timeout)
        return self._read_rows(n, remove=vis >= 0)

    async def aget_data(self, items: int = 1, vis_timeout: float | None = None,
                        get_timeout: float | None = None) -> dict[str, Any]:
        """``get_data`` for asyncio code: the read (an admin read) runs in a thread."""
        n, vis = item_count(items), self._vis(vis_timeout)
        return await asyncio.to_thread(self._read_rows, n, vis >= 0)

    def done_data(self, items: Any) -> int:
        """Remove these dead letters (ids, or a dict keyed by id); returns how many."""
        plain, fenced = split_ids(items)
        ids = plain + [i for i, _ in fenced]
        return self._remove(ids) if ids else 0

    async def adone_data(self, items: Any) -> int:
        """``done_data`` for asyncio code, in a thread."""
        return await asyncio.to_thread(self.done_data, items)

    def _queues(self) -> list[str]:
        raise NotImplementedError

    def _read_rows(self, n: int, remove: bool) -> dict[str, Any]:
        raise NotImplementedError

    def _remove(self, ids: list[str]) -> int:
        raise NotImplementedError


class DataDeadLetters(_DeadView, built_by_data=True):
    """Dead data items of one data queue, or of all (``DEADLETTER_QUEUE``)."""

    is_dead = True

    def _queues(self) -> list[str]:
        if self.queue != DEADLETTER_QUEUE:
            return [self.queue]
        names: list[str] = run_steps(self.app, [data_queue_names(self.app.store.keys)])[0]
        return names

    def _read_rows(self, n: int, remove: bool) -> dict[str, Any]:
        rows = dead_data(self.app, self._queues(), n, remove)
        return {r["id"]: [r["id"], "", r["item"], {
            "queue": r["queue"], "reason": r["reason"], "attempts_used": r["attempts_used"],
            "time": r["time"]}, r["inserted"]] for r in rows}

    def _remove(self, ids: list[str]) -> int:
        steps: list[Step] = [DataCalls(self.app.store.keys, q).dead_remove(ids)
                             for q in self._queues()]
        return sum(len(removed) for removed in run_steps(self.app, steps))

    def currently_available(self) -> tuple[int, int]:
        """(dead letters, 0)."""
        calls = [DataCalls(self.app.store.keys, q) for q in self._queues()]
        # Upkeep first, as a read would: leases that ran out on their last
        # attempt count as dead, not as invisible.
        steps: list[Step] = [c.count(UPKEEP_BATCH) for c in calls]
        run_steps(self.app, steps)
        return sum(run_steps(self.app, [c.dead_count() for c in calls])), 0

    def delete_all(self) -> int:
        """Delete these dead letters; returns how many."""
        return sum(run_steps(self.app, [DataCalls(self.app.store.keys, q).dead_clear()
                                        for q in self._queues()]))


class TaskDeadLetters(_DeadView, built_by_data=True):
    """Dead-lettered tasks of one task queue, or of all known ones (``DEADLETTER_QUEUE``)."""

    is_dead = True
    is_tasks = True

    def _queues(self) -> list[str]:
        return [self.queue] if self.queue != DEADLETTER_QUEUE else self.app.store.known_queues()

    def _read_rows(self, n: int, remove: bool) -> dict[str, Any]:
        # The read model's dead-letter reads, imported here: the views sit above
        # data queues' own modules, and only this view needs them.
        from ..views.dead import dead_records, delete_dead

        records = dead_records(self.app, self._queues(), limit=n)
        if remove:
            delete_dead(self.app, records)
        return {r["id"]: [r["id"], r.get("name", ""), r.get("args", []),
                          r.get("kwargs", {}), r.get("time")] for r in records}

    def _remove(self, ids: list[str]) -> int:
        steps: list[Step] = [s for q in self._queues()
                             for s in task_dead_remove(self.app.store.keys, q, ids)]
        # Each queue's ZREM reply says how many of the ids were dead there.
        return sum(run_steps(self.app, steps)[::2])

    def currently_available(self) -> tuple[int, int]:
        """(dead tasks, 0)."""
        return sum(run_steps(self.app, [task_dead_count(self.app.store.keys, q)
                                        for q in self._queues()])), 0

    def delete_all(self) -> int:
        """Delete these dead tasks; returns how many."""
        return sum(run_steps(self.app, [task_dead_clear(self.app.store.keys, q)
                                        for q in self._queues()]))
