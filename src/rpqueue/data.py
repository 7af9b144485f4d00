"""Data queues: JSON items, not tasks, read 1..1000 at a time.

A read with ``vis_timeout`` 0 removes what it returns (0/1); > 0 leases it
(1+): the item is hidden until the lease ends, then readable again, up to
``attempts`` leased reads, after which it is dropped or dead-lettered; < 0
peeks. ``get_data_with_receipts`` adds a lease receipt per item so that
``refresh_data``/``done_data`` act only for the holder of the latest lease.

Storage (one hash tag per queue, all under ``Keys.data(queue).base``): the
scripts ``scripts/data_*.lua`` list each key; every deadline is Redis time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from redis.exceptions import NoScriptError, ResponseError

from .context import DEADLETTER_QUEUE, Context, context_of, default_context
from .errors import MessageTooLarge, translate
from .storage.connection import socket_timeout
from .storage.keys import normalize_queue
from .storage.message import new_id
from .storage.scripts import LuaScript, scripts
from .storage.wire import text

MAX_ITEMS = 1000
# Expired leases / due delayed items one call handles at most: bounds how
# long one script holds Redis when a large backlog expires at once.
UPKEEP_BATCH = 1000
# Items validated per JSON call before a put: keeps the validation pass's
# memory bounded however many items one put carries.
_VALIDATE_SLICE = 4096
_IDS_PER_CALL = 1000

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _fast_encoder() -> Callable[[Any], str]:
    """_encoder.encode for items already validated, minus its per-call setup.

    JSONEncoder.encode builds a C encoder on every call, a third of the cost
    of a small item; a put encodes every item, so build it once. Without
    CPython's C helper (or if its signature ever changes), the plain encoder.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            # The arguments JSONEncoder.iterencode passes for _encoder's
            # settings; markers None skips the cycle check (validation did it).
            c_encode = make(None, _encoder.default, json.encoder.encode_basestring, None,
                            ":", ",", False, False, False)
            if "".join(c_encode([1.5, "é", {"a": None}], 0)) == _encoder.encode(
                    [1.5, "é", {"a": None}]):
                return lambda item: "".join(c_encode(item, 0))
        except TypeError:
            pass
    return _encoder.encode


_encode_item = _fast_encoder()


class Leased(NamedTuple):
    """An item read under a lease, with the receipt that proves the lease."""

    item: Any
    receipt: str


class _DataKeys:
    """Key names of one data queue; all share the queue's hash tag."""

    def __init__(self, base: str) -> None:
        self.ready, self.msg, self.delayed = base + "ready", base + "msg", base + "delayed"
        self.leases, self.meta, self.wake = base + "leases", base + "meta", base + "wake"
        self.dead, self.deadmsg = base + "dead", base + "deadmsg"
        # The order data_common.lua documents for scripts that run upkeep.
        self.upkeep = [self.ready, self.msg, self.delayed, self.leases, self.meta, self.wake,
                       self.dead, self.deadmsg]


