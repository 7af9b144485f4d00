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
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .calls import Call
from .connection import RETRYABLE_ERRORS, socket_timeout
from .executor import Step, command, raise_first
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
    scheduling: dict[Any, Any] | None  # None: not read this time
    weights: dict[Any, Any] | None
    # Key -> Redis's refusal, for each key that could not be read (a key of
    # the wrong type): its field holds the empty default instead.
    errors: dict[str, ResponseError] = field(default_factory=dict)


class WorkerIO:
    """The worker-side reads and writes of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- queue order and policy ------------------------------------------------------

    def queue_state(self, settings: bool = True) -> QueueState:
        """Paused queues, the queue-list version and (``settings``) the
        scheduling settings, in one round trip. A lost connection raises; a
        key Redis refuses to read (wrong type) is reported in ``errors`` and
        read as empty, so one bad key does not stop every worker."""
        k = self.store.keys
        keys = [k.paused, k.queues_version, k.scheduling, k.weights]
        steps: list[Step] = [
            command("SMEMBERS", k.paused, parse=lambda r: frozenset(text(q) for q in r or ())),
            command("GET", k.queues_version),
        ]
        if settings:
            steps += [command("HGETALL", k.scheduling, parse=_pairs),
                      command("HGETALL", k.weights, parse=_pairs)]
        replies = self.store.pipeline(steps)
        if not settings:
            replies += [None, None]
        defaults: list[Any] = [frozenset(), None, {}, {}]
        errors: dict[str, ResponseError] = {}
        for i, reply in enumerate(replies):
            if reply is None and i >= 2:
                continue
            if isinstance(reply, RETRYABLE_ERRORS):
                # CLUSTERDOWN and TRYAGAIN are ResponseErrors too, but no key's fault.
                raise reply
            if isinstance(reply, ResponseError):
                errors[keys[i]] = reply
                replies[i] = defaults[i]
            elif isinstance(reply, Exception):
                raise reply
        paused, version, scheduling, weights = replies
        return QueueState(paused, version, scheduling, weights, errors)

    def wrong_type(self, keys: Sequence[str]) -> list[str]:
        """Which of ``keys`` hold something other than a list (wake lists)."""
        replies = raise_first(self.store.pipeline(
            [command("TYPE", key, parse=text) for key in keys]))
        return [key for key, kind in zip(keys, replies) if kind not in ("list", "none")]

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

    def wait_any(self, wake_keys: Sequence[str], timeout: float
                 ) -> tuple[str | None, ResponseError | None]:
        """BLPOP on ``wake_keys``: the wake list popped (None on timeout), and
        Redis's refusal if it refused the BLPOP (a wake list of the wrong
        type: the caller must not wait on the same keys again at once, or it
        would spin). A lost connection raises.

        Nothing is pipelined behind the BLPOP on purpose. When Redis stalls
        (SIGSTOP, a long fork, a slow disk) for longer than the socket
        timeout, the client gives up on the connection, but Redis still runs
        whatever it had received once it resumes: a take sent behind the
        BLPOP would then take a task for a client that is gone, leaving it
        leased to nobody (a 0/1 task until its lease ran out, then lost).
        A stale BLPOP can only eat a wake token, which costs a waiting worker
        at most one idle period."""
        got = self.store.pipeline([command("BLPOP", *wake_keys, timeout)])[0]
        if isinstance(got, ResponseError) and not isinstance(got, RETRYABLE_ERRORS):
            return None, got
        if isinstance(got, Exception):
            raise got
        return (text(got[0]) if got else None), None

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
