"""Following task state changes as they happen: ``RPQueue.events`` and
``RPQueue.aevents`` (see docs/TASK_STATE.md).

Each queue has a bounded Redis Stream the scripts append to in the same
atomic step that changes a task's state, so the stream and the state never
disagree. Events are opt-in (``RPQueue.set_events``): off, nothing is
written and these iterators see nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .storage import Store, events_io
from .storage.keys import normalize_queue
from .storage.store import EVENTS_MAXLEN

# Each queue's stream keeps about this many events unless set_events says otherwise.
DEFAULT_EVENTS_MAXLEN = EVENTS_MAXLEN

# Every event type, in the order a task's life can produce them.
EVENT_TYPES = ("enqueued", "started", "progress", "retrying", "succeeded", "failed", "dead",
               "cancelled", "aborted")
# The longest a single blocking read lasts: below the client's socket timeout.
BLOCK_MS = 1000
# How often "all queues" looks for queues that appeared since.
REFRESH = 5.0


@dataclass(frozen=True)
class Event:
    """One state change: ``event`` (one of EVENT_TYPES), the task's ``id``,
    ``name``, ``queue`` and ``attempt``, the unix ``time`` Redis wrote it
    (from the stream id), the stream id itself (``cursor``, for ``since=``),
    and for 'progress' ``data`` with done, total and note."""

    event: str
    queue: str
    id: str
    name: str
    attempt: int
    time: float
    cursor: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _event(queue: str, sid: str, fields: dict[str, str]) -> Event:
    data: dict[str, Any] = {}
    if fields.get("event") == "progress":
        data = {"done": _num(fields.get("done")), "total": _num(fields.get("total")),
                "note": fields.get("note", "")}
    try:
        attempt = int(fields.get("attempt", "1"))
    except ValueError:
        attempt = 1
    return Event(fields.get("event", "?"), queue, fields.get("id", ""), fields.get("name", ""),
                 attempt, int(sid.split("-")[0]) / 1000, sid, data)


def _num(raw: str | None) -> float | None:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _sort_key(entry: events_io.Entry) -> tuple[int, int]:
    ms, _, seq = entry[1].partition("-")
    return int(ms), int(seq or 0)


def start_cursor(since: float | str | None, now: float) -> str:
    """The stream id reading starts after: ``since`` as a stream id, as unix
    seconds, or None for "from now on"."""
    if since is None:
        return _at(now)
    if isinstance(since, str):
        head, _, seq = since.partition("-")
        if not head.isdigit() or (seq and not seq.isdigit()):
            raise ValueError(f"since must be unix seconds or a stream id like '1700000000000-0', "
                             f"not {since!r}")
        return since
    if isinstance(since, bool) or not isinstance(since, (int, float)) or since < 0:
        raise ValueError(f"since must be unix seconds >= 0, a stream id or None, not {since!r}")
    return _at(since)


def _at(seconds: float) -> str:
    """The cursor just before the first stream id at or after ``seconds``:
    XREAD returns ids after its cursor, and an event written in the same
    millisecond as "now" must be seen."""
    ms = int(seconds * 1000)
    return "0-0" if ms <= 0 else f"{ms - 1}-{2**64 - 1}"


class _Follow:
    """Cursors per queue and the bookkeeping shared by the sync and async loops."""

    def __init__(self, store: Store, queues: Iterable[str | bytes] | None,
                 since: float | str | None, timeout: float | None, now: float) -> None:
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, (int, float)) or timeout < 0):
            raise ValueError(f"timeout must be None or seconds >= 0, not {timeout!r}")
        self.store = store
        self.all = queues is None
        self.start = start_cursor(since, now)
        self.cursors = {normalize_queue(q): self.start for q in (queues or [])}
        self.timeout = timeout
        self.idle_since = time.monotonic()
        self.refreshed = 0.0

    def refresh(self) -> None:
        if self.all and time.monotonic() - self.refreshed >= REFRESH:
            for q in self.store.known_queues():
                self.cursors.setdefault(q, self.start)
            self.refreshed = time.monotonic()

    def block_ms(self) -> int:
        if self.timeout is None:
            return BLOCK_MS
        left = self.timeout - (time.monotonic() - self.idle_since)
        return max(1, min(BLOCK_MS, int(left * 1000)))

    def expired(self) -> bool:
        return self.timeout is not None and time.monotonic() - self.idle_since >= self.timeout

    def take(self, entries: list[events_io.Entry]) -> list[Event]:
        out = []
        for queue, sid, fields in sorted(entries, key=_sort_key):
            self.cursors[queue] = sid
            out.append(_event(queue, sid, fields))
        if out:
            self.idle_since = time.monotonic()
        return out


def follow(store: Store, queues: Iterable[str | bytes] | None = None,
           since: float | str | None = None, timeout: float | None = None) -> Iterator[Event]:
    """Events of ``queues`` (None: every known queue, new ones included) after
    ``since``, in order per queue, as they come; ends once ``timeout``
    seconds pass without one (None: never). "From now on" (``since=None``)
    is fixed when this is called, not at the first ``next()``."""
    return _follow(store, _Follow(store, queues, since, timeout, store.redis_time()))


def _follow(store: Store, f: _Follow) -> Iterator[Event]:
    while True:
        f.refresh()
        entries: list[events_io.Entry] = []
        if f.cursors:
            entries = events_io.read(store, f.cursors, f.block_ms())
        if not entries and (store.cluster or not f.cursors):
            time.sleep(min(0.05, f.block_ms() / 1000))  # read without blocking: pace it
        yield from f.take(entries)
        if f.expired():
            return


async def afollow(store: Store, queues: Iterable[str | bytes] | None = None,
                  since: float | str | None = None,
                  timeout: float | None = None) -> AsyncIterator[Event]:
    """``follow`` for asyncio code, on the redis.asyncio client ("from now on"
    starts at the first iteration)."""
    import asyncio

    f = _Follow(store, queues, since, timeout, await store.aredis_time())
    while True:
        if f.all and time.monotonic() - f.refreshed >= REFRESH:
            for q in await store.aknown_queues():
                f.cursors.setdefault(q, f.start)
            f.refreshed = time.monotonic()
        entries: list[events_io.Entry] = []
        if f.cursors:
            entries = await events_io.aread(store, f.cursors, f.block_ms())
        if not entries and (store.cluster or not f.cursors):
            await asyncio.sleep(min(0.05, f.block_ms() / 1000))
        for event in f.take(entries):
            yield event
        if f.expired():
            return
