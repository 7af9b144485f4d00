"""Tasks for the fault-injection suite, imported by the workers and the tests.

Every run of a task is written to a ledger that no fault touches: a second
redis-server, named by ``$FAULT_LEDGER_URL``. A run writes a start record
before its work and an end record after it. Records are timestamped by the
ledger server's clock, so they are on real time even when the worker runs
under faketime. Record format (one string per run event, RPUSHed to
``ledger:events``)::

    "<S|E> <task id> <worker pid> <unix time from the ledger server>"

and ``ledger:last`` maps a task id to the pid that started it last.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis

import rpqueue

EVENTS = "ledger:events"
LAST = "ledger:last"

# Work per task, in seconds (the tests set it per run).
WORK = float(os.environ.get("FAULT_WORK_SECONDS", "0.005"))
# The suite's workers (started with FAULT_LEDGER_URL set) take messages
# over this size as malformed, so oversized entries stay cheap to make. The
# test process, which imports this module too, keeps the default.
MAX_MESSAGE_BYTES = 64 * 1024
if os.environ.get("FAULT_LEDGER_URL"):
    rpqueue.default_app().max_message_bytes = MAX_MESSAGE_BYTES

_RECORD = """
local t = redis.call('TIME')
local now = string.format('%d.%06d', t[1], t[2])
redis.call('RPUSH', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. now)
if ARGV[1] == 'S' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
return now
"""

_lock = threading.Lock()
_script: Any = None


def _ledger() -> Any:
    global _script
    if _script is None:
        with _lock:
            if _script is None:
                url = os.environ.get("FAULT_LEDGER_URL")
                if not url:
                    raise RuntimeError("FAULT_LEDGER_URL is not set: the fault tasks need a ledger")
                client = redis.Redis.from_url(url, socket_timeout=30)
                _script = client.register_script(_RECORD)
    return _script


def record(kind: str) -> None:
    running = rpqueue.current_task()
    taskid = running.taskid if running is not None else "-"
    _ledger()(keys=[EVENTS, LAST], args=[kind, taskid, os.getpid()])


def _work(seconds: float) -> None:
    if seconds > 0:
        # A plain Event wait, not time.sleep: under faketime --exclude-monotonic
        # (test 7) time.sleep fails with EINVAL in Python 3.11.
        threading.Event().wait(seconds)


@rpqueue.task(vis_timeout=2, attempts=5)
def work(n: int, **kwargs: Any) -> int:
    """At-least-once: redelivered 2 s after its worker vanishes, up to 5 runs."""
    record("S")
    _work(WORK)
    record("E")
    return n


@rpqueue.task
def work_once(n: int) -> int:
    """0/1: never run twice, whatever fails."""
    record("S")
    _work(WORK)
    record("E")
    return n


@rpqueue.task(vis_timeout=30, attempts=3, use_dead=True)
def always_fails(n: int, **kwargs: Any) -> None:
    record("S")
    raise RuntimeError(f"always fails (call {n})")


@rpqueue.task
def good(n: int, pad: str = "") -> int:
    record("S")
    record("E")
    return n


@rpqueue.task(vis_timeout=10, attempts=3)
def probe(n: int, **kwargs: Any) -> None:
    """A delayed task whose start time the clock-skew test checks."""
    record("S")
    record("E")


@rpqueue.task
def schedule_probes(first: int, count: int, delay: float) -> None:
    """Run on a skewed worker: queue delayed probes from that worker's side."""
    record("S")
    for n in range(first, first + count):
        probe.execute(n, delay=delay, taskid=f"probe-{n}")
    record("E")


def now() -> float:
    return time.time()
