"""``Data``: what every data queue type shares, and the factory behind ``Data(...)``.

``Data(queue, attempts, vis_timeout, use_dead, is_tasks, is_dead, app=)``
keeps the original signature and builds the type its flags name: a live
``DataQueue``, a ``DataDeadLetters`` view (``Data(DEADLETTER_QUEUE)`` or
``is_dead=True``) or a ``TaskDeadLetters`` view (``is_tasks=True``). Each is
a ``Data``; the methods a type lacks raise ValueError as they always did.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, NamedTuple

from ..context import DEADLETTER_QUEUE, Context, context_of, default_context
from ..storage.data_calls import data_queue_names
from ..storage.executor import Step, raise_first
from ..storage.keys import normalize_queue
from ..storage.wire import text
from .records import dead_data

MAX_ITEMS = 1000
# Ids refresh/done send per script call: bounds one call's argument list.
_IDS_PER_CALL = 1000


class Leased(NamedTuple):
    """An item read under a lease, with the receipt that proves the lease."""

    item: Any
    receipt: str


def seconds(what: str, value: Any) -> float:
    """A finite number of seconds, or the error naming ``what`` was wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def to_ms(secs: float) -> int:
    """Milliseconds for a script: any positive time is at least 1 ms (0 means none)."""
    return max(1, round(secs * 1000)) if secs > 0 else 0


def item_count(items: Any) -> int:
    if isinstance(items, bool) or not isinstance(items, int):
        raise TypeError(f"items must be an int, not {type(items).__name__}")
    if not 1 <= items <= MAX_ITEMS:
        raise ValueError(f"items must be 1..{MAX_ITEMS}, got {items}")
    return items


def split_ids(items: Any) -> tuple[list[str], list[tuple[str, str]]]:
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


def id_chunks(items: Any) -> Iterable[tuple[bool, list[str]]]:
    """(fenced, ids) per script call: plain ids, then (id, receipt) pairs flattened."""
    plain, fenced = split_ids(items)
    for start in range(0, len(plain), _IDS_PER_CALL):
        yield False, plain[start:start + _IDS_PER_CALL]
    for start in range(0, len(fenced), _IDS_PER_CALL):
        yield True, [x for pair in fenced[start:start + _IDS_PER_CALL] for x in pair]


def run_steps(ctx: Context, steps: list[Step]) -> list[Any]:
    """Steps in one round trip (one per step on a cluster), raising the first error."""
    return raise_first(ctx.store.pipeline(steps)) if steps else []


# The type for each (is_tasks, is_dead) pair, filled as the types are defined
# (data/__init__ imports them all before anyone can call Data()).
_KINDS: dict[tuple[bool, bool], type[Data]] = {}


