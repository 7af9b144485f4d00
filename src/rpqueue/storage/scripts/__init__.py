"""Lua scripts, one file per atomic operation, and a tiny loader.

A script may pull shared helpers in with a line ``--@include lib/<name>.lua``;
the loader splices the file in, so every script stays one self-contained
source for EVAL (Redis has no include of its own). Shared Lua lives in
``lib/`` only; every file beside this one is a script.

A script is named ``<operation>-<number of KEYS>.lua`` and declares its KEYS
in its opening comment block, one per line, in order::

    -- KEYS[<n>]  <role>  <TYPE>  <what it holds>

``<role>`` is a part of one queue (an attribute of ``keys.QueueKeys``, see
``keys.QUEUE_PARTS``) or a name from ``SPECIAL_KEYS``; ``LuaScript.keys_for``
builds a call's keys from that declaration, so the order is written once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from ..keys import QUEUE_PARTS, QueueKeys

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - hiredis is a dependency, but optional for redis-py
    _pack = None

_INCLUDE = re.compile(r"^--@include (\S+)$", re.MULTILINE)
# One declared key: "-- KEYS[<n>]  <role>  <TYPE>  <what it holds>".
_KEY_LINE = re.compile(r"^-- KEYS\[(\d+)\]\s+([a-z][a-z0-9_]*)\s+([A-Z|]+)(?:\s|$)")

# Roles a script may declare that are not a fixed part of one queue: the
# caller names their key in keys_for(). A global key of ``keys.Keys`` would
# be declared under its attribute's name and passed the same way.
SPECIAL_KEYS: dict[str, str] = {
    "result": "QueueKeys.result(taskid): the saved result of one task",
    "lock": "the key of one SimpleLock (locks.py)",
    "legacy_messages": "rpqueue 0.33's message HASH of the queue being migrated (legacy.py)",
    "legacy_source": "the rpqueue 0.33 LIST or ZSET a migration batch moves tasks from",
    "legacy_delayed": "rpqueue 0.33's delayed ZSET of the queue being migrated",
    "legacy_invisible": "rpqueue 0.33's invisible ZSET of the queue being migrated",
}


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The full source of ``<name>.lua`` with its includes spliced in."""
    return _INCLUDE.sub(lambda m: _read(m.group(1)), _read(name + ".lua"))


def declared_keys(name: str) -> tuple[str, ...]:
    """The roles of the KEYS ``<name>.lua`` declares, in order.

    Only the script's own opening comment block is read (not its includes),
    and every ``-- KEYS`` line there must be in the one format: a header that
    drifts from it, skips a number or disagrees with the count in the file
    name is a packaging bug, raised at load rather than found as a wrong key.
    """
    roles: list[str] = []
    for line in _read(name + ".lua").splitlines():
        if not line.startswith("--"):
            break
        if line.startswith("-- KEYS"):
            m = _KEY_LINE.match(line)
            if m is None or int(m.group(1)) != len(roles) + 1:
                raise ValueError(f"{name}.lua: expected '-- KEYS[{len(roles) + 1}]  <role>  <TYPE>  "
                                 f"...', got {line!r}")
            roles.append(m.group(2))
    count = int(name.rpartition("-")[2])
    if len(roles) != count:
        raise ValueError(f"{name}.lua declares {len(roles)} KEYS, its name says {count}")
    return tuple(roles)


