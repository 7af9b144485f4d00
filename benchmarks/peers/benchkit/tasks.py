"""Worker side: the task bodies every system runs, byte for byte the same.
Imported by each peer's ``bench_tasks`` module (through ``benchlib``) inside
the worker processes; needs only the standard library and redis-py."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis

from .keys import _TIME, ENV_COUNTER, ENV_TOTAL, ENV_URL, K_DONE, K_FINISHED, K_FIRST, K_LAST, K_LAT

_conn: Any = None
_conn_pid: int | None = None
_total: int | None = None
# per thread: its own descriptors of the local counter's files (a descriptor
# inherited through fork shares its file offset with the parent's), fd -1
# when no local counter is configured
_tls = threading.local()


def _after_fork() -> None:
    global _tls
    _tls = threading.local()


os.register_at_fork(after_in_child=_after_fork)


def _redis() -> Any:
    """One plain redis-py connection per worker process (fork-safe)."""
    global _conn, _conn_pid
    pid = os.getpid()
    if _conn is None or _conn_pid != pid:
        _conn = redis.Redis.from_url(os.environ[ENV_URL])
        _conn_pid = pid
    return _conn


def _open_local() -> int:
    global _total
    _total = int(os.environ.get(ENV_TOTAL, "0"))
    path = os.environ.get(ENV_COUNTER)
    if not path:
        _tls.fd = -1
        return -1
    _tls.times = os.open(path + ".times", os.O_WRONLY)
    _tls.fd = os.open(path + ".count", os.O_WRONLY | os.O_APPEND)
    return _tls.fd


def task_done() -> None:
    """Body of the no-op task used for drain measurements.

    Local counter (the default): no Redis command; two system calls on a
    tmpfs file. The last task pushes to bench:finished after its end time
    is written. Redis counter: exactly one Redis round trip per task (the
    INCR), plus one SET for the first and last task of the run.
    """
    started = time.time()
    fd = getattr(_tls, "fd", None)
    if fd is None:
        fd = _open_local()
    if fd < 0:
        _task_done_redis(started)
        return
    os.write(fd, b"\0")
    n = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: where this very write ended
    if n == 1:
        os.pwrite(_tls.times, _TIME.pack(started), 0)
    if n == _total:
        os.pwrite(_tls.times, _TIME.pack(time.time()), 8)
        _redis().rpush(K_FINISHED, n)


def _task_done_redis(started: float) -> None:
    r = _redis()
    n = r.incr(K_DONE)
    if n == 1:
        r.set(K_FIRST, repr(started))
    if n == _total:
        r.set(K_LAST, repr(time.time()))
        r.rpush(K_FINISHED, n)


def task_stamp() -> None:
    """Body of the task used for pickup latency: record when it started."""
    started = time.time()
    _redis().rpush(K_LAT, repr(started))
