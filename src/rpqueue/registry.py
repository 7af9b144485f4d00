"""The worker registry: every worker process says who it is and what it does.

Each process writes one field of ``<prefix>workers`` (a hash, worker id ->
JSON) every HEARTBEAT seconds. Readers ignore, and prune, entries older than
STALE seconds, so a killed worker drops out without anyone cleaning up.

Besides who and where, a record lists the queues the process serves, the
tasks it defines (``tasks``: a worker that takes a task it does not define
leaves it to one that does, worker/unknown.py) and what it has set aside
because Redis refuses commands on it (``broken``, worker/quarantine.py).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

from .storage import history_io
from .storage.worker_io import WorkerIO

if TYPE_CHECKING:
    from .context import Context
    from .worker.runner import Runner

HEARTBEAT = 2.0
STALE = 10.0


class WorkerInfo:
    """One worker process's entry in the registry."""

    def __init__(self, app: Context, threads: int) -> None:
        self.app = app
        self.io = WorkerIO(app.store)
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.threads = threads
        self.started = time.time()
        self._sampled = float("-inf")

    def beat(self, runner: Runner, queues: list[str],
             broken: dict[str, str] | None = None) -> None:
        """Write this process's entry, with what runs now, stamped with Redis time.

        ``broken``: what the worker sets aside because Redis refuses commands
        on it ("take:<queue>", "wake:<queue>", "state:<key>" -> the error)."""
        now = self.app.store.redis_time()
        current = [{"id": r.taskid, "task": r.task.name, "queue": r.queue,
                    "for": round(time.monotonic() - r.started, 3)}
                   for r in list(runner.running.values())]
        record = {"id": self.id, "host": socket.gethostname(), "pid": os.getpid(),
                  "queues": queues, "threads": self.threads, "started": self.started,
                  "beat": now, "running": current, "done": runner.counts["done"],
                  "failed": runner.counts["failed"],
                  # The tasks this process can run: a worker that takes a task
                  # it does not know leaves it for one that does.
                  "tasks": sorted(self.app.registry)}
        if broken:
            record["broken"] = broken
        self.io.beat(self.id, record)
        self.record_history(queues)

    def record_history(self, queues: list[str]) -> None:
        """Add this minute's counters and depth of the served queues (every
        known queue for a worker serving all) to the throughput history
        (storage/history_io.py), at most every SAMPLE_EVERY seconds: from the
        heartbeat thread, never per task."""
        now = time.monotonic()
        if now - self._sampled < history_io.SAMPLE_EVERY:
            return
        self._sampled = now
        history_io.sample(self.app.store, queues or self.app.store.known_queues())

    def leave(self) -> None:
        """Remove this process's entry (a clean stop)."""
        self.io.leave(self.id)


def live_workers(app: Context) -> list[dict[str, Any]]:
    """Workers that beat within STALE seconds; older entries are removed."""
    io = WorkerIO(app.store)
    now = app.store.redis_time()
    live, stale = [], []
    for wid, raw in io.workers().items():
        try:
            record = json.loads(raw)
            fresh = now - float(record["beat"]) <= STALE
        except (ValueError, KeyError, TypeError):
            fresh = False
        if fresh:
            live.append(record)
        else:
            stale.append(wid)
    io.forget_workers(stale)
    return sorted(live, key=lambda r: (r.get("host", ""), r.get("pid", 0)))