class LuaScript:
    """EVALSHA with a reload on NOSCRIPT.

    Redis forgets its script cache on restart or failover, so the first call
    after one answers NOSCRIPT; loading and retrying once is always safe
    because a script that was not found did not run.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = source(name)
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()
        self.roles = declared_keys(name)
        # Positions of the roles keys_for() takes by name, not from the queue.
        self._named = tuple((i, r) for i, r in enumerate(self.roles) if r not in QUEUE_PARTS)
        # Per queue (QueueKeys.base, which every key of the queue extends):
        # the built list, so a hot call (take, enqueue) costs one dict look-up.
        self._fixed: dict[str, list[str]] = {}

    def keys_for(self, k: QueueKeys, **named: str) -> list[str]:
        """This script's KEYS for the queue ``k``, in declared order; a role
        that is not a part of the queue (``SPECIAL_KEYS``) is given by name,
        e.g. ``result=k.result(taskid)``. Without such roles the list is
        shared by every call on the queue: never change it."""
        fixed = self._fixed.get(k.base)
        if fixed is None:
            fixed = [getattr(k, r) if r in QUEUE_PARTS else "" for r in self.roles]
            self._fixed[k.base] = fixed
        if len(named) != len(self._named):
            raise TypeError(f"{self.name} takes the keys {[r for _, r in self._named]} by name, "
                            f"got {sorted(named)}")
        if not named:
            return fixed
        out = fixed.copy()
        try:
            for i, role in self._named:
                out[i] = named[role]
        except KeyError as exc:
            raise TypeError(f"{self.name} needs the key {exc.args[0]!r} by name") from None
        return out

    def command(self, keys: list[str], args: list[Any], source: bool = False) -> tuple[Any, ...]:
        """The EVALSHA of one call as a command tuple, or with ``source`` the
        EVAL that sends the script itself: for pipelines, which queue the
        command and act on NOSCRIPT themselves (executor, durable)."""
        if source:
            return ("EVAL", self.source, len(keys), *keys, *args)
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.execute_command(*self.command(keys, args, source=True))

    def call_on(self, conn: Any, keys: list[str], args: list[Any]) -> Any:
        """The same on one redis-py Connection held by the caller."""
        try:
            if _pack is not None:
                # hiredis packs str/bytes/int arguments as redis-py would, in C,
                # without redis-py's per-argument Python checks.
                conn.send_packed_command([_pack(("EVALSHA", self.sha, len(keys), *keys, *args))],
                                         check_health=False)
            else:
                conn.send_command("EVALSHA", self.sha, len(keys), *keys, *args)
            return conn.read_response()
        except NoScriptError:
            conn.send_command(*self.command(keys, args, source=True))
            return conn.read_response()

    async def acall(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """The same on a redis.asyncio client."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.execute_command(*self.command(keys, args, source=True))

    def __repr__(self) -> str:
        return f"LuaScript({self.name!r})"


class Scripts:
    """Every script the library runs, loaded once per process."""

    def __init__(self) -> None:
        self.enqueue = LuaScript("enqueue-12")
        self.enqueue_many = LuaScript("enqueue_many-12")
        self.take = LuaScript("take-11")
        self.done = LuaScript("done-6")
        self.finish_take = LuaScript("finish_take-12")
        self.fail = LuaScript("fail-11")
        self.cancel = LuaScript("cancel-8")
        self.status = LuaScript("status-3")
        self.task_state = LuaScript("task_state-4")
        self.progress = LuaScript("progress-3")
        self.peek = LuaScript("peek-5")
        self.migrate_legacy = LuaScript("migrate_legacy-12")
        self.extend = LuaScript("extend-2")
        self.clear = LuaScript("clear-7")
        self.release_lock = LuaScript("release_lock-1")
        self.release = LuaScript("release-5")
        self.requeue_dead = LuaScript("requeue_dead-8")
        self.register_periodic = LuaScript("register_periodic-2")
        self.claim_periodic = LuaScript("claim_periodic-9")
        self.data_put = LuaScript("data_put-5")
        self.data_get = LuaScript("data_get-8")
        self.data_refresh = LuaScript("data_refresh-3")
        self.data_done = LuaScript("data_done-4")
        self.data_count = LuaScript("data_count-8")
        self.data_dead = LuaScript("data_dead-8")
        self.data_dead_remove = LuaScript("data_dead_remove-2")
        self.data_clear = LuaScript("data_clear-5")


@cache
def scripts() -> Scripts:
    return Scripts()