def _seconds(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


def _item_count(items: Any) -> int:
    if isinstance(items, bool) or not isinstance(items, int):
        raise TypeError(f"items must be an int, not {type(items).__name__}")
    if not 1 <= items <= MAX_ITEMS:
        raise ValueError(f"items must be 1..{MAX_ITEMS}, got {items}")
    return items


def _texts(values: list[Any]) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


log = logging.getLogger("rpqueue.data")
_UNREADABLE = object()


def _decode_items(raws: list[Any]) -> list[Any]:
    """JSON items read from Redis, parsed as one array: one parser call per read.

    An item that is not JSON this process can parse (written by another
    program, or nested past the parser's recursion limit) comes back as
    _UNREADABLE, so the good items read with it are not lost.
    """
    if not raws:
        return []
    try:
        if isinstance(raws[0], bytes):
            items = json.loads(b"[" + b",".join(raws) + b"]")
        else:
            items = json.loads("[" + ",".join(raws) + "]")
    except (TypeError, ValueError, RecursionError):
        items = None
    if isinstance(items, list) and len(items) == len(raws):
        return items
    out = []
    for raw in raws:
        try:
            out.append(json.loads(raw))
        except (TypeError, ValueError, RecursionError):
            out.append(_UNREADABLE)
    return out


def _readable(rows: list[tuple[str, Any, Any]]) -> list[tuple[str, Any, Any]]:
    for itemid, item, _ in rows:
        if item is _UNREADABLE:
            log.error("data item %r is not readable JSON; left out of this read", itemid)
    return [row for row in rows if row[1] is not _UNREADABLE]


def _eval_pipelined(client: Any, calls: list[tuple[LuaScript, list[str], list[Any]]],
                    note: tuple[str, str] | None = None) -> list[Any]:
    """Run several script calls (and an index update) in one round trip.

    A pipeline cannot retry EVALSHA on NOSCRIPT by itself; a script that was
    not found did not run, so running those again with EVAL is safe.
    """
    pipe = client.pipeline(transaction=False)
    if note is not None:
        pipe.sadd(*note)
    for script, keys, args in calls:
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    replies = pipe.execute(raise_on_error=False)
    if note is not None:
        if isinstance(replies[0], Exception):
            raise replies[0]
        replies = replies[1:]
    out: list[Any] = []
    for (script, keys, args), reply in zip(calls, replies):
        if isinstance(reply, NoScriptError):
            reply = script(client, keys, args)
        elif isinstance(reply, Exception):
            raise reply
        out.append(reply)
    return out


def _ids(items: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """Split what refresh/done were given into plain ids and (id, receipt) pairs."""
    if isinstance(items, (str, bytes)):
        return [text(items)], []
    plain: list[str] = []
    fenced: list[tuple[str, str]] = []
    if isinstance(items, Mapping):
        for key, value in items.items():
            if isinstance(value, Leased):
                fenced.append((text(key), value.receipt))
            else:
                plain.append(text(key))
    else:
        plain = [text(i) for i in items]
    return plain, fenced


class Data:
    """A data queue; see the module docstring and API.md ("Data queues").

    ``Data(DEADLETTER_QUEUE)`` reads the dead letters of every data queue,
    ``Data(name, is_dead=True)`` those of one; with ``is_tasks=True`` the
    same views show dead-lettered tasks instead.
    """

    def __init__(self, queue: str | bytes, attempts: int = 1, vis_timeout: float = 0,
                 use_dead: bool | None = None, is_tasks: bool = False, is_dead: bool = False,
                 *, app: Any = None) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"attempts must be an int, not {type(attempts).__name__}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.app = default_context() if app is None else context_of(app)
        self.queue = normalize_queue(queue)
        self.attempts = attempts
        # A negative default would silently turn every read into a peek.
        self.vis_timeout = max(0.0, _seconds("vis_timeout", vis_timeout))
        self.use_dead = use_dead
        self.is_tasks = bool(is_tasks)
        self.is_dead = bool(is_dead) or self.queue == DEADLETTER_QUEUE

    def __repr__(self) -> str:
        return (f"Data({self.queue!r}, attempts={self.attempts}, vis_timeout={self.vis_timeout}, "
                f"use_dead={self.use_dead}, is_tasks={self.is_tasks}, is_dead={self.is_dead})")

    @property
    def _k(self) -> _DataKeys:
        return _DataKeys(self.app.keys.data(self.queue).base)

    def _live_only(self, what: str) -> None:
        if self.is_dead:
            raise ValueError(f"{what}() is not available on a dead-letter view ({self.queue!r})")
        if self.is_tasks:
            raise ValueError("Data(is_tasks=True) only reads dead-lettered tasks: use "
                             "Data(DEADLETTER_QUEUE, is_tasks=True) or is_dead=True")

    # -- writing ---------------------------------------------------------------

    def put_data(self, data: Any, use_dead: bool | None = None, is_one: bool = False,
                 chunksize: int = 512, delay: float = 0) -> dict[str, Any]:
        """Queue items (each JSON-encodable); returns {id: item}."""
        self._live_only("put_data")
        keys, calls = self._put_calls(data, use_dead, is_one, chunksize, delay)
        client, script = self.app.client, scripts().data_put
        out: dict[str, Any] = {}
        for start, ids, chunk, args in calls:
            out.update(zip(ids, chunk))
            try:
                if start == 0:
                    # Indexed on every put, in the same round trip: a flushed
                    # or restarted Redis cannot leave a queue out of the index.
                    _eval_pipelined(client, [(script, keys, args)],
                                    note=(self.app.keys.data_queues, self.queue))
                else:
                    script(client, keys, args)
            except ResponseError as exc:
                raise translate(exc, self._put_what(start)) from exc
        return out

    async def aput_data(self, data: Any, use_dead: bool | None = None, is_one: bool = False,
                        chunksize: int = 512, delay: float = 0) -> dict[str, Any]:
        """``put_data`` for asyncio code, on a redis.asyncio connection."""
        self._live_only("aput_data")
        keys, calls = self._put_calls(data, use_dead, is_one, chunksize, delay)
        client, script = self.app.aclient(), scripts().data_put
        out: dict[str, Any] = {}
        for start, ids, chunk, args in calls:
            out.update(zip(ids, chunk))
            try:
                if start == 0:
                    await client.sadd(self.app.keys.data_queues, self.queue)
                await script.acall(client, keys, args)
            except ResponseError as exc:
                raise translate(exc, self._put_what(start)) from exc
        return out

    def _put_calls(self, data: Any, use_dead: bool | None, is_one: bool, chunksize: int,
                   delay: float) -> tuple[list[str], Iterator[tuple[int, list[str],
                                                                    Sequence[Any], list[Any]]]]:
        """Check a whole put before anything is sent; then the data_put keys and
        its script calls, one per chunk: (start, ids, items, args)."""
        delay = max(0.0, _seconds("delay", delay))
        if delay > 0 and self.vis_timeout <= 0:
            raise ValueError("delay needs a queue with vis_timeout > 0")
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"chunksize must be an int >= 1, got {chunksize!r}")
        items = self._as_items(data, is_one)
        self._validate(items)
        dead = self.use_dead if use_dead is None else use_dead
        head = [self.attempts if self.attempts > 1 else 0,
                "?" if dead is None else "1" if dead else "0", _ms(delay),
                self.app.max_message_bytes]
        k = self._k
        return [k.ready, k.msg, k.delayed, k.meta, k.wake], _put_chunks(items, head, chunksize)

    def _put_what(self, start: int) -> str:
        what = f"items {start}.. of this put to data queue {self.queue!r}"
        if start:
            what += f" (items 0..{start - 1} were queued)"
        return what

    @staticmethod
    def _as_items(data: Any, is_one: bool) -> Sequence[Any]:
        if is_one:
            return [data]
        if isinstance(data, (str, bytes, bytearray, Mapping)) or not isinstance(data, Iterable):
            raise TypeError(f"data must be a list of items, not {type(data).__name__} "
                            "(put one item with is_one=True)")
        return data if isinstance(data, Sequence) else list(data)

    def _validate(self, items: Sequence[Any]) -> None:
        """Refuse the whole call before the first write if any item cannot be sent."""
        limit = self.app.max_message_bytes
        for start in range(0, len(items), _VALIDATE_SLICE):
            part = items[start:start + _VALIDATE_SLICE]
            try:
                joined = _encoder.encode(list(part))
            except (TypeError, ValueError, RecursionError):
                joined = None
            # An item's JSON is part of the slice's: a short slice (<= 4 bytes
            # per character) holds no item over the limit.
            if joined is not None and not (limit and len(joined) * 4 > limit):
                continue
            for i, item in enumerate(part, start):
                try:
                    size = len(_encoder.encode(item).encode("utf-8"))
                except (TypeError, ValueError, RecursionError) as exc:
                    raise TypeError(f"item {i} cannot be sent as JSON: {exc}") from None
                if limit and size > limit:
                    raise MessageTooLarge(f"item {i} was not queued: {size} bytes exceeds "
                                          f"the limit of {limit} bytes (nothing was queued)")

    # -- reading ---------------------------------------------------------------

    def get_data(self, items: int = 1, vis_timeout: float | None = None,
                 get_timeout: float | None = None) -> dict[str, Any]:
        """Read up to ``items`` items: {id: item}.

        Dead-letter views return API.md's rows instead, remove what they
        return unless ``vis_timeout`` < 0, and never wait (``get_timeout``).
        """
        n = _item_count(items)
        vis = self.vis_timeout if vis_timeout is None else _seconds("vis_timeout", vis_timeout)
        if self.is_dead:
            return self._read_dead_view(n, remove=vis >= 0)
        self._live_only("get_data")
        return {i: item for i, item, _ in self._read(n, vis, get_timeout)}

    async def aget_data(self, items: int = 1, vis_timeout: float | None = None,
                        get_timeout: float | None = None) -> dict[str, Any]:
        """``get_data`` for asyncio code: waits (``get_timeout``) without blocking the loop.

        A dead-letter view (an admin read, never waiting) runs the sync read
        in a thread.
        """
        n = _item_count(items)
        vis = self.vis_timeout if vis_timeout is None else _seconds("vis_timeout", vis_timeout)
        if self.is_dead:
            return await asyncio.to_thread(self._read_dead_view, n, vis >= 0)
        self._live_only("aget_data")
        return {i: item for i, item, _ in await self._aread(n, vis, get_timeout)}

    def get_data_with_receipts(self, items: int = 1, vis_timeout: float | None = None,
                               get_timeout: float | None = None) -> dict[str, Leased]:
        """A leased read returning {id: Leased(item, receipt)}.

        Give the result (or part of it, as a dict) to refresh_data/done_data:
        they then act only while this read's lease is the item's latest and
        has not expired, so a reader whose lease ran out cannot touch an item
        since handed to another.
        """
        n = _item_count(items)
        vis = self.vis_timeout if vis_timeout is None else _seconds("vis_timeout", vis_timeout)
        if vis <= 0:
            raise ValueError("receipts come with leased reads: vis_timeout must be > 0")
        self._live_only("get_data_with_receipts")
        return {i: Leased(item, text(token))
                for i, item, token in self._read(n, vis, get_timeout)}

    async def aget_data_with_receipts(self, items: int = 1, vis_timeout: float | None = None,
                                      get_timeout: float | None = None) -> dict[str, Leased]:
        """``get_data_with_receipts`` for asyncio code."""
        n = _item_count(items)
        vis = self.vis_timeout if vis_timeout is None else _seconds("vis_timeout", vis_timeout)
        if vis <= 0:
            raise ValueError("receipts come with leased reads: vis_timeout must be > 0")
        self._live_only("aget_data_with_receipts")
        return {i: Leased(item, text(token))
                for i, item, token in await self._aread(n, vis, get_timeout)}

    def _read(self, n: int, vis: float, get_timeout: float | None) -> list[tuple[str, Any, str]]:
        k, client, script = self._k, self.app.client, scripts().data_get
        args, wait_until = self._read_args(n, vis, get_timeout)
        while True:
            rows, block = self._read_reply(script(client, k.upkeep, args), wait_until, client)
            if block is None:
                return rows
            # No polling: the wake token arrives with the next put (or an
            # earlier due time); otherwise we sleep until the next item is
            # due or a lease ends.
            client.blpop([k.wake], timeout=block)

    async def _aread(self, n: int, vis: float,
                     get_timeout: float | None) -> list[tuple[str, Any, str]]:
        k, client, script = self._k, self.app.aclient(), scripts().data_get
        args, wait_until = self._read_args(n, vis, get_timeout)
        while True:
            reply = await script.acall(client, k.upkeep, args)
            rows, block = self._read_reply(reply, wait_until, client)
            if block is None:
                return rows
            await client.blpop([k.wake], timeout=block)

    def _read_args(self, n: int, vis: float,
                   get_timeout: float | None) -> tuple[list[Any], float | None]:
        """data_get's arguments, and until when (monotonic) a read may wait."""
        mode = "peek" if vis < 0 else "take" if vis == 0 else "lease"
        args = [mode, n, _ms(vis), self.attempts, 1 if self.use_dead else 0, UPKEEP_BATCH]
        wait_until = None
        if get_timeout is not None and _seconds("get_timeout", get_timeout) > 0:
            wait_until = time.monotonic() + get_timeout
        return args, wait_until

    def _read_reply(self, reply: list[Any], wait_until: float | None,
                    client: Any) -> tuple[list[tuple[str, Any, str]], float | None]:
        """A data_get reply as rows, and how long to block on the wake list
        before reading again (None: return the rows, maybe none)."""
        rows = reply[2:]
        if rows or wait_until is None:
            return _readable(list(zip(_texts(rows[0::3]), _decode_items(rows[1::3]),
                                      rows[2::3]))), None
        remaining = wait_until - time.monotonic()
        if remaining <= 0:
            return [], None
        now_ms, next_ms = int(reply[0]), int(reply[1])
        if next_ms >= 0:
            remaining = min(remaining, max(next_ms - now_ms, 1) / 1000)
        return [], max(0.001, min(remaining, self._block_cap(client)))

    def _block_cap(self, client: Any = None) -> float:
        # A wait longer than the socket timeout would look like a dead server.
        # (A cluster client has no connection_pool: socket_timeout() knows.)
        timeout = socket_timeout(self.app.client if client is None else client)
        return 30.0 if not timeout else max(0.05, float(timeout) / 2)

    # -- leases ----------------------------------------------------------------

    def refresh_data(self, items: Any, vis_timeout: float | None = None) -> list[str]:
        """Extend live leases; returns the ids extended.

        Ids alone extend any live lease; a dict from get_data_with_receipts
        extends only leases those receipts still hold. A lease of 0 ends the
        lease now, making the item readable again.
        """
        if self.is_dead:
            return []
        self._live_only("refresh_data")
        script, client = scripts().data_refresh, self.app.client
        return [text(i) for keys, args in self._refresh_calls(items, vis_timeout)
                for i in script(client, keys, args)]

    async def arefresh_data(self, items: Any, vis_timeout: float | None = None) -> list[str]:
        """``refresh_data`` for asyncio code."""
        if self.is_dead:
            return []
        self._live_only("arefresh_data")
        script, client = scripts().data_refresh, self.app.aclient()
        out: list[str] = []
        for keys, args in self._refresh_calls(items, vis_timeout):
            out += [text(i) for i in await script.acall(client, keys, args)]
        return out

    def _refresh_calls(self, items: Any,
                       vis_timeout: float | None) -> list[tuple[list[str], list[Any]]]:
        vis = self.vis_timeout if vis_timeout is None else _seconds("vis_timeout", vis_timeout)
        k = self._k
        keys, head = [k.leases, k.meta, k.wake], [_ms(max(0.0, vis))]
        return [(keys, [*head, 1 if fenced else 0, *chunk])
                for fenced, chunk in self._chunks(items)]

    def done_data(self, items: Any) -> int:
        """Finish items; returns how many were finished.

        Ids alone finish items wherever they are; a dict from
        get_data_with_receipts finishes only items whose live lease those
        receipts hold. On a dead-letter view, removes those dead letters.
        """
        if self.is_dead:
            plain, fenced = _ids(items)
            return self._remove_dead(plain + [i for i, _ in fenced])
        self._live_only("done_data")
        script, client = scripts().data_done, self.app.client
        return sum(int(script(client, keys, args)) for keys, args in self._done_calls(items))

    async def adone_data(self, items: Any) -> int:
        """``done_data`` for asyncio code (a dead-letter view removes in a thread)."""
        if self.is_dead:
            return await asyncio.to_thread(self.done_data, items)
        self._live_only("adone_data")
        script, client = scripts().data_done, self.app.aclient()
        done = 0
        for keys, args in self._done_calls(items):
            done += int(await script.acall(client, keys, args))
        return done

    def _done_calls(self, items: Any) -> list[tuple[list[str], list[Any]]]:
        k = self._k
        keys = [k.leases, k.msg, k.meta, k.delayed]
        return [(keys, [1 if fenced else 0, *chunk]) for fenced, chunk in self._chunks(items)]

    @staticmethod
    def _chunks(items: Any) -> Iterable[tuple[bool, list[str]]]:
        plain, fenced = _ids(items)
        for start in range(0, len(plain), _IDS_PER_CALL):
            yield False, plain[start:start + _IDS_PER_CALL]
        for start in range(0, len(fenced), _IDS_PER_CALL):
            yield True, [x for pair in fenced[start:start + _IDS_PER_CALL] for x in pair]

    # -- whole queue -----------------------------------------------------------

    def currently_available(self) -> tuple[int, int]:
        """(available, invisible): invisible items are leased or delayed."""
        if self.is_dead:
            if not self.is_tasks:
                # Upkeep first, as a read would: leases that ran out on their
                # last attempt count as dead, not as invisible.
                _eval_pipelined(self.app.client, [
                    (scripts().data_count, _DataKeys(self.app.keys.data(q).base).upkeep,
                     [UPKEEP_BATCH]) for q in self._dead_queues()])
            pipe = self.app.client.pipeline(transaction=False)
            for dead, _ in self._dead_keys():
                pipe.zcard(dead)
            return sum(int(n) for n in pipe.execute()), 0
        self._live_only("currently_available")
        available, invisible = scripts().data_count(self.app.client, self._k.upkeep,
                                                    [UPKEEP_BATCH])
        return int(available), int(invisible)

    def delete_all(self) -> int:
        """Delete every item (live ones; on a dead-letter view, its dead letters)."""
        if self.is_dead:
            removed = 0
            for dead, deadmsg in self._dead_keys():
                pipe = self.app.client.pipeline(transaction=True)
                pipe.zcard(dead)
                pipe.unlink(dead, deadmsg)
                removed += int(pipe.execute()[0])
            return removed
        self._live_only("delete_all")
        k = self._k
        return int(scripts().data_clear(self.app.client,
                                        [k.ready, k.msg, k.delayed, k.leases, k.meta], []))

    # -- dead letters ----------------------------------------------------------

    def _dead_queues(self) -> list[str]:
        if self.queue != DEADLETTER_QUEUE:
            return [self.queue]
        if self.is_tasks:
            return self.app.known_queues()
        return sorted(text(q) for q in self.app.client.smembers(self.app.keys.data_queues))

    def _dead_keys(self) -> list[tuple[str, str]]:
        if self.is_tasks:
            return [(qk.dead, qk.deadmsg)
                    for qk in (self.app.keys.queue(q) for q in self._dead_queues())]
        return [(k.dead, k.deadmsg)
                for k in (_DataKeys(self.app.keys.data(q).base) for q in self._dead_queues())]

    def _read_dead_view(self, n: int, remove: bool) -> dict[str, Any]:
        if self.is_tasks:
            from .admin import dead_records, delete_dead

            records = dead_records(self.app, self._dead_queues(), limit=n)
            if remove:
                delete_dead(self.app, records)
            return {r["id"]: [r["id"], r.get("name", ""), r.get("args", []),
                              r.get("kwargs", {}), r.get("time")] for r in records}
        rows = _dead_data(self.app, self._dead_queues(), n, remove)
        return {r["id"]: [r["id"], "", r["item"], {
            "queue": r["queue"], "reason": r["reason"], "attempts_used": r["attempts_used"],
            "time": r["time"]}, r["inserted"]] for r in rows}

    def _remove_dead(self, ids: list[str]) -> int:
        if not ids:
            return 0
        if self.is_tasks:
            pipe = self.app.client.pipeline(transaction=False)
            for dead, deadmsg in self._dead_keys():
                pipe.zrem(dead, *ids)
                pipe.hdel(deadmsg, *ids)
            return sum(int(n) for n in pipe.execute()[::2])
        removed = _eval_pipelined(self.app.client, [
            (scripts().data_dead_remove, [dead, deadmsg], list(ids))
            for dead, deadmsg in self._dead_keys()])
        return sum(len(r) for r in removed)

    @staticmethod
    def read_dead(app: Context, delete: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """Dead data items of every data queue, oldest first, as dicts:
        id, queue, item, reason, attempts_used, time (died), inserted (put)."""
        queues = sorted(text(q) for q in app.client.smembers(app.keys.data_queues))
        return _dead_data(app, queues, max(1, int(limit)), delete)


def _put_chunks(items: Sequence[Any], head: list[Any],
                chunksize: int) -> Iterator[tuple[int, list[str], Sequence[Any], list[Any]]]:
    """data_put calls for a checked put, each chunk encoded only when its turn comes."""
    for start in range(0, len(items), chunksize):
        chunk = items[start:start + chunksize]
        ids = [new_id() for _ in chunk]
        args: list[Any] = [*head, *([None, None] * len(chunk))]
        args[len(head)::2] = ids
        args[len(head) + 1::2] = map(_encode_item, chunk)
        yield start, ids, chunk, args


def _dead_data(app: Context, queues: list[str], limit: int,
               remove: bool) -> list[dict[str, Any]]:
    """The oldest ``limit`` dead letters across ``queues``; with ``remove``,
    only those this call removed (a concurrent reader gets the others)."""
    keys = {q: _DataKeys(app.keys.data(q).base) for q in queues}
    replies = _eval_pipelined(app.client, [
        (scripts().data_dead, keys[q].upkeep, [limit, UPKEEP_BATCH]) for q in queues])
    rows: list[dict[str, Any]] = []
    for queue, reply in zip(queues, replies):
        for i in range(0, len(reply), 2):
            if reply[i + 1]:
                rows.append(_dead_row(queue, text(reply[i]), reply[i + 1]))
    rows.sort(key=lambda r: (r["time"], r["id"]))
    rows = rows[:limit]
    if remove and rows:
        chosen = sorted({r["queue"] for r in rows})
        removed = _eval_pipelined(app.client, [
            (scripts().data_dead_remove, [keys[q].dead, keys[q].deadmsg],
             [r["id"] for r in rows if r["queue"] == q]) for q in chosen])
        gone = {(q, text(i)) for q, ids in zip(chosen, removed) for i in ids}
        rows = [r for r in rows if (r["queue"], r["id"]) in gone]
    return rows


def _dead_row(queue: str, taskid: str, raw: Any) -> dict[str, Any]:
    record = json.loads(raw)
    return {"id": taskid, "queue": queue, "item": json.loads(record["item"]),
            "reason": record.get("reason"), "attempts_used": record.get("reads"),
            "time": record.get("died_ms", 0) / 1000, "inserted": record.get("inserted_ms", 0) / 1000}
