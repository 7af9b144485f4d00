"""In which order a worker tries its queues for each take.

Three modes, set for all workers at once in ``<prefix>scheduling``
(``RPQueue.set_scheduling``):

``strict`` (the default)
    Priority order, always. A top queue that never empties starves the rest.
``weighted``
    Smooth weighted round robin (the nginx upstream algorithm): each queue
    holds a credit; every take, each queue that may have work gains its
    weight, the queues are tried by credit (highest first, priority order
    among equals), and the one that yields a task pays the weights gained.
    Queues with weights 3 and 1 that both have work are served a a b a,
    a a b a, ... A queue found empty drops its credit to 0: credit saved
    while idle would otherwise come back as a burst that starves the others.
``aging``
    Priority order, except that a queue whose next task has waited longer
    than ``age`` seconds goes first. Ages come from Redis (``peek_call``) in
    one pipelined round trip per worker process at most every
    min(age / 4, 0.25) seconds, not per take. Among aged queues the one
    whose task has waited longest goes first (priority order among equals):
    ordered by priority instead, a higher queue whose own backlog is older
    than ``age`` would keep its lead, and under overload, when starvation
    actually happens, the mode would change nothing.

The policy state lives per worker process, shared by its threads (a
``QueuePolicy`` held by ``worker.loop.QueueList`` and handed to the asyncio
lane, whose batched takes follow it too); the thread that takes
reports what it found back (``record``), so the credits follow what was
actually served.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..storage.wire import text
from ..storage.worker_io import RETRYABLE_ERRORS, WorkerIO

if TYPE_CHECKING:
    from ..context import Context

log = logging.getLogger("rpqueue.worker")

MODES = ("strict", "weighted", "aging")
DEFAULT_WEIGHT = 1.0
# Ages are checked at most this often, and at most every age / 4.
MAX_AGE_CHECK = 0.25


def check_mode(mode: Any, age: Any = None) -> tuple[str, float | None]:
    """A valid (mode, age) pair, or ValueError naming what is wrong."""
    if isinstance(mode, bytes):
        mode = mode.decode("utf-8", "replace")
    if mode not in MODES:
        raise ValueError(f"scheduling mode {mode!r} is not one of {', '.join(MODES)}")
    if mode != "aging":
        if age is not None:
            raise ValueError(f"age={age!r} applies to the aging mode only, not {mode!r}")
        return mode, None
    if age is None:
        raise ValueError("the aging mode needs age=<seconds> (a number > 0)")
    return mode, _positive("age", age)


def check_weight(weight: Any) -> float:
    return _positive("weight", weight)


def _positive(what: str, value: Any) -> float:
    # bool is an int to Python, but weight=True is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number > 0, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{what} must be a number > 0, not {value!r}")
    return number


@dataclass(frozen=True)
class Settings:
    mode: str = "strict"
    age: float | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    def weight(self, queue: str) -> float:
        return self.weights.get(queue, DEFAULT_WEIGHT)


def parse_settings(raw: Mapping[Any, Any], raw_weights: Mapping[Any, Any]) -> Settings:
    """Settings from the two hashes as Redis returns them.

    Values written by hand that do not validate fall back to strict order
    and weight 1, with a warning: a worker must keep serving whatever the
    hashes hold.
    """
    fields = {text(k): text(v) for k, v in raw.items()}
    weights: dict[str, float] = {}
    for k, v in raw_weights.items():
        try:
            weights[text(k)] = check_weight(float(text(v)))
        except ValueError:
            log.warning("ignoring weight %r of queue %r: not a number > 0", text(v), text(k))
    mode = fields.get("mode", "strict")
    try:
        age = float(fields["age"]) if mode == "aging" and "age" in fields else None
        mode, age = check_mode(mode, age)
    except ValueError as exc:
        log.warning("serving queues in strict order: %s", exc)
        return Settings("strict", None, weights)
    return Settings(mode, age, weights)


def read_settings(app: Context) -> Settings:
    """The scheduling settings as workers read them."""
    return parse_settings(*WorkerIO(app.store).scheduling_settings())


# -- weighted ------------------------------------------------------------------------


class Weighted:
    """Smooth weighted round robin credits (not thread-safe: QueuePolicy locks)."""

    def __init__(self) -> None:
        self.credit: dict[str, float] = {}

    def order(self, queues: Sequence[str], settings: Settings) -> list[str]:
        """The try-order of the next take: by credit after this take's gain."""
        rank = {q: i for i, q in enumerate(queues)}
        return sorted(queues, key=lambda q: (-(self.credit.get(q, 0.0) + settings.weight(q)),
                                             rank[q]))

    def record(self, order: Sequence[str], served: int | None, settings: Settings) -> None:
        """One take: ``order[:served]`` were found empty, ``order[served]`` gave a
        task (None: all were empty). Queues after it were not tried."""
        empty = order if served is None else order[:served]
        for q in empty:
            self.credit[q] = 0.0
        if served is None:
            return
        # The round is every queue that may have work: the empty ones sit it
        # out, or the one served would pay for credit nobody gained and sink
        # without bound while a neighbour stays empty.
        rest = order[served:]
        total = sum(settings.weight(q) for q in rest)
        for q in rest:
            self.credit[q] = self.credit.get(q, 0.0) + settings.weight(q)
        self.credit[order[served]] -= total
        # In a round where every queue has work, credits stay within
        # (-total, total). The clamp only bounds the drift of queues that
        # gain while untried but hold nothing.
        for q in rest:
            self.credit[q] = max(-total, min(total, self.credit[q]))

    def run_length(self, queue: str, queues: Sequence[str], settings: Settings,
                   limit: int) -> int:
        """How many of the next ``limit`` takes go to ``queue`` in a row, if every
        queue has work (what a batch of takes from it may take)."""
        saved = dict(self.credit)
        n = 0
        try:
            while n < limit:
                order = self.order(queues, settings)
                if not order or order[0] != queue:
                    break
                self.record(order, 0, settings)
                n += 1
        finally:
            self.credit = saved
        return n


