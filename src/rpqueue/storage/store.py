"""The store: the one door to Redis for everything above the storage layer.

It holds the key layout, the clients, the call builders and the executor of
one app; modules above it ask it for what they need and never touch a
Redis client themselves.
"""

from __future__ import annotations

import os
import time
from typing import Any, TypeVar

from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from ..errors import translate
from .calls import Call, Calls
from .clients import Clients
from .executor import Executor, Step, awhile_loading, command, raise_first, while_loading
from .keys import DEFAULT_PREFIX, Keys
from .message import MAX_MESSAGE_BYTES
from .wire import ms, text

# Default life of a finished task's state record, in seconds.
STATE_KEEP = 3600.0
# The bound of each queue's event stream when events are turned on by '1'.
EVENTS_MAXLEN = 10_000

T = TypeVar("T")

# A producer registers each queue it uses again this often (seconds): the
# known-queues index heals within this long after Redis lost it.
NOTE_AGAIN = 30.0


def settings_from_env() -> tuple[float, int]:
    """(state keep seconds, events maxlen) from $RPQUEUE_STATE_KEEP and
    $RPQUEUE_EVENTS ('1' or a maxlen; unset or '0': off), so a worker
    started from the command line can be told without code."""
    keep, events = os.environ.get("RPQUEUE_STATE_KEEP", ""), os.environ.get("RPQUEUE_EVENTS", "")
    try:
        seconds = float(keep) if keep else STATE_KEEP
        maxlen = int(events) if events else 0
    except ValueError:
        raise ValueError(f"RPQUEUE_STATE_KEEP={keep!r} / RPQUEUE_EVENTS={events!r}: expected "
                         f"seconds and 0, 1 or a stream length") from None
    return seconds, (EVENTS_MAXLEN if maxlen == 1 else maxlen)


