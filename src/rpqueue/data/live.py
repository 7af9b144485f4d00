"""``DataQueue``: a live data queue (put, read, lease, finish).

A read with ``vis_timeout`` 0 removes what it returns; > 0 leases it; < 0
peeks. Every call is built in ``storage/data_calls.py`` and run by the
store's executor; a put's first chunk carries the data-queue index update
in the same round trip, sync or async.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..context import DEADLETTER_QUEUE
from ..errors import translate
from ..storage.calls import Call
from ..storage.connection import ResponseError
from ..storage.data_calls import DataCalls, block_cap, note_data_queue
from ..storage.executor import Step, raise_first
from ..storage.wire import text
from .base import Data, Leased, id_chunks, item_count, seconds, to_ms
from .codec import as_items, put_chunks, read_rows, validate
from .records import UPKEEP_BATCH

_Chunk = tuple[int, list[str], Sequence[Any], list[Any]]


class DataQueue(Data, built_by_data=True):
    """A live data queue; ``Data(name, ...)`` without dead-letter flags is one."""

    def __init__(self, queue: str | bytes, attempts: int = 1, vis_timeout: float = 0,
                 use_dead: bool | None = None, *, app: Any = None) -> None:
        super().__init__(queue, attempts, vis_timeout, use_dead, app=app)
        if self.queue == DEADLETTER_QUEUE:
            raise ValueError(f"{DEADLETTER_QUEUE!r} names the dead-letter view, not a data "
                             "queue: use Data(DEADLETTER_QUEUE) or DataDeadLetters")

    @property
    def _calls(self) -> DataCalls:
        return DataCalls(self.app.store.keys, self.queue)

    # -- writing ---------------------------------------------------------------

    def put_data(self, data: Any, use_dead: bool | None = None, is_one: bool = False,
                 chunksize: int = 512, delay: float = 0) -> dict[str, Any]:
        """Queue items (each JSON-encodable); returns {id: item}."""
        calls, chunks = self._put_calls(data, use_dead, is_one, chunksize, delay)
        out: dict[str, Any] = {}
        for start, ids, chunk, args in chunks:
            out.update(zip(ids, chunk))
            call = calls.put(args, self._put_what(start))
            if start == 0:
                self._first_put(self.app.store.pipeline(self._first_steps(call)), start)
            else:
                self.app.store.run(call)
        return out

    async def aput_data(self, data: Any, use_dead: bool | None = None, is_one: bool = False,
                        chunksize: int = 512, delay: float = 0) -> dict[str, Any]:
        """``put_data`` for asyncio code, on a redis.asyncio connection; the
        same round trips as put_data (one for a put of one chunk)."""
        calls, chunks = self._put_calls(data, use_dead, is_one, chunksize, delay)
        out: dict[str, Any] = {}
        for start, ids, chunk, args in chunks:
            out.update(zip(ids, chunk))
            call = calls.put(args, self._put_what(start))
            if start == 0:
                self._first_put(await self.app.store.apipeline(self._first_steps(call)), start)
            else:
                await self.app.store.arun(call)
        return out

    def _first_steps(self, call: Call[Any]) -> list[Step]:
        # Indexed on every put, in the same round trip: a flushed or
        # restarted Redis cannot leave a queue out of the index.
        return [note_data_queue(self.app.store.keys, self.queue), call]

    def _first_put(self, replies: list[Any], start: int) -> None:
        noted, _ = replies
        if isinstance(noted, ResponseError):
            # A plain command's refusal is not translated by the executor.
            raise translate(noted, self._put_what(start)) from noted
        raise_first(replies)

    def _put_calls(self, data: Any, use_dead: bool | None, is_one: bool, chunksize: int,
                   delay: float) -> tuple[DataCalls, Iterator[_Chunk]]:
        """Check a whole put before anything is sent; then the queue's calls
        and the put's chunks."""
        delay = max(0.0, seconds("delay", delay))
        if delay > 0 and self.vis_timeout <= 0:
            raise ValueError("delay needs a queue with vis_timeout > 0")
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"chunksize must be an int >= 1, got {chunksize!r}")
        items = as_items(data, is_one)
        validate(items, self.app.store.max_message_bytes)
        dead = self.use_dead if use_dead is None else use_dead
        head = [self.attempts if self.attempts > 1 else 0,
                "?" if dead is None else "1" if dead else "0", to_ms(delay),
                self.app.store.max_message_bytes]
        return self._calls, put_chunks(items, head, chunksize)

    def _put_what(self, start: int) -> str:
        what = f"items {start}.. of this put to data queue {self.queue!r}"
        if start:
            what += f" (items 0..{start - 1} were queued)"
        return what

    # -- reading ---------------------------------------------------------------

    def get_data(self, items: int = 1, vis_timeout: float | None = None,
                 get_timeout: float | None = None) -> dict[str, Any]:
        """Read up to ``items`` items: {id: item}, waiting up to ``get_timeout``
        seconds for one to arrive."""
        n, vis = item_count(items), self._vis(vis_timeout)
        return {i: item for i, item, _ in self._read(n, vis, get_timeout)}

    async def aget_data(self, items: int = 1, vis_timeout: float | None = None,
                        get_timeout: float | None = None) -> dict[str, Any]:
        """``get_data`` for asyncio code: waits (``get_timeout``) without blocking the loop."""
        n, vis = item_count(items), self._vis(vis_timeout)
        return {i: item for i, item, _ in await self._aread(n, vis, get_timeout)}

    def get_data_with_receipts(self, items: int = 1, vis_timeout: float | None = None,
                               get_timeout: float | None = None) -> dict[str, Leased]:
        """A leased read returning {id: Leased(item, receipt)}.

        Give the result (or part of it, as a dict) to refresh_data/done_data:
        they then act only while this read's lease is the item's latest and
        has not expired, so a reader whose lease ran out cannot touch an item
        since handed to another.
        """
        n, vis = item_count(items), self._leased_vis(vis_timeout)
        return {i: Leased(item, text(token))
                for i, item, token in self._read(n, vis, get_timeout)}

    async def aget_data_with_receipts(self, items: int = 1, vis_timeout: float | None = None,
                                      get_timeout: float | None = None) -> dict[str, Leased]:
        """``get_data_with_receipts`` for asyncio code."""
        n, vis = item_count(items), self._leased_vis(vis_timeout)
        return {i: Leased(item, text(token))
                for i, item, token in await self._aread(n, vis, get_timeout)}

    def _leased_vis(self, vis_timeout: float | None) -> float:
        vis = self._vis(vis_timeout)
        if vis <= 0:
            raise ValueError("receipts come with leased reads: vis_timeout must be > 0")
        return vis

    def _read(self, n: int, vis: float, get_timeout: float | None) -> list[tuple[str, Any, Any]]:
        calls, store = self._calls, self.app.store
        call, wait_until = self._read_call(calls, n, vis, get_timeout)
        while True:
            rows, block = self._read_reply(store.run(call), wait_until, self.app.store.client)
            if block is None:
                return rows
            # No polling: the wake token arrives with the next put (or an
            # earlier due time); otherwise we sleep until the next item is
            # due or a lease ends.
            raise_first(store.pipeline([calls.wait_wake(block)]))

    async def _aread(self, n: int, vis: float,
                     get_timeout: float | None) -> list[tuple[str, Any, Any]]:
        calls, store = self._calls, self.app.store
        call, wait_until = self._read_call(calls, n, vis, get_timeout)
        while True:
            reply = await store.arun(call)
            rows, block = self._read_reply(reply, wait_until, self.app.store.aclient())
            if block is None:
                return rows
            raise_first(await store.apipeline([calls.wait_wake(block)]))

    def _read_call(self, calls: DataCalls, n: int, vis: float,
                   get_timeout: float | None) -> tuple[Call[list[Any]], float | None]:
        """The data_get call, and until when (monotonic) a read may wait."""
        mode = "peek" if vis < 0 else "take" if vis == 0 else "lease"
        call = calls.get(mode, n, to_ms(vis), self.attempts, bool(self.use_dead), UPKEEP_BATCH)
        wait_until = None
        if get_timeout is not None and seconds("get_timeout", get_timeout) > 0:
            wait_until = time.monotonic() + get_timeout
        return call, wait_until

    @staticmethod
    def _read_reply(reply: list[Any], wait_until: float | None,
                    client: Any) -> tuple[list[tuple[str, Any, Any]], float | None]:
        """A data_get reply as rows, and how long to block on the wake list
        before reading again (None: return the rows, maybe none)."""
        rows = reply[2:]
        if rows or wait_until is None:
            return read_rows(rows), None
        remaining = wait_until - time.monotonic()
        if remaining <= 0:
            return [], None
        now_ms, next_ms = int(reply[0]), int(reply[1])
        if next_ms >= 0:
            remaining = min(remaining, max(next_ms - now_ms, 1) / 1000)
        return [], max(0.001, min(remaining, block_cap(client)))

    # -- leases ----------------------------------------------------------------

    def refresh_data(self, items: Any, vis_timeout: float | None = None) -> list[str]:
        """Extend live leases; returns the ids extended.

        Ids alone extend any live lease; a dict from get_data_with_receipts
        extends only leases those receipts still hold. A lease of 0 ends the
        lease now, making the item readable again.
        """
        return [i for call in self._refresh_calls(items, vis_timeout)
                for i in self.app.store.run(call)]

    async def arefresh_data(self, items: Any, vis_timeout: float | None = None) -> list[str]:
        """``refresh_data`` for asyncio code."""
        out: list[str] = []
        for call in self._refresh_calls(items, vis_timeout):
            extended = await self.app.store.arun(call)
            out += extended
        return out

    def _refresh_calls(self, items: Any, vis_timeout: float | None) -> list[Call[list[str]]]:
        vis_ms, calls = to_ms(max(0.0, self._vis(vis_timeout))), self._calls
        return [calls.refresh(vis_ms, fenced, chunk) for fenced, chunk in id_chunks(items)]

    def done_data(self, items: Any) -> int:
        """Finish items; returns how many were finished.

        Ids alone finish items wherever they are; a dict from
        get_data_with_receipts finishes only items whose live lease those
        receipts hold.
        """
        calls = self._calls
        return sum(self.app.store.run(calls.done(fenced, chunk))
                   for fenced, chunk in id_chunks(items))

    async def adone_data(self, items: Any) -> int:
        """``done_data`` for asyncio code."""
        calls, done = self._calls, 0
        for fenced, chunk in id_chunks(items):
            done += await self.app.store.arun(calls.done(fenced, chunk))
        return done

    # -- whole queue -----------------------------------------------------------

    def currently_available(self) -> tuple[int, int]:
        """(available, invisible): invisible items are leased or delayed."""
        return self.app.store.run(self._calls.count(UPKEEP_BATCH))

    def delete_all(self) -> int:
        """Delete every live item (dead letters stay); returns how many."""
        return self.app.store.run(self._calls.clear())