# -- aging -----------------------------------------------------------------------------


class Aging:
    """Which queues have a task waiting longer than ``age`` (not thread-safe)."""

    def __init__(self, age: float) -> None:
        self.age = age
        self.interval = min(age / 4, MAX_AGE_CHECK)
        self.checked = -math.inf  # time.monotonic() of the last check
        # Aged queue -> Redis time (ms) since which its next task waits.
        self.aged: dict[str, int] = {}

    def due(self, now: float) -> bool:
        return now - self.checked >= self.interval

    def update(self, queues: Sequence[str], replies: Sequence[Any]) -> None:
        """Replies of peek_call per queue: (now_ms, since_ms), or an exception."""
        aged: dict[str, int] = {}
        limit_ms = self.age * 1000
        for queue, reply in zip(queues, replies):
            if isinstance(reply, BaseException):
                # This queue's age is unknown: keep what the last check said.
                if queue in self.aged:
                    aged[queue] = self.aged[queue]
                continue
            now_ms, since_ms = reply
            if since_ms >= 0 and now_ms - since_ms > limit_ms:
                aged[queue] = since_ms
        self.aged = aged

    def order(self, queues: Sequence[str]) -> list[str]:
        if not self.aged:
            return list(queues)
        rank = {q: i for i, q in enumerate(queues)}
        first = sorted((q for q in queues if q in self.aged),
                       key=lambda q: (self.aged[q], rank[q]))
        return first + [q for q in queues if q not in self.aged]

    def record(self, order: Sequence[str], served: int | None) -> None:
        # An aged queue found empty has nothing old left: until the next
        # check it goes back to its place.
        for q in order if served is None else order[:served]:
            self.aged.pop(q, None)


