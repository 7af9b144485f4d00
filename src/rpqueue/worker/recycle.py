"""Worker recycling: a process retires itself between tasks once it has run
``max_tasks`` tasks or grown past ``max_memory_mib``, and its supervisor
starts a fresh one (``--max-tasks-per-child``, ``--max-memory-per-child``).

The check runs as an ``after_task`` hook, in the thread that ran the task,
before that task's outcome is written. It only sets the process's stop
event: each worker thread then writes the outcome it holds and takes
nothing more, and the process waits for every task still running (with no
deadline, unlike a shutdown) before it exits with ``RECYCLE_EXIT``. So
nothing is interrupted, lost, or left to be run a second time.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
from typing import Any

log = logging.getLogger("rpqueue.worker")

# The exit status of a process that retired itself: the supervisor replaces
# it without the warning an unexpected exit gets.
RECYCLE_EXIT = 75
MIB = 1024 * 1024


def rss_bytes() -> int:
    """This process's resident memory now (Linux), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is in KiB on Linux, bytes on macOS.
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def check_limits(max_tasks: int, max_memory_mib: float) -> None:
    """Raise ValueError naming a recycling limit that is negative (0 is off)."""
    if isinstance(max_tasks, bool) or not isinstance(max_tasks, int) or max_tasks < 0:
        raise ValueError(f"max_tasks_per_child must be an int >= 0 (0: never), got {max_tasks!r}")
    if (isinstance(max_memory_mib, bool) or not isinstance(max_memory_mib, (int, float))
            or not max_memory_mib >= 0):
        raise ValueError("max_memory_per_child must be a number of MiB >= 0 (0: no limit), "
                         f"got {max_memory_mib!r}")


class Recycler:
    """The ``after_task`` hook that decides when this process retires."""

    def __init__(self, stop: threading.Event, max_tasks: int = 0,
                 max_memory_mib: float = 0) -> None:
        check_limits(max_tasks, max_memory_mib)
        self.stop = stop
        self.max_tasks = max_tasks
        self.max_bytes = int(max_memory_mib * MIB)
        self.ran = 0
        self.reason: str | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.max_tasks or self.max_bytes)

    @property
    def triggered(self) -> bool:
        return self.reason is not None

    def after_task(self, running: Any, result: Any, error: BaseException | None) -> None:
        with self._lock:
            self.ran += 1
            if self.reason is not None:
                return
            if self.max_tasks and self.ran >= self.max_tasks:
                self.reason = f"ran {self.ran} task(s), the limit is {self.max_tasks}"
            elif self.max_bytes:
                rss = rss_bytes()
                if rss > self.max_bytes:
                    self.reason = (f"uses {rss / MIB:.1f} MiB, over the limit of "
                                   f"{self.max_bytes / MIB:g} MiB")
            if self.reason is None:
                return
        log.info("worker pid %d retiring between tasks: %s", os.getpid(), self.reason)
        self.stop.set()
