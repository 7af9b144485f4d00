"""The worker's Redis I/O: what worker threads, their upkeep, the worker
registry and the periodic scheduler read and write, besides the task
scripts (calls.py).

Everything goes through the store's executor, so NOSCRIPT, error
translation and Redis Cluster routing are handled in one place; the
modules above get parsed values and never hold a Redis client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .calls import Call, TakeReply
from .connection import RETRYABLE_ERRORS, socket_timeout
from .executor import command, raise_first
from .scripts import scripts
from .store import Store
from .wire import text

# Re-exported for the worker: it tells a lost connection (wait and retry)
# from a refused command without importing redis itself.
__all__ = ["RETRYABLE_ERRORS", "ConnectionError", "QueueState", "ResponseError", "TimeoutError",
           "WorkerIO"]


def _pairs(reply: Any) -> dict[Any, Any]:
    """An HGETALL reply as a dict, whichever form the client handed back."""
    if isinstance(reply, Mapping):
        return dict(reply)
    items = list(reply or [])
    return dict(zip(items[::2], items[1::2]))


@dataclass
class QueueState:
    """What a worker re-reads about its queues every second."""

    paused: frozenset[str]
    version: Any  # opaque: only compared with the last one read
    scheduling: dict[Any, Any]
    weights: dict[Any, Any]


class WorkerIO:
    """The worker-side reads and writes of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- queue order and policy ------------------------------------------------------

    def queue_state(self) -> QueueState:
        """Paused queues, the queue-list version and the scheduling settings, in
        one round trip; raises the first error (retryable ones included)."""
        k = self.store.keys
        paused, version, scheduling, weights = raise_first(self.store.pipeline([
            command("SMEMBERS", k.paused, parse=lambda r: frozenset(text(q) for q in r or ())),
            command("GET", k.queues_version),
            command("HGETALL", k.scheduling, parse=_pairs),
            command("HGETALL", k.weights, parse=_pairs),
        ]))
        return QueueState(paused, version, scheduling, weights)

    def scheduling_settings(self) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """The raw scheduling and weights hashes."""
        k = self.store.keys
        raw, weights = raise_first(self.store.pipeline([
            command("HGETALL", k.scheduling, parse=_pairs),
            command("HGETALL", k.weights, parse=_pairs)]))
        return raw, weights

    def mark_served(self, queues: Sequence[str]) -> None:
        """Mark queues as seen now in the known-queues index (upkeep)."""
        if not queues:
            return
        now = self.store.redis_time()
        args: list[Any] = []
        for q in queues:
            args += [now, q]
        raise_first(self.store.pipeline([command("ZADD", self.store.keys.queues, *args)]))

    # -- idle waits ------------------------------------------------------------------

    def block_limit(self, ceiling: float) -> float:
        """The longest a blocking pop may wait: under the socket timeout, or
        every idle wait would look like a lost connection."""
        sock = socket_timeout(self.store.client)
        return ceiling if sock is None else max(0.01, min(ceiling, sock * 0.5))

    def wait_and_take(self, wake_keys: Sequence[str], timeout: float,
                      take: Call[TakeReply] | None) -> tuple[str | None, TakeReply | None]:
        """BLPOP on ``wake_keys``, then ``take`` in the same pipeline, so Redis runs
        the take the moment a wake token arrives. The wake list popped (None on
        timeout) and the take's reply (None when it did not run, e.g. NOSCRIPT,
        which the next take reloads). A lost connection raises."""
        steps: list[Any] = [command("BLPOP", *wake_keys, timeout)]
        if take is not None:
            steps.append(take)
        replies = self.store.pipeline(steps)
        for reply in replies:
            if isinstance(reply, (ConnectionError, TimeoutError)):
                raise reply
        got = replies[0]
        woke = text(got[0]) if got and not isinstance(got, Exception) else None
        reply = replies[1] if take is not None else None
        return woke, None if isinstance(reply, Exception) else reply

    def wait(self, key: str, timeout: float) -> bool:
        """BLPOP on one wake list (a Cluster waiter thread); True if it popped."""
        got = raise_first(self.store.pipeline([command("BLPOP", key, timeout)]))[0]
        return bool(got)

    # -- running tasks ---------------------------------------------------------------

    def abort_flags(self, tasks: Sequence[tuple[str, str]]) -> list[str | None]:
        """The abort flag ("hard", "soft"...) of each (queue, taskid), or None."""
        k = self.store.keys
        replies = raise_first(self.store.pipeline(
            [command("GET", k.queue(q).abort(t)) for q, t in tasks]))
        return [None if r is None else text(r) for r in replies]

    def clear_abort(self, queue: str, taskid: str) -> None:
        raise_first(self.store.pipeline([command("DEL", self.store.keys.queue(queue).abort(taskid))]))

    # -- the worker registry ---------------------------------------------------------

    def beat(self, worker_id: str, record: dict[str, Any]) -> None:
        raise_first(self.store.pipeline([
            command("HSET", self.store.keys.workers, worker_id, json.dumps(record))]))

    def leave(self, worker_id: str) -> None:
        self.forget_workers([worker_id])

    def workers(self) -> dict[str, Any]:
        """Worker id -> its raw JSON record."""
        raw = raise_first(self.store.pipeline([
            command("HGETALL", self.store.keys.workers, parse=_pairs)]))[0]
        return {text(k): v for k, v in raw.items()}

    def forget_workers(self, worker_ids: Sequence[str]) -> None:
        if worker_ids:
            raise_first(self.store.pipeline([
                command("HDEL", self.store.keys.workers, *worker_ids)]))

    # -- periodic tasks --------------------------------------------------------------

    def register_periodic(self, queue: str, name: str, schedule: str, first_ms: int) -> float:
        """Plan a periodic task unless planned already; its planned time (ms)."""
        k = self.store.keys.queue(queue)
        return self.store.run(Call(scripts().register_periodic, [k.periodic, k.periodic_def],
                                   [name, schedule, first_ms], float))

    def planned(self, queue: str, names: Sequence[str]) -> list[float | None]:
        """The planned times (ms) of periodic tasks, None for one not planned."""
        replies = raise_first(self.store.pipeline([
            command("ZMSCORE", self.store.keys.queue(queue).periodic, *names)]))[0]
        return [None if s is None else float(s) for s in replies]

    def claim_periodic(self, queue: str, name: str, planned_ms: int, after_ms: int,
                       taskid: str, message: str, meta: str) -> tuple[bool, float, int]:
        """Queue the run planned at ``planned_ms`` unless another worker did:
        (claimed, the planned time now in force, Redis time in ms)."""
        k = self.store.keys.queue(queue)

        def parse(reply: Any) -> tuple[bool, float, int]:
            claimed, in_force, now = reply
            return bool(int(claimed)), float(in_force), int(now)

        return self.store.run(Call(
            scripts().claim_periodic,
            [k.ready, k.msg, k.delayed, k.meta, k.wake, k.stats, k.leases, k.periodic, k.prio],
            [name, planned_ms, after_ms, taskid, message, meta], parse))