def peek_ages(app: Context, queues: Sequence[str]) -> list[Any]:
    """(now_ms, since_ms) of each queue, or the exception its peek raised,
    in one pipelined round trip (one per queue on Redis Cluster)."""
    return app.store.pipeline([app.store.calls.peek(q) for q in queues])


# -- one worker process ------------------------------------------------------------


class QueuePolicy:
    """The settings and the policy state of one worker process, for all its
    threads and its asyncio lane.

    (Not to be confused with periodic.Scheduler, which queues periodic tasks.)
    """

    def __init__(self, app: Context) -> None:
        self.app = app
        self.settings = Settings()
        self.weighted = Weighted()
        self.aging: Aging | None = None
        self._lock = threading.Lock()
        self._checking = threading.Lock()
        self._check_failed = False  # logged once, not every check

    @property
    def strict(self) -> bool:
        return self.settings.mode == "strict"

    def configure(self, settings: Settings) -> None:
        if settings == self.settings:
            return
        with self._lock:
            old, self.settings = self.settings, settings
            if settings.mode != old.mode:
                log.info("serving queues in %s order%s", settings.mode,
                         f" (age {settings.age:g}s)" if settings.age else "")
            if settings.mode != "weighted":
                self.weighted = Weighted()
            if settings.mode != "aging":
                self.aging = None
            elif self.aging is None or self.aging.age != settings.age:
                assert settings.age is not None
                self.aging = Aging(settings.age)

    def order(self, queues: list[str]) -> list[str]:
        """The queues in the order to try them for the next take."""
        mode = self.settings.mode
        if mode == "strict" or len(queues) < 2:
            return queues
        if mode == "weighted":
            with self._lock:
                return self.weighted.order(queues, self.settings)
        aging = self.aging
        if aging is None:
            return queues
        if aging.due(time.monotonic()):
            self._check_ages(aging, queues)
        with self._lock:
            return aging.order(queues)

    def record(self, order: Sequence[str], served: int | None) -> None:
        """What a take found: ``order[:served]`` empty, ``order[served]`` gave a
        task; ``served`` None when every queue was empty."""
        mode = self.settings.mode
        if mode == "strict":
            return
        with self._lock:
            if mode == "weighted":
                self.weighted.record(order, served, self.settings)
            elif self.aging is not None:
                self.aging.record(order, served)

    def prefetch_limit(self, queue: str, queues: list[str], limit: int) -> int:
        """How many tasks in a row a batch of takes may take from ``queue``, the
        queue a take just served. In weighted mode only as many as its share
        allows; otherwise as in strict order, it was the first with work."""
        if self.settings.mode != "weighted":
            return limit
        with self._lock:
            return self.weighted.run_length(queue, queues, self.settings, limit)

    def prefetched(self, queue: str, queues: list[str], got: int, ran_dry: bool) -> None:
        """Account for a batch of takes from ``queue``: each one served it."""
        if self.settings.mode != "weighted":
            return
        # Recorded as rounds that tried ``queue`` first: the others were not
        # found empty, they were not asked.
        order = [queue, *(q for q in queues if q != queue)]
        with self._lock:
            for _ in range(got):
                self.weighted.record(order, 0, self.settings)
            if ran_dry:
                self.weighted.credit[queue] = 0.0

    def _check_ages(self, aging: Aging, queues: list[str]) -> None:
        # One thread checks; the others go on with what the last check said.
        if not self._checking.acquire(blocking=False):
            return
        try:
            if not aging.due(time.monotonic()):
                return
            try:
                replies = peek_ages(self.app, queues)
            except RETRYABLE_ERRORS as exc:
                log.debug("checking queue ages failed: %s", exc)
                replies = [exc] * len(queues)
            except Exception as exc:
                # Whatever breaks the check must not stop the takes: they go
                # on in the order the last check gave.
                if not self._check_failed:
                    log.exception("checking queue ages failed")
                self._check_failed = True
                replies = [exc] * len(queues)
            with self._lock:
                aging.update(queues, replies)
                aging.checked = time.monotonic()
        finally:
            self._checking.release()
