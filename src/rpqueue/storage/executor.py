"""The one executor: every script call and plain command reaches Redis here.

- ``run``: one call, on the shared client or a thread's held connection.
- ``arun``: the same on the event loop's redis.asyncio client.
- ``run_enqueue`` / ``arun_enqueue``: as run, followed by WAIT when durable
  enqueue is on (``durable.py``).
- ``pipeline`` / ``apipeline``: several calls and plain commands in one round
  trip, each reply parsed or its error returned in its place.

NOSCRIPT is handled by ``LuaScript`` for single calls and by ``_read`` /
``apipeline`` for pipelines (a step that answered NOSCRIPT is run again
alone): Redis forgets its script cache on a restart or failover, and a
script it did not find did not run, so sending it again with its source is
always safe. ``durable.py`` is the one other place, on purpose: its WAIT
must follow the write in the same pipeline, so it re-sends both. Every
place forms the command with ``LuaScript.command``. Refused writes are
translated to rpqueue's errors (``errors.translate``) here too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis.exceptions import AuthenticationError, BusyLoadingError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from ..errors import RedisUnreachable, translate
from .calls import Call
from .clients import Clients
from .durable import Durability, arun_durable, run_durable

T = TypeVar("T")


@dataclass
class Command(Generic[T]):
    """A plain Redis command for a pipeline, and how to read its reply."""

    args: tuple[Any, ...]
    parse: Callable[[Any], T]


def _same(reply: Any) -> Any:
    return reply


def command(*args: Any, parse: Callable[[Any], Any] = _same) -> Command[Any]:
    return Command(args, parse)


Step = Call[Any] | Command[Any]


def _evalsha(call: Call[Any]) -> tuple[Any, ...]:
    return call.script.command(call.keys, call.args)


# Redis answers LOADING to almost every command while it loads its data after
# a restart, for seconds or minutes with a large data set. A command refused
# that way did not run, so sending it again is safe whatever it is (an
# enqueue script too, fresh id or not): calls wait for the load to end, up
# to LOADING_WAIT seconds, and only then raise redis-py's BusyLoadingError
# (a ConnectionError: producers see RedisUnreachable, workers back off).
LOADING_WAIT = 30.0
_loading_pause = threading.Event()  # never set: a sleep that faketime does not break


def while_loading(send: Callable[[], T]) -> T:
    """``send()``, sent again while Redis answers LOADING (up to LOADING_WAIT s)."""
    deadline: float | None = None
    pause = 0.02
    while True:
        try:
            return send()
        except BusyLoadingError:
            now = time.monotonic()
            deadline = now + LOADING_WAIT if deadline is None else deadline
            if now >= deadline:
                raise
            _loading_pause.wait(min(pause, deadline - now))
            pause = min(pause * 2, 0.5)


async def awhile_loading(send: Callable[[], Awaitable[T]]) -> T:
    """``while_loading`` for the asyncio client."""
    deadline: float | None = None
    pause = 0.02
    while True:
        try:
            return await send()
        except BusyLoadingError:
            now = time.monotonic()
            deadline = now + LOADING_WAIT if deadline is None else deadline
            if now >= deadline:
                raise
            await asyncio.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.5)


class Executor:
    """Runs calls for one app's clients."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        # Durable enqueue (set_durable): None, or how many replicas must
        # confirm each enqueue and how long to wait for them.
        self.durable: Durability | None = None

    # -- one call ----------------------------------------------------------------

    def run(self, call: Call[T], via: Any = None) -> T:
        """Run a call on the shared client, or on ``via``: a thread's held connection.
        While Redis loads its data after a restart the call waits (``while_loading``)."""
        try:
            # The first try is sent directly: the hot paths (execute, take)
            # pay nothing for the LOADING wait they almost never need.
            try:
                if via is not None:
                    reply = via.call(call.script, call.keys, call.args)
                else:
                    reply = call.script(self.clients.client, call.keys, call.args)
            except BusyLoadingError:
                if via is not None:
                    reply = while_loading(lambda: via.call(call.script, call.keys, call.args))
                else:
                    reply = while_loading(lambda: call.script(self.clients.client, call.keys,
                                                              call.args))
        except ResponseError as exc:
            raise translate(exc, call.what or call.script.name) from exc
        return call.parse(reply)

    async def arun(self, call: Call[T]) -> T:
        try:
            reply = await awhile_loading(
                lambda: call.script.acall(self.clients.aclient(), call.keys, call.args))
        except ResponseError as exc:
            raise translate(exc, call.what or call.script.name) from exc
        return call.parse(reply)

    def run_enqueue(self, call: Call[T]) -> T:
        """Run an enqueue call on this thread's held connection, durably when
        asked; a lost connection raises ``RedisUnreachable`` naming the Redis."""
        try:
            if self.durable is None:
                via = self.clients.direct()
                if via is None:
                    return self.run(call, via)
                # Fast path (every execute()): run()'s first try, inlined;
                # a LOADING reply goes to run() and its wait.
                try:
                    reply = via.call(call.script, call.keys, call.args)
                except BusyLoadingError:
                    return self.run(call, via)
                except ResponseError as exc:
                    raise translate(exc, call.what or call.script.name) from exc
                return call.parse(reply)
            durable = self.durable
            return while_loading(lambda: run_durable(self.clients.client, durable, call))
        except RedisUnreachable:
            raise
        except AuthenticationError:
            raise  # wrong credentials: redis-py says so precisely; not "unreachable"
        except RedisConnectionError as exc:
            raise self.unreachable(exc) from exc

    async def arun_enqueue(self, call: Call[T]) -> T:
        try:
            if self.durable is None:
                return await self.arun(call)
            durable = self.durable
            return await awhile_loading(
                lambda: arun_durable(self.clients.aclient(), durable, call))
        except RedisUnreachable:
            raise
        except AuthenticationError:
            raise  # wrong credentials: redis-py says so precisely; not "unreachable"
        except RedisConnectionError as exc:
            raise self.unreachable(exc) from exc

    def unreachable(self, exc: Exception) -> RedisUnreachable:
        """The error a producer gets for a lost connection: it names the Redis."""
        # A producer's error must say which Redis: the default one, picked
        # up from $RPQUEUE_URL or localhost, is often not the one meant.
        try:
            where = self.clients.describe()
        except Exception:  # describing a cluster asks it for its nodes
            where = "Redis"
        return RedisUnreachable(f"cannot reach Redis at {where} (set_redis_url() or "
                                f"$RPQUEUE_URL): {exc}")

    # -- several in one round trip -------------------------------------------------

    def pipeline(self, steps: Sequence[Step], client: Any = None) -> list[Any]:
        """Run ``steps`` in one round trip (one per step on a cluster, whose
        keys may live on different nodes); each parsed reply, or the error
        in its place. ``client``: another client than the shared one (a
        worker's own connection for blocking reads)."""
        client = self.clients.client if client is None else client
        if self.clients.cluster:
            return [self._one(step, client) for step in steps]
        pipe = client.pipeline(transaction=False)
        for step in steps:
            pipe.execute_command(*(_evalsha(step) if isinstance(step, Call) else step.args))
        replies = pipe.execute(raise_on_error=False)
        return [self._read(step, reply, client) for step, reply in zip(steps, replies)]

    async def apipeline(self, steps: Sequence[Step]) -> list[Any]:
        """``pipeline`` on the event loop's asyncio client."""
        client = self.clients.aclient()
        if self.clients.cluster:
            return [await self._aone(step, client) for step in steps]
        pipe = client.pipeline(transaction=False)
        for step in steps:
            pipe.execute_command(*(_evalsha(step) if isinstance(step, Call) else step.args))
        replies = await pipe.execute(raise_on_error=False)
        out = []
        for step, reply in zip(steps, replies):
            if isinstance(step, Call) and isinstance(reply, NoScriptError):
                out.append(await self._aone(step, client))
            else:
                out.append(self._parse(step, reply))
        return out

    def _one(self, step: Step, client: Any) -> Any:
        try:
            if isinstance(step, Call):
                return self._parse(step, step.script(client, step.keys, step.args))
            return step.parse(client.execute_command(*step.args))
        except Exception as exc:
            return self._error(step, exc)

    async def _aone(self, step: Step, client: Any) -> Any:
        try:
            if isinstance(step, Call):
                return self._parse(step, await step.script.acall(client, step.keys, step.args))
            return step.parse(await client.execute_command(*step.args))
        except Exception as exc:
            return self._error(step, exc)

    def _read(self, step: Step, reply: Any, client: Any) -> Any:
        if isinstance(step, Call) and isinstance(reply, NoScriptError):
            return self._one(step, client)  # not run: EVALSHA reloads it
        return self._parse(step, reply)

    def _parse(self, step: Step, reply: Any) -> Any:
        if isinstance(reply, Exception):
            return self._error(step, reply)
        try:
            return step.parse(reply)
        except Exception as exc:
            return exc

    @staticmethod
    def _error(step: Step, exc: Exception) -> Exception:
        if isinstance(step, Call) and isinstance(exc, ResponseError):
            return translate(exc, step.what or step.script.name)
        return exc


def raise_first(replies: list[Any]) -> list[Any]:
    """The replies of a pipeline, raising the first error among them."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies
