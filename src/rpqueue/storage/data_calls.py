"""Call builders for data queues (the ``data_*`` scripts) and the plain
commands data queues and ``SimpleLock`` need.

Nothing here is sent: the data package hands these calls and commands to
the store's executor (``Store.run``/``pipeline`` and their async twins), so
the NOSCRIPT reload and the error translation happen in one place. The key
layout of a data queue is documented in ``scripts/data_common.lua``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .calls import Call
from .connection import socket_timeout
from .executor import Command, command
from .keys import Keys
from .scripts import scripts
from .wire import text

# The most a data read blocks on its wake list when the client has no
# socket timeout to stay under.
DEFAULT_BLOCK_CAP = 30.0


def _texts(reply: Any) -> list[str]:
    return [text(i) for i in reply]


def _pair(reply: Any) -> tuple[int, int]:
    return int(reply[0]), int(reply[1])


class DataCalls:
    """The calls of one data queue under one key layout."""

    def __init__(self, keys: Keys, queue: str) -> None:
        self.queue = queue
        # A data queue's keys are QueueKeys under its own base, so each
        # script's declared KEYS (keys_for) name them.
        self.k = keys.data(queue)
        self.s = scripts()

    # -- items -------------------------------------------------------------------

    def put(self, args: list[Any], label: str) -> Call[Any]:
        """``args``: the data_put head and its (id, item JSON) pairs (built by the caller,
        which encodes a chunk only when its turn comes)."""
        return Call(self.s.data_put, self.s.data_put.keys_for(self.k), args, lambda r: r, label)

    def get(self, mode: str, items: int, vis_ms: int, attempts: int, use_dead: bool,
            batch: int) -> Call[list[Any]]:
        """data_get: {now_ms, next_ms, id, item, receipt, ...} as Redis sent it."""
        return Call(self.s.data_get, self.s.data_get.keys_for(self.k),
                    [mode, items, vis_ms, attempts, 1 if use_dead else 0, batch], list)

    def refresh(self, vis_ms: int, fenced: bool, ids: list[str]) -> Call[list[str]]:
        """Extend leases: ``ids`` plain, or (id, receipt) flattened when ``fenced``."""
        return Call(self.s.data_refresh, self.s.data_refresh.keys_for(self.k),
                    [vis_ms, 1 if fenced else 0, *ids], _texts)

    def done(self, fenced: bool, ids: list[str]) -> Call[int]:
        return Call(self.s.data_done, self.s.data_done.keys_for(self.k),
                    [1 if fenced else 0, *ids], int)

    def wait_wake(self, timeout: float) -> Command[Any]:
        """Block until a put (or an earlier due time) pushes the wake token."""
        return command("BLPOP", self.k.wake, timeout)

    # -- whole queue -------------------------------------------------------------

    def count(self, batch: int) -> Call[tuple[int, int]]:
        """(available, invisible), after upkeep."""
        return Call(self.s.data_count, self.s.data_count.keys_for(self.k), [batch], _pair)

    def clear(self) -> Call[int]:
        return Call(self.s.data_clear, self.s.data_clear.keys_for(self.k), [], int)

    # -- dead letters ------------------------------------------------------------

    def dead(self, limit: int, batch: int) -> Call[list[Any]]:
        """The oldest dead letters, after upkeep: {id, record JSON or false, ...}."""
        return Call(self.s.data_dead, self.s.data_dead.keys_for(self.k), [limit, batch], list)

    def dead_remove(self, ids: Sequence[str]) -> Call[list[str]]:
        """The ids this call removed (of concurrent removers, one gets each)."""
        return Call(self.s.data_dead_remove, self.s.data_dead_remove.keys_for(self.k), list(ids),
                    _texts)

    def dead_count(self) -> Command[int]:
        return command("ZCARD", self.k.dead, parse=int)

    def dead_clear(self) -> Call[int]:
        return clear_dead(self.k.dead, self.k.deadmsg)


def clear_dead(dead: str, deadmsg: str) -> Call[int]:
    """Delete a queue's dead letters (data or task) atomically; returns how many.

    data_clear counts its second key's fields and unlinks its keys in one
    script; the dead-letter hash holds one field per dead letter, and the
    other key slots repeat ``dead`` (a key named twice is harmless).
    """
    return Call(scripts().data_clear, [dead, deadmsg, dead, dead, dead], [], int)


def note_data_queue(keys: Keys, queue: str) -> Command[Any]:
    """Record a data queue in the index the dead-letter views read."""
    return command("SADD", keys.data_queues, queue)


def data_queue_names(keys: Keys) -> Command[list[str]]:
    return command("SMEMBERS", keys.data_queues, parse=lambda r: sorted(_texts(r)))


# -- dead-lettered tasks, for the task dead-letter view -------------------------------


def task_dead_count(keys: Keys, queue: str) -> Command[int]:
    return command("ZCARD", keys.queue(queue).dead, parse=int)


def task_dead_clear(keys: Keys, queue: str) -> Call[int]:
    k = keys.queue(queue)
    return clear_dead(k.dead, k.deadmsg)


def task_dead_remove(keys: Keys, queue: str, ids: Sequence[str]) -> list[Command[int]]:
    """ZREM then HDEL: the first reply is how many of ``ids`` were dead here."""
    k = keys.queue(queue)
    return [command("ZREM", k.dead, *ids, parse=int), command("HDEL", k.deadmsg, *ids, parse=int)]


def block_cap(client: Any) -> float:
    """How long one blocking read may wait on ``client`` (sync or asyncio).

    A wait longer than the socket timeout would look like a dead server; a
    cluster client keeps its timeout elsewhere, which socket_timeout() knows.
    """
    timeout = socket_timeout(client)
    return DEFAULT_BLOCK_CAP if not timeout else max(0.05, float(timeout) / 2)


# -- SimpleLock: on a connection the caller gives, not an app's store -----------------


def lock_acquire(conn: Any, name: str, token: str, px: int) -> bool:
    """SET NX PX: True if this token now holds the lock."""
    return bool(conn.set(name, token, nx=True, px=px))


def lock_release(conn: Any, name: str, token: str) -> bool:
    """Release the lock only if ``token`` still holds it."""
    return bool(scripts().release_lock(conn, [name], [token]))
