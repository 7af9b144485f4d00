"""The worker thread: take from the highest-priority non-empty queue, run, repeat.

"Highest priority" is the order of the scheduling mode (worker/scheduling.py):
plain priority order unless weighted or aging scheduling is on.

An idle worker does not poll: it blocks on the queues' wake lists, which
every enqueue fills, for at most the time until the next delayed task or
lease deadline (both in Redis time) and at most MAX_IDLE seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from ..storage.calls import Taken
from ..storage.worker_io import RETRYABLE_ERRORS, ResponseError, WorkerIO
from .quarantine import MAX_SKIP, Quarantine, queue_fault
from .runner import Finished, Runner
from .scheduling import QueuePolicy, parse_settings
from .state import _safe

if TYPE_CHECKING:
    from ..context import Context
    from ..storage.direct import Direct

log = logging.getLogger("rpqueue.worker")

MAX_IDLE = 1.0
_never = threading.Event()


def nap(seconds: float) -> None:
    """Sleep, waking on a lock timeout rather than time.sleep(): under faketime
    (tests skew worker clocks) time.sleep() fails with EINVAL."""
    _never.wait(seconds)

# A task that ran at least this long makes the worker re-check queue order
# (one GET, under 2% of such a task); quicker ones re-check once a second.
FRESH_AFTER = 0.005
WAITER_BLOCK = 5.0
QUEUE_REFRESH = 5.0
PAUSED_REFRESH = 1.0


class QueueList:
    """The queues a worker serves, in order, without the paused ones.

    The list is refreshed every QUEUE_REFRESH seconds when serving all
    queues; the paused set (rpqueue.pause) and the scheduling settings
    (worker/scheduling.py) every PAUSED_REFRESH seconds, for named queues too.
    ``get`` is the priority order; ``order`` the order the scheduling mode
    tries them in for one take.
    """

    def __init__(self, app: Context, queues: list[str] | None) -> None:
        self.app = app
        self.io = WorkerIO(app.store)
        self.fixed = app.ordered_queues(queues) if queues else None
        self._queues: list[str] = []
        self._loaded = -QUEUE_REFRESH
        self._paused: frozenset[str] = frozenset()
        self._paused_loaded = -PAUSED_REFRESH
        self._version: object = None
        self._cluster = app.store.cluster
        self._settings_loaded = -QUEUE_REFRESH
        self._settings_version: object = None
        self.policy = QueuePolicy(app)
        # Queues and keys Redis refuses commands on, set aside for a while.
        self.quarantine = Quarantine()

    def refresh(self) -> None:
        self._settings_loaded = -QUEUE_REFRESH
        self._loaded = -QUEUE_REFRESH
        self._paused_loaded = -PAUSED_REFRESH
        self._version = None

    def get(self, fresh: bool = False) -> list[str]:
        """The queues in order, without paused and broken ones. ``fresh``: check
        for changes now (after a long task the cost is nothing next to the
        task, and the order may have moved)."""
        now = time.monotonic()
        if fresh:
            self._paused_loaded = -PAUSED_REFRESH
        if self.fixed is not None:
            queues = self.fixed
        else:
            if now - self._loaded >= QUEUE_REFRESH:
                self._load_queues(now)
            queues = self._queues
        if now - self._paused_loaded >= PAUSED_REFRESH:
            try:
                # On a cluster each of these keys is its own command: the
                # scheduling settings are read again only when the queues
                # version moved (setting them bumps it) or every
                # QUEUE_REFRESH seconds, which keeps an idle worker quiet.
                full = (not self._cluster or now - self._settings_loaded >= QUEUE_REFRESH)
                state = self.io.queue_state(settings=full)
                if not full and state.version != self._settings_version:
                    full = True
                    state = self.io.queue_state(settings=True)
                k = self.app.store.keys
                for key, error in state.errors.items():
                    self.quarantine.add("state", key, error)
                read = (k.paused, k.queues_version) + ((k.scheduling, k.weights) if full else ())
                self.quarantine.clear_all("state", [key for key in read
                                                    if key not in state.errors])
                if k.paused not in state.errors:
                    self._paused = state.paused
                if state.scheduling is not None and state.weights is not None:
                    self.policy.configure(parse_settings(state.scheduling, state.weights))
                    self._settings_loaded = now
                    self._settings_version = state.version
                if self.fixed is None and state.version != self._version:
                    self._version = state.version
                    self._load_queues(now)
                    queues = self._queues
            except RETRYABLE_ERRORS:
                pass  # keep the last known set; taking fails on its own if Redis is gone
            self._paused_loaded = now
        if self._paused:
            queues = [q for q in queues if q not in self._paused]
        return self.quarantine.usable("take", queues)

    def _load_queues(self, now: float) -> None:
        key = self.app.store.keys.queues
        try:
            self._queues = self.app.ordered_queues()
            self.quarantine.clear("state", key)
        except ResponseError as exc:
            # The index itself is broken (a key of the wrong type): serve the
            # queues known so far rather than none.
            self.quarantine.add("state", key, exc)
        self._loaded = now

    def order(self, fresh: bool = False) -> list[str]:
        """The queues in the order to try them for one take; report what the
        take found with ``record``."""
        return self.policy.order(self.get(fresh))

    def record(self, order: list[str], served: int | None) -> None:
        """``order[:served]`` were empty and ``order[served]`` gave a task
        (``served`` None: all were empty)."""
        self.policy.record(order, served)


class Waker:
    """How idle worker threads of one process wait for work.

    On one Redis server, a thread blocks in one BLPOP on the wake lists of
    all its queues. On Redis Cluster a blocking pop may only name keys of
    one slot, so the process runs one waiter thread per queue (each blocks
    on that queue's wake list, on the node that owns it) and they wake the
    worker threads through an Event. Neither way polls.
    """

    def __init__(self, app: Context, queues: QueueList, stop: threading.Event) -> None:
        self.app = app
        self.io = WorkerIO(app.store)
        self.queues = queues
        self.stop = stop
        self.cluster = app.store.cluster
        self.event = threading.Event()
        # A blocking pop must return before the socket times out, or every
        # idle wait would look like a lost connection (--timeout below 1 s).
        self.max_block = self.io.block_limit(MAX_IDLE)
        self.waiter_block = self.io.block_limit(WAITER_BLOCK)
        self._waiters: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def sleep(self, queues: list[str], timeout: float) -> None:
        """Wait until a wake list of ``queues`` gets a token, or ``timeout``.

        Only waits: the take follows as a separate call (see WorkerIO.wait_any
        for why nothing is pipelined behind the blocking pop).
        """
        timeout = min(timeout, self.max_block)
        if self.cluster:
            self._start_waiters(queues)
            if self.event.wait(timeout):
                self.event.clear()
            return
        keys = self.app.store.keys
        quarantine = self.queues.quarantine
        waited = quarantine.usable("wake", queues)
        named = {keys.queue(q).wake: q for q in waited}
        if self.queues.fixed is None and not quarantine.skipped("wake", ""):
            named[keys.queues_wake] = ""
        wake_keys = list(named)
        if not wake_keys:
            # Every named queue is paused: nothing to block on, just wait.
            self.stop.wait(timeout)
            return
        woke, refused = self.io.wait_any(wake_keys, timeout)
        if refused is not None:
            self._refused(named, refused, timeout)
        else:
            quarantine.clear_all("wake", list(named.values()))
            quarantine.clear("blpop", "")
        if woke == keys.queues_wake:
            self.queues.refresh()

    def _refused(self, named: dict[str, str], refused: Exception, timeout: float) -> None:
        """Redis refused the BLPOP (a wake list of the wrong type): set the bad
        lists aside and wait out this sleep, rather than spin on a BLPOP that
        fails at once."""
        quarantine = self.queues.quarantine
        bad = self.io.wrong_type(list(named))
        for key in bad:
            quarantine.add("wake", named[key], refused)
        if not bad:
            quarantine.add("blpop", "", refused)
        self.stop.wait(timeout)

    def _start_waiters(self, queues: list[str]) -> None:
        keys = self.app.store.keys
        wanted = [(q, keys.queue(q).wake) for q in queues]
        if self.queues.fixed is None:
            wanted.append(("", keys.queues_wake))
        with self._lock:
            for name, key in wanted:
                if name not in self._waiters:
                    t = threading.Thread(target=self._wait_on, args=(name, key),
                                         name=f"rpqueue-waker-{name}", daemon=True)
                    self._waiters[name] = t
                    t.start()

    def _wait_on(self, name: str, key: str) -> None:
        backoff = 0.1
        while not self.stop.is_set():
            try:
                # Waiters are daemon threads nobody joins: they may block long,
                # which keeps an idle worker's traffic low however many queues.
                if self.io.wait(key, self.waiter_block):
                    if not name:
                        self.queues.refresh()
                    self.event.set()
                backoff = 0.1
            except RETRYABLE_ERRORS:
                self.stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except ResponseError as exc:  # after RETRYABLE_ERRORS: CLUSTERDOWN is one too
                # A wake list of the wrong type: reported, and waited on again
                # only after a pause (the worker threads poll meanwhile).
                self.queues.quarantine.add("wake", name, exc)
                self.stop.wait(MAX_SKIP)


class Worker:
    def __init__(self, app: Context, queues: QueueList, runner: Runner,
                 stop: threading.Event, waker: Waker) -> None:
        self.app = app
        self.queues = queues
        self.runner = runner
        self.stop = stop
        self.waker = waker
        self.direct: Direct | None = None  # this thread's own connection, made in run()
        # The last task run, its success not yet written to Redis.
        self.pending: Finished | None = None

    def run(self) -> None:
        """Take and run tasks until the process stops."""
        try:
            self._loop()
        except BaseException:
            # Not an error of one step: the process replaces this thread
            # (process.run_threads), but the reason must be on record.
            log.critical("worker thread ended by an exception", exc_info=True)
            raise

    def _loop(self) -> None:
        self.direct = self.app.store.clients.direct()
        backoff = 0.1
        while True:
            try:
                if self.stop.is_set():
                    if self.pending is not None:
                        self._finish(self.pending)
                    return
                self.step()
                backoff = 0.1
            except RETRYABLE_ERRORS as exc:
                log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                nap(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                # Anything else (a refused write, a bug) must not silently end
                # this thread while the process looks alive.
                log.exception("worker thread error; retrying in %.1fs", backoff)
                nap(backoff)
                backoff = min(backoff * 2, 5.0)

    def _run(self, taken: Taken) -> None:
        self.pending = self.runner.run(taken)

    def step(self) -> None:
        """Report the last task and run the next, or sleep until there may be one.

        The last task's outcome stays in ``self.pending`` until it is written:
        whatever raises before that (the queue refresh, a refused or lost
        write, Redis BUSY) leaves it for the next step to write.
        """
        finished = self.pending
        queues = self.queues.order(fresh=finished is not None and finished.took >= FRESH_AFTER)
        next_ms, now_ms, start = -1, 0, 0
        store = self.app.store
        if finished is not None:
            if queues and finished.taken.queue == queues[0]:
                # The queue to try first (in weighted or aging mode, the one
                # the mode picks): writing the outcome and taking the next
                # task in one script skips no priority.
                try:
                    ok, reply = store.run(store.calls.finish_take(
                        queues[0], finished.taken, finished.result,
                        finished.task.task_options.save_results, store.running_lease),
                        self.direct)
                except ResponseError as exc:
                    if not queue_fault(exc):
                        raise
                    # The queue is broken: the next step writes the outcome on
                    # its own (done touches fewer keys) and skips the queue.
                    self.queues.quarantine.add("take", queues[0], exc)
                    return
                self.pending = None
                self.queues.quarantine.clear("take", queues[0])
                self.runner.report(finished, ok)
                if reply.taken is not None:
                    self.queues.record(queues, 0)
                    self._run(reply.taken)
                    return
                now_ms, next_ms, start = reply.now_ms, reply.next_ms, 1
            else:
                self._finish(finished)
        for i in range(start, len(queues)):
            try:
                reply = store.run(store.calls.take(queues[i], store.running_lease), self.direct)
            except ResponseError as exc:
                if not queue_fault(exc):
                    raise
                # One broken queue must not stop the others.
                self.queues.quarantine.add("take", queues[i], exc)
                continue
            self.queues.quarantine.clear("take", queues[i])
            if reply.taken is not None:
                self.queues.record(queues, i)
                self._run(reply.taken)
                return
            now_ms = reply.now_ms
            if reply.next_ms >= 0 and (next_ms < 0 or reply.next_ms < next_ms):
                next_ms = reply.next_ms
        self.queues.record(queues, None)
        if not self.queues.policy.strict:
            # All were empty: the take on waking goes to the queue the mode
            # puts first now (weighted credits were just reset).
            queues = self.queues.order()
        self.sleep(queues, next_ms, now_ms)

    def _finish(self, finished: Finished) -> None:
        """Write an outcome on its own; one its queue's keys refuse is given up
        (logged): its lease runs out as if the worker had died, rather than
        the thread retrying it forever and serving nothing else."""
        try:
            self.runner.finish(finished)
        except ResponseError as exc:
            if not queue_fault(exc):
                raise
            self.queues.quarantine.add("take", finished.taken.queue, exc)
            log.error("the outcome of task %s in queue %s could not be written; it is "
                      "left to its lease: %s", _safe(finished.taken.id),
                      _safe(finished.taken.queue), exc)
        self.pending = None

    def sleep(self, queues: list[str], next_ms: int, now_ms: int) -> None:
        timeout = MAX_IDLE
        if next_ms >= 0:
            timeout = min(timeout, max(0.0, (next_ms - now_ms) / 1000))
        if timeout < 0.001:
            return
        self.waker.sleep(queues, timeout)
