"""Shared measurement protocol for every peer adapter (its code is in the
``benchkit`` package next to this file; this module is the name adapters and
task modules import).

This module is imported twice in each benchmark:

* by the adapter (the producer side), which calls :func:`main` with a
  peer-specific :class:`Peer` object; and
* by the peer's ``bench_tasks`` module inside the worker processes, whose
  task bodies call :func:`task_done` (drain phases) or :func:`task_stamp`
  (latency phase).

It only needs the standard library and ``redis`` (redis-py), which every
peer venv has.  Keeping the task bodies here guarantees that every peer
executes byte-for-byte the same work per task.

The drain task counts its executions with one of two counters
(``--drain-counter``):

``local`` (default)  no Redis command per task.  Each execution appends one
                     byte to ``<path>.count`` on tmpfs (``/dev/shm``), opened
                     with O_APPEND by each thread of each process; the file
                     offset right after that write is the execution's number
                     (the kernel appends atomically), exact across threads,
                     processes and forks.  Two system calls, a few µs.  The
                     executions numbered 1 and total write their time.time()
                     into ``<path>.times`` (offsets 0 and 8); the one numbered
                     total then pushes to bench:finished.
``redis``            one INCR round trip per task (bench:done, below).

Keys used (all under ``bench:``, in the same Redis database as the queues;
the database is flushed between phases):

``bench:done``      INCR'd once per executed no-op task (redis counter)
``bench:t_first``   time.time() taken at the start of the task that got INCR == 1
``bench:t_last``    time.time() taken at the end of the task that got INCR == total
``bench:finished``  list the last task pushes to, so the producer can BLPOP
                    instead of polling (both counters)
``bench:lat``       list of time.time() values recorded at the start of each
                    latency "stamp" task
"""

from __future__ import annotations

from benchkit.cli import Run, main, parse_args
from benchkit.counters import LocalCounter, RedisCounter
from benchkit.keys import (
    COUNTERS,
    ENV_COUNTER,
    ENV_TOTAL,
    ENV_URL,
    FILL_CHUNK,
    K_DONE,
    K_FINISHED,
    K_FIRST,
    K_LAST,
    K_LAT,
)
from benchkit.peer import Peer, log
from benchkit.tasks import task_done, task_stamp
from benchkit.workers import Workers

__all__ = [
    "COUNTERS", "ENV_COUNTER", "ENV_TOTAL", "ENV_URL", "FILL_CHUNK", "K_DONE", "K_FINISHED",
    "K_FIRST", "K_LAST", "K_LAT", "LocalCounter", "Peer", "RedisCounter", "Run", "Workers",
    "log", "main", "parse_args", "task_done", "task_stamp",
]