class Store:
    """Key layout, connection, call builders and executor of one app."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.keys = Keys(prefix)
        self.clients = Clients()
        self.executor = Executor(self.clients)
        self.max_message_bytes = MAX_MESSAGE_BYTES
        # A task without a visibility timeout holds a lease this long; the
        # worker renews it while the task runs, so it only bounds how long a
        # crashed worker's task still shows as started.
        self.running_lease = 300.0
        # Task state records and events (docs/TASK_STATE.md), passed to the
        # scripts as one "<keep_ms> <events_maxlen>" argument, built once.
        self._opts = ""
        self.set_task_state(*settings_from_env())
        self.calls = Calls(lambda: self.keys, lambda: self.max_message_bytes, lambda: self._opts)
        # Queues this process registered in the known-queues index, valid for
        # one key prefix and one set of connection settings.
        # Queue -> time.monotonic() of its last registration, renewed every
        # ``note_again`` seconds.
        self._seen_queues: dict[str, float] = {}
        self.note_again = NOTE_AGAIN
        self._seen_for: tuple[str, int] = (prefix, 0)

    # -- configuration -------------------------------------------------------------

    def set_task_state(self, keep: float, events_maxlen: int) -> None:
        """How long finished tasks' state records live (seconds, 0: none) and
        the bound of each queue's event stream (0: no events)."""
        if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not keep >= 0:
            raise ValueError(f"state keep time must be a number of seconds >= 0, not {keep!r}")
        if isinstance(events_maxlen, bool) or not isinstance(events_maxlen, int) \
                or events_maxlen < 0:
            raise ValueError(f"events maxlen must be an int >= 0, not {events_maxlen!r}")
        self.state_keep = float(keep)
        self.events_maxlen = events_maxlen
        self._opts = f"{ms(keep)} {events_maxlen}"

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    def set_prefix(self, prefix: str) -> None:
        self.keys = Keys(prefix)

    @property
    def client(self) -> Any:
        """The shared sync client (for the storage layer's own modules)."""
        return self.clients.client

    def aclient(self) -> Any:
        return self.clients.aclient()

    @property
    def cluster(self) -> bool:
        return self.clients.cluster

    # -- running calls ------------------------------------------------------------

    def run(self, call: Call[T], via: Any = None) -> T:
        return self.executor.run(call, via)

    async def arun(self, call: Call[T]) -> T:
        return await self.executor.arun(call)

    def run_enqueue(self, call: Call[T]) -> T:
        return self.executor.run_enqueue(call)

    async def arun_enqueue(self, call: Call[T]) -> T:
        return await self.executor.arun_enqueue(call)

    def pipeline(self, steps: list[Step], client: Any = None) -> list[Any]:
        return self.executor.pipeline(steps, client)

    async def apipeline(self, steps: list[Step]) -> list[Any]:
        return await self.executor.apipeline(steps)

    # -- time ---------------------------------------------------------------------

    def redis_time(self) -> float:
        """Redis's clock in seconds: every deadline is measured on it."""
        secs, micros = self.client.time()
        return int(secs) + int(micros) / 1e6

    async def aredis_time(self) -> float:
        secs, micros = await self.aclient().time()
        return int(secs) + int(micros) / 1e6

    # -- the known-queues index ----------------------------------------------------

    def _seen(self) -> dict[str, float]:
        now_for = (self.keys.prefix, self.clients.generation)
        if now_for != self._seen_for:
            # Another prefix or another Redis does not know our queues yet.
            self._seen_queues = {}
            self._seen_for = now_for
        return self._seen_queues

    def forget_seen(self, queue: str | None = None) -> None:
        """Register ``queue`` (or every queue) again on its next use."""
        seen = self._seen()
        if queue is None:
            seen.clear()
        else:
            seen.pop(queue, None)

    def _announce_steps(self) -> list[Step]:
        k = self.keys
        # A new queue: wake workers serving all queues and make busy ones
        # re-read their queue order.
        return [command("RPUSH", k.queues_wake, "1"), command("LTRIM", k.queues_wake, -1, -1),
                command("INCRBY", k.queues_version, 1)]

    def note_queue(self, queue: str) -> None:
        """Record a queue in the known-queues index, once per ``note_again``
        (NOTE_AGAIN) seconds per process: often enough that an index Redis lost (a restart without
        persistence, FLUSHALL, a failover) is written again by the producers
        that use it, cheap enough not to matter (one ZADD a queue a minute)."""
        seen = self._seen()
        if queue in seen and time.monotonic() - seen[queue] < self.note_again:
            return
        try:
            added = while_loading(lambda: self.client.zadd(
                self.keys.queues, {queue: self.redis_time()}))
        except ResponseError as exc:
            raise translate(exc, f"a task for queue {queue!r}") from exc
        except AuthenticationError:
            raise  # wrong credentials: redis-py says so precisely; not "unreachable"
        except RedisConnectionError as exc:  # a producer's first contact: say which Redis
            raise self.executor.unreachable(exc) from exc
        if added:
            raise_first(self.pipeline(self._announce_steps()))
        seen[queue] = time.monotonic()

    async def anote_queue(self, queue: str) -> None:
        """``note_queue`` on the asyncio client, with the same errors and announcement."""
        seen = self._seen()
        if queue in seen and time.monotonic() - seen[queue] < self.note_again:
            return
        try:
            added = await awhile_loading(lambda: self._azadd_queue(queue))
        except ResponseError as exc:
            raise translate(exc, f"a task for queue {queue!r}") from exc
        except AuthenticationError:
            raise  # wrong credentials: redis-py says so precisely; not "unreachable"
        except RedisConnectionError as exc:
            raise self.executor.unreachable(exc) from exc
        if added:
            raise_first(await self.apipeline(self._announce_steps()))
        seen[queue] = time.monotonic()

    async def _azadd_queue(self, queue: str) -> Any:
        return await self.aclient().zadd(self.keys.queues, {queue: await self.aredis_time()})

    # -- small reads and writes of the task layer ---------------------------------

    def read_result(self, queue: str, taskid: str) -> Any:
        """The raw saved result of a task, or None."""
        return self.client.get(self.keys.queue(queue).result(taskid))

    async def aread_result(self, queue: str, taskid: str) -> Any:
        return await self.aclient().get(self.keys.queue(queue).result(taskid))

    def set_abort(self, queue: str, taskid: str, hard: bool) -> None:
        """Ask the worker running a task to stop it (workers look every half second).

        A short life keeps the flag from reaching a later run that reuses
        this task id."""
        self.client.set(self.keys.queue(queue).abort(taskid), "hard" if hard else "soft",
                        px=60_000)

    def publish_tasks(self, settings: dict[str, str]) -> None:
        """Write task settings (name -> JSON) to the published task registry."""
        if settings:
            self.client.hset(self.keys.tasks, mapping=settings)

    def read_tasks(self) -> dict[str, Any]:
        """The published task registry: name -> raw JSON settings."""
        return {text(k): v for k, v in self.client.hgetall(self.keys.tasks).items()}

    def known_queues(self) -> list[str]:
        return sorted(text(q) for q in self.client.zrange(self.keys.queues, 0, -1))

    async def aknown_queues(self) -> list[str]:
        return sorted(text(q) for q in await self.aclient().zrange(self.keys.queues, 0, -1))

    def priorities(self) -> dict[str, float]:
        raw = self.client.hgetall(self.keys.priorities)
        out: dict[str, float] = {}
        for k, v in raw.items():
            try:
                out[text(k)] = float(text(v))
            except ValueError:
                continue
        return out
