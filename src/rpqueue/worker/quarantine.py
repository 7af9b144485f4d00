"""Queues a worker skips for a while because Redis refuses commands on their keys.

A key of the wrong type (``<prefix>q:{x}:ready`` overwritten with a string,
say) makes every script call on that queue fail with WRONGTYPE. Before, the
failure ended the whole take, so one broken queue stopped every queue of
the worker; a broken wake list made idle workers spin on a BLPOP that
failed at once. Now the queue (or only its wake list) is set aside for a
while, with a backoff from MIN_SKIP to MAX_SKIP seconds, tried again after
that, and reported: logged once per LOG_EVERY seconds, and listed in the
worker's heartbeat record (``broken``), so ``rpqueue workers`` and the
registry show it.

Errors that say something about Redis as a whole (out of memory, BUSY, a
read-only replica, loading) are not a queue's fault and are not handled
here: they stop the take as before.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..errors import RedisOutOfMemory
from ..storage.worker_io import RETRYABLE_ERRORS, ResponseError
from .state import _safe

log = logging.getLogger("rpqueue.worker")

MIN_SKIP = 1.0
MAX_SKIP = 30.0
LOG_EVERY = 60.0

# Replies that describe the server, not the keys of one queue.
_SERVER_WIDE = ("OOM", "BUSY", "READONLY", "LOADING", "MASTERDOWN", "NOAUTH", "NOPERM",
                "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "MISCONF")


def queue_fault(exc: BaseException) -> bool:
    """Whether a refused command points at the keys of the queue it ran on."""
    if not isinstance(exc, ResponseError) or isinstance(exc, (RedisOutOfMemory,
                                                               *RETRYABLE_ERRORS)):
        # Out of memory, CLUSTERDOWN, TRYAGAIN: Redis as a whole, not a queue.
        return False
    text = str(exc)
    return not text.startswith(_SERVER_WIDE)


def _label(kind: str, name: str) -> str:
    if kind == "take":
        return f"queue {_safe(name)} (skipped meanwhile)"
    if kind == "wake":
        return (f"the wake list of queue {_safe(name)} (not waited on meanwhile)" if name
                else "the all-queues wake list (not waited on meanwhile)")
    if kind == "blpop":
        return "waiting on the wake lists (idle threads poll every second meanwhile)"
    return f"key {_safe(name)} (its last good value is used meanwhile)"


@dataclass
class _Entry:
    until: float
    skip: float
    error: str
    logged: float


class Quarantine:
    """What one worker process sets aside: queues (``take``), wake lists
    (``wake``, named by queue; "" is the all-queues wake list) and the keys
    every queue depends on (``state``, named by key: the paused set, the
    known-queues index)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        # Queues left alone for a moment, silently (not broken): queue -> until.
        self._held: dict[str, float] = {}

    def hold(self, queue: str, seconds: float) -> None:
        """Leave ``queue`` alone for ``seconds`` (a task there is for another worker)."""
        with self._lock:
            self._held[queue] = time.monotonic() + seconds

    def add(self, kind: str, queue: str, error: BaseException | str) -> None:
        """Set ``queue`` aside for ``kind`` (longer each time it fails again)."""
        now = time.monotonic()
        text = str(error).split("\n", 1)[0][:300]
        with self._lock:
            entry = self._entries.get((kind, queue))
            if entry is None:
                entry = _Entry(0.0, MIN_SKIP / 2, text, -LOG_EVERY)
                self._entries[(kind, queue)] = entry
            entry.skip = min(MAX_SKIP, entry.skip * 2)
            entry.until = now + entry.skip
            entry.error = text
            report = now - entry.logged >= LOG_EVERY
            if report:
                entry.logged = now
        if report:
            log.error("%s is broken: %s; trying again in %.0fs (at most every %.0fs "
                      "while it stays broken, logged every %.0fs)", _label(kind, queue),
                      text, entry.skip, MAX_SKIP, LOG_EVERY)

    def clear(self, kind: str, queue: str) -> None:
        """``queue`` works again for ``kind``."""
        if not self._entries:
            return
        with self._lock:
            entry = self._entries.pop((kind, queue), None)
        if entry is not None:
            log.warning("%s works again", _label(kind, queue))

    def clear_all(self, kind: str, names: list[str]) -> None:
        """Each of ``names`` works again for ``kind`` (cheap when nothing is set aside)."""
        if self._entries:
            for name in names:
                if (kind, name) in self._entries:
                    self.clear(kind, name)

    def skipped(self, kind: str, name: str) -> bool:
        entry = self._entries.get((kind, name))
        return entry is not None and entry.until > time.monotonic()

    def usable(self, kind: str, queues: list[str]) -> list[str]:
        """``queues`` without those set aside for ``kind`` (or held) right now."""
        if not self._entries and not self._held:
            return queues
        now = time.monotonic()
        with self._lock:
            for queue in [q for q, until in self._held.items() if until <= now]:
                del self._held[queue]
            out = [q for q in queues
                   if ((e := self._entries.get((kind, q))) is None or e.until <= now)
                   and (kind != "take" or q not in self._held)]
        return out

    def report(self) -> dict[str, str]:
        """For the heartbeat: "kind:queue" -> the last error, for every entry."""
        with self._lock:
            return {f"{kind}:{queue}": e.error for (kind, queue), e in self._entries.items()}
