"""The store: the one door to Redis for everything above the storage layer.

It holds the key layout, the clients, the call builders and the executor of
one app; modules above it ask it for what they need and never touch a
Redis client themselves.
"""

from __future__ import annotations

from typing import Any, TypeVar

from redis.exceptions import ResponseError

from ..errors import translate
from .calls import Call, Calls
from .clients import Clients
from .executor import Executor, Step, command, raise_first
from .keys import DEFAULT_PREFIX, Keys
from .message import MAX_MESSAGE_BYTES
from .wire import text

T = TypeVar("T")


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
        self.calls = Calls(lambda: self.keys, lambda: self.max_message_bytes)
        # Queues this process registered in the known-queues index, valid for
        # one key prefix and one set of connection settings.
        self._seen_queues: set[str] = set()
        self._seen_for: tuple[str, int] = (prefix, 0)

    # -- configuration -------------------------------------------------------------

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

    def _seen(self) -> set[str]:
        now_for = (self.keys.prefix, self.clients.generation)
        if now_for != self._seen_for:
            # Another prefix or another Redis does not know our queues yet.
            self._seen_queues = set()
            self._seen_for = now_for
        return self._seen_queues

    def forget_seen(self, queue: str | None = None) -> None:
        """Register ``queue`` (or every queue) again on its next use."""
        seen = self._seen()
        if queue is None:
            seen.clear()
        else:
            seen.discard(queue)

    def _announce_steps(self) -> list[Step]:
        k = self.keys
        # A new queue: wake workers serving all queues and make busy ones
        # re-read their queue order.
        return [command("RPUSH", k.queues_wake, "1"), command("LTRIM", k.queues_wake, -1, -1),
                command("INCRBY", k.queues_version, 1)]

    def note_queue(self, queue: str) -> None:
        """Record a queue in the known-queues index, once per process."""
        seen = self._seen()
        if queue in seen:
            return
        try:
            added = self.client.zadd(self.keys.queues, {queue: self.redis_time()})
        except ResponseError as exc:
            raise translate(exc, f"a task for queue {queue!r}") from exc
        if added:
            raise_first(self.pipeline(self._announce_steps()))
        seen.add(queue)

    async def anote_queue(self, queue: str) -> None:
        """``note_queue`` on the asyncio client, with the same errors and announcement."""
        seen = self._seen()
        if queue in seen:
            return
        try:
            added = await self.aclient().zadd(self.keys.queues, {queue: await self.aredis_time()})
        except ResponseError as exc:
            raise translate(exc, f"a task for queue {queue!r}") from exc
        if added:
            raise_first(await self.apipeline(self._announce_steps()))
        seen.add(queue)

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

    def priorities(self) -> dict[str, float]:
        raw = self.client.hgetall(self.keys.priorities)
        out: dict[str, float] = {}
        for k, v in raw.items():
            try:
                out[text(k)] = float(text(v))
            except ValueError:
                continue
        return out