class _Factory(type):
    """``Data(...)`` builds the type its flags name; a concrete type builds itself."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is not Data:
            return super().__call__(*args, **kwargs)
        return _build(*args, **kwargs)


def _build(queue: str | bytes, attempts: int = 1, vis_timeout: float = 0,
           use_dead: bool | None = None, is_tasks: bool = False, is_dead: bool = False,
           *, app: Any = None) -> Data:
    dead = bool(is_dead) or normalize_queue(queue) == DEADLETTER_QUEUE
    if is_tasks and not dead:
        # Every method of such a view would refuse: say so at once.
        raise ValueError("Data(is_tasks=True) only reads dead-lettered tasks: use "
                         "Data(DEADLETTER_QUEUE, is_tasks=True) or is_dead=True")
    kind = _KINDS[(bool(is_tasks), dead)]
    return kind(queue, attempts, vis_timeout, use_dead, app=app)


class Data(metaclass=_Factory):
    """A data queue or a dead-letter view; see the package docstring and the README.

    ``Data(DEADLETTER_QUEUE)`` reads the dead letters of every data queue,
    ``Data(name, is_dead=True)`` those of one; with ``is_tasks=True`` the
    same views show dead-lettered tasks instead.
    """

    is_tasks: ClassVar[bool] = False
    is_dead: ClassVar[bool] = False

    def __init_subclass__(cls, built_by_data: bool = False, **kwargs: Any) -> None:
        # The types Data(...) builds say so (``class X(Data, built_by_data=True)``);
        # their flags pick them. Helper bases in between do not register.
        super().__init_subclass__(**kwargs)
        if built_by_data:
            _KINDS[(cls.is_tasks, cls.is_dead)] = cls

    def __init__(self, queue: str | bytes, attempts: int = 1, vis_timeout: float = 0,
                 use_dead: bool | None = None, *, app: Any = None) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise TypeError(f"attempts must be an int, not {type(attempts).__name__}")
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.app: Context = default_context() if app is None else context_of(app)
        self.queue = normalize_queue(queue)
        self.attempts = attempts
        # A negative default would silently turn every read into a peek.
        self.vis_timeout = max(0.0, seconds("vis_timeout", vis_timeout))
        self.use_dead = use_dead

    def __repr__(self) -> str:
        return (f"Data({self.queue!r}, attempts={self.attempts}, vis_timeout={self.vis_timeout}, "
                f"use_dead={self.use_dead}, is_tasks={self.is_tasks}, is_dead={self.is_dead})")

    def _vis(self, vis_timeout: float | None) -> float:
        return self.vis_timeout if vis_timeout is None else seconds("vis_timeout", vis_timeout)

    def _unavailable(self, what: str) -> ValueError:
        return ValueError(f"{what}() is not available on a dead-letter view ({self.queue!r})")

    # -- what every type answers (each concrete type defines these) ------------------

    def get_data(self, items: int = 1, vis_timeout: float | None = None,
                 get_timeout: float | None = None) -> dict[str, Any]:
        """Read up to ``items`` items: {id: item} (dead-letter views: 0.33's rows)."""
        raise NotImplementedError

    async def aget_data(self, items: int = 1, vis_timeout: float | None = None,
                        get_timeout: float | None = None) -> dict[str, Any]:
        """``get_data`` for asyncio code."""
        raise NotImplementedError

    def refresh_data(self, items: Any, vis_timeout: float | None = None) -> list[str]:
        """Extend live leases; returns the ids extended (none on a dead-letter view)."""
        return []

    async def arefresh_data(self, items: Any, vis_timeout: float | None = None) -> list[str]:
        """``refresh_data`` for asyncio code."""
        return []

    def done_data(self, items: Any) -> int:
        """Finish items (dead-letter views: remove those dead letters); how many."""
        raise NotImplementedError

    async def adone_data(self, items: Any) -> int:
        """``done_data`` for asyncio code."""
        raise NotImplementedError

    def currently_available(self) -> tuple[int, int]:
        """(available, invisible): invisible items are leased or delayed."""
        raise NotImplementedError

    def delete_all(self) -> int:
        """Delete every item (on a dead-letter view, its dead letters)."""
        raise NotImplementedError

    # -- live queues only: dead-letter views refuse, as they always did ---------------

    def put_data(self, data: Any, use_dead: bool | None = None, is_one: bool = False,
                 chunksize: int = 512, delay: float = 0) -> dict[str, Any]:
        """Queue items (each JSON-encodable); returns {id: item}."""
        raise self._unavailable("put_data")

    async def aput_data(self, data: Any, use_dead: bool | None = None, is_one: bool = False,
                        chunksize: int = 512, delay: float = 0) -> dict[str, Any]:
        """``put_data`` for asyncio code."""
        raise self._unavailable("aput_data")

    def get_data_with_receipts(self, items: int = 1, vis_timeout: float | None = None,
                               get_timeout: float | None = None) -> dict[str, Leased]:
        """A leased read returning {id: Leased(item, receipt)}."""
        raise self._unavailable("get_data_with_receipts")

    async def aget_data_with_receipts(self, items: int = 1, vis_timeout: float | None = None,
                                      get_timeout: float | None = None) -> dict[str, Leased]:
        """``get_data_with_receipts`` for asyncio code."""
        raise self._unavailable("aget_data_with_receipts")

    # -- every data queue's dead letters -------------------------------------------

    @staticmethod
    def read_dead(app: Any, delete: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """Dead data items of every data queue, oldest first, as dicts:
        id, queue, item, reason, attempts_used, time (died), inserted (put)."""
        ctx = context_of(app)
        queues: list[str] = run_steps(ctx, [data_queue_names(ctx.store.keys)])[0]
        return dead_data(ctx, queues, max(1, int(limit)), delete)
