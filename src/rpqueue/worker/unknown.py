"""Tasks a worker took but does not know: leave them to a worker that does.

Workers that serve the same queue need not run the same code: a worker
serving all queues may take a call of a task only a newer worker defines.
Dead-lettering it there ("unknown task") lost calls that another live
worker would have run. Now a worker that takes a task it does not know
looks in the worker registry (each live worker's heartbeat lists the tasks
it can run and the queues it serves):

- some live worker serving that queue knows the task: the task is given
  back unchanged (the release script: front of its line, the attempt not
  counted) and this worker leaves that queue alone for HOLD seconds, so the
  worker that knows it takes it and the two do not trade it in a hot loop;
- no live worker knows it: it is given back the same way for a grace
  period, in case one is starting (a worker is in the registry from its
  first heartbeat, as soon as it reaches Redis): UNKNOWN_GRACE seconds
  (``$RPQUEUE_UNKNOWN_GRACE`` to change it) from the first such task met
  after a quiet period of twice that. After that it is dead-lettered with
  the reason "unknown task", and so is every such task met while they keep
  coming: a queue holding many calls nobody defines (garbage, a removed
  task) is not held up for a grace period per name.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..registry import HEARTBEAT, live_workers
from ..storage.calls import Taken
from .quarantine import Quarantine
from .state import _safe

if TYPE_CHECKING:
    from ..context import Context

log = logging.getLogger("rpqueue.worker")

HOLD = 2.0
UNKNOWN_GRACE = 5.0
GRACE_ENV = "RPQUEUE_UNKNOWN_GRACE"


def grace_from_env() -> float:
    raw = os.environ.get(GRACE_ENV, "")
    if not raw:
        return UNKNOWN_GRACE
    try:
        grace = float(raw)
    except ValueError:
        raise ValueError(f"${GRACE_ENV}={raw!r}: expected a number of seconds >= 0") from None
    if not grace >= 0:
        raise ValueError(f"${GRACE_ENV}={raw!r}: expected a number of seconds >= 0")
    return grace


class UnknownTasks:
    """Decides, for one worker process, what becomes of a task it does not know."""

    def __init__(self, app: Context, quarantine: Quarantine,
                 workers: Callable[[], list[dict[str, Any]]] | None = None,
                 grace: float | None = None) -> None:
        self.app = app
        self.quarantine = quarantine
        self.grace = grace_from_env() if grace is None else grace
        self._workers = workers or (lambda: live_workers(app))
        self._lock = threading.Lock()
        self._live: list[dict[str, Any]] = []
        self._live_read = -HEARTBEAT
        # The grace for tasks no live worker knows: when the current run of
        # them began, and the last one met (a quiet period ends the run).
        self._nobody_since: float | None = None
        self._nobody_last = 0.0
        self._logged: dict[tuple[str, str], float] = {}

    def give_back(self, taken: Taken, name: str) -> bool:
        """True when ``taken`` (a call of task ``name``, unknown here) was given
        back for another worker; False: dead-letter it."""
        knowers = self._knowers(name, taken.queue)
        now = time.monotonic()
        if knowers:
            self._note("known", name, "task %s (%s) in queue %s is not defined in this "
                       "worker; leaving it to %s, which %s it", _safe(name), _safe(taken.id),
                       _safe(taken.queue), ", ".join(knowers[:3]),
                       "know" if len(knowers) > 1 else "knows")
        else:
            if self._nobody_since is None or now - self._nobody_last > 2 * self.grace:
                # The first such call after a quiet period starts the grace.
                self._nobody_since = now
            self._nobody_last = now
            if now - self._nobody_since >= self.grace:
                return False
            self._note("nobody", name, "task %s (%s) in queue %s is defined in no live "
                       "worker; it is dead-lettered if none that knows it starts within %.0fs",
                       _safe(name), _safe(taken.id), _safe(taken.queue),
                       self._nobody_since + self.grace - now)
        store = self.app.store
        store.run(store.calls.release(taken))
        self.quarantine.hold(taken.queue, HOLD)
        return True

    def _knowers(self, name: str, queue: str) -> list[str]:
        """The ids of live workers serving ``queue`` that define task ``name``."""
        now = time.monotonic()
        with self._lock:
            if now - self._live_read >= HEARTBEAT:
                # One registry read per heartbeat period at most, however many
                # unknown tasks come by.
                try:
                    self._live = self._workers()
                except Exception as exc:
                    # Unknown who is alive: nobody, for now (the grace applies).
                    log.warning("reading the worker registry failed: %s", exc)
                    self._live = []
                self._live_read = now
            live = self._live
        return [str(r.get("id", "?")) for r in live
                if name in (r.get("tasks") or ()) and queue in (r.get("queues") or ())]

    def _note(self, kind: str, name: str, fmt: str, *args: Any) -> None:
        # Once per task name and period: a queue full of such calls must not
        # flood the log.
        now = time.monotonic()
        key = (kind, name)
        if now - self._logged.get(key, -60.0) >= 60.0:
            self._logged[key] = now
            log.warning(fmt, *args)
