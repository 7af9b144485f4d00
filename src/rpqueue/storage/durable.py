"""Durable enqueue: ``execute()`` returns only once replicas hold the task.

Redis replicates asynchronously: a primary acknowledges a write before any
replica has it, so a primary that dies right after ``execute()`` returned can
take the task with it, even though a replica is promoted in its place. With
``app.set_durable(replicas, timeout)`` every enqueue is followed by
``WAIT <replicas> <timeout ms>`` on the same connection, in the same round
trip (a non-transactional pipeline: WAIT covers the writes of the connection
it runs on). If fewer replicas acknowledged in time, ``NotDurable`` is raised
instead of returning; the task may still be queued (the primary did take it),
so the error carries its id.

On Redis Cluster the pipeline goes to the node that owns the queue's slot
(WAIT has no key, so the cluster client could not route it there itself).

This narrows, but does not close, the window: a replica that acknowledged
may itself fail before a failover picks it, and ``WAIT`` does not make the
write survive a restart of every node without persistence. See
docs/SCALING.md.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import (
    AskError,
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    ResponseError,
    SlotNotCoveredError,
    TimeoutError,
    TryAgainError,
)

from ..errors import NotDurable, translate
from .calls import Call, call_taskids
from .connection import is_cluster, socket_timeout

T = TypeVar("T")

# Replies that mean the script did not run (wrong node, slot moving, cluster
# down during a failover): refreshing the slot map and trying again is safe.
_NOT_RUN = (AskError, TryAgainError, ClusterDownError, SlotNotCoveredError)  # MovedError is an AskError
ATTEMPTS = 5
BACKOFF = 0.1


@dataclass(frozen=True)
class Durability:
    """How many replicas must confirm an enqueue, and how long to wait for them."""

    replicas: int
    timeout: float  # seconds

    @property
    def timeout_ms(self) -> int:
        return max(1, math.ceil(self.timeout * 1000))


def durability(replicas: int, timeout: float) -> Durability | None:
    """Checked settings; None for ``replicas == 0`` (durable enqueue off)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(f"replicas must be an int >= 0, got {replicas!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        # WAIT with a timeout of 0 blocks forever.
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    return Durability(replicas, float(timeout)) if replicas else None


def _check_timeout(client: Any, want: Durability) -> None:
    limit = socket_timeout(client)
    if limit is not None and want.timeout >= limit:
        raise ValueError(
            f"the durable enqueue timeout ({want.timeout}s) must be shorter than the Redis "
            f"socket timeout ({limit}s), or a slow replica would look like a dead server")


def _not_durable(call: Call[Any], acked: int, want: Durability) -> NotDurable:
    ids = call_taskids(call)
    what = call.what or f"task {ids[0]}"
    return NotDurable(
        f"{what} was written to the primary, but only {acked} of the {want.replicas} "
        f"required replica(s) acknowledged it within {want.timeout}s: it MAY still be queued "
        f"(and run), or be lost if the primary fails now. Task id(s): {', '.join(ids)}",
        ids, acked, want.replicas)


def _commands(call: Call[Any], want: Durability, sha: bool) -> list[tuple[Any, ...]]:
    # The NOSCRIPT fallback is this module's own, not LuaScript's: WAIT must
    # follow the write in the same pipeline on the same connection, so the
    # retry re-sends the pair (EVAL, WAIT) rather than the script call alone.
    # The command itself is formed in one place, LuaScript.command.
    return [call.script.command(call.keys, call.args, source=not sha),
            ("WAIT", want.replicas, want.timeout_ms)]


def _finish(call: Call[T], replies: list[Any], want: Durability) -> T:
    reply, acked = replies
    if isinstance(reply, ResponseError):
        raise translate(reply, call.what or call.script.name) from reply
    if isinstance(reply, Exception):
        raise reply
    if isinstance(acked, Exception):
        raise acked
    result = call.parse(reply)
    if int(acked) < want.replicas:
        raise _not_durable(call, int(acked), want)
    return result


def run_durable(client: Any, want: Durability, call: Call[T]) -> T:
    """Run an enqueue call and WAIT for ``want.replicas`` in one round trip."""
    _check_timeout(client, want)
    cluster = is_cluster(client)
    for attempt in range(ATTEMPTS):
        try:
            node = client.get_redis_connection(client.get_node_from_key(call.keys[0])) \
                if cluster else client
            replies = _pipeline(node, call, want)
        except _NOT_RUN:
            if not cluster or attempt == ATTEMPTS - 1:
                raise
            time.sleep(BACKOFF * 2 ** attempt)
            _refresh(client)
            continue
        except (ConnectionError, TimeoutError):
            # Whether the script ran is unknown: say so by raising; only let
            # the next call find the slot's new owner.
            if cluster:
                _refresh(client)
            raise
        return _finish(call, replies, want)
    raise AssertionError("unreachable")


def _pipeline(client: Any, call: Call[Any], want: Durability) -> list[Any]:
    replies: list[Any] = []
    for sha in (True, False):
        pipe = client.pipeline(transaction=False)
        for command in _commands(call, want, sha):
            pipe.execute_command(*command)
        replies = pipe.execute(raise_on_error=False)
        if isinstance(replies[0], NoScriptError):
            continue  # the script did not run: send its source
        if isinstance(replies[0], _NOT_RUN):
            raise replies[0]
        return replies
    return replies


def _refresh(client: Any) -> None:
    """Re-read the cluster's slot map (the owner of a slot changed or died)."""
    try:
        client.nodes_manager.initialize()
    except Exception:  # the cluster may still be electing; the next call retries
        pass


async def arun_durable(client: Any, want: Durability, call: Call[T]) -> T:
    """``run_durable`` on the asyncio client."""
    _check_timeout(client, want)
    cluster = is_cluster(client)
    for attempt in range(ATTEMPTS):
        try:
            replies = await (_acluster_pipeline(client, call, want) if cluster
                             else _apipeline(client, call, want))
        except _NOT_RUN:
            if not cluster or attempt == ATTEMPTS - 1:
                raise
            await asyncio.sleep(BACKOFF * 2 ** attempt)
            await _arefresh(client)
            continue
        except (ConnectionError, TimeoutError):
            if cluster:
                await _arefresh(client)
            raise
        return _finish(call, replies, want)
    raise AssertionError("unreachable")


async def _apipeline(client: Any, call: Call[Any], want: Durability) -> list[Any]:
    replies: list[Any] = []
    for sha in (True, False):
        pipe = client.pipeline(transaction=False)
        for command in _commands(call, want, sha):
            pipe.execute_command(*command)
        replies = await pipe.execute(raise_on_error=False)
        if isinstance(replies[0], NoScriptError):
            continue
        return replies
    return replies


async def _acluster_pipeline(client: Any, call: Call[Any], want: Durability) -> list[Any]:
    from redis.asyncio.cluster import PipelineCommand

    await client.initialize()
    node = client.get_node_from_key(call.keys[0])
    replies: list[Any] = []
    for sha in (True, False):
        commands = [PipelineCommand(i, *c) for i, c in enumerate(_commands(call, want, sha))]
        await node.execute_pipeline(commands)
        replies = [c.result for c in commands]
        if isinstance(replies[0], NoScriptError):
            continue
        if isinstance(replies[0], _NOT_RUN):
            raise replies[0]
        if isinstance(replies[0], (ConnectionError, TimeoutError)):
            raise replies[0]
        return replies
    return replies


async def _arefresh(client: Any) -> None:
    try:
        await client.nodes_manager.initialize()
    except Exception:
        pass
