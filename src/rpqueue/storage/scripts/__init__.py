"""Lua scripts, one file per atomic operation, and a tiny loader.

A script may pull shared helpers in with a line ``--@include lib/<name>.lua``;
the loader splices the file in, so every script stays one self-contained
source for EVAL (Redis has no include of its own).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # pragma: no cover - hiredis is a dependency, but optional for redis-py
    _pack = None

_INCLUDE = re.compile(r"^--@include (\S+)$", re.MULTILINE)


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The full source of ``<name>.lua`` with its includes spliced in."""
    return _INCLUDE.sub(lambda m: _read(m.group(1)), _read(name + ".lua"))


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

    def __call__(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.execute_command("EVAL", self.source, len(keys), *keys, *args)

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
            conn.send_command("EVAL", self.source, len(keys), *keys, *args)
            return conn.read_response()

    async def acall(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        """The same on a redis.asyncio client."""
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.execute_command("EVAL", self.source, len(keys), *keys, *args)

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
