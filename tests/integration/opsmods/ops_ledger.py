"""What the ops task modules use to tell the tests what happened.

Each event is one JSON object RPUSHed to OPS_LEDGER through the worker's own
Redis connection, so a test awaits events with a deadline instead of sleeping.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import rpqueue

OPS_LEDGER = "ops:ledger"
HOOK_EVENTS = "ops:hooks"  # written by ops_hooks


def release_key(tag: str) -> str:
    return f"ops:release:{tag}"


def note(event: str, **fields: Any) -> None:
    record: dict[str, Any] = {"event": event, "pid": os.getpid(), "t": time.time(), **fields}
    running = rpqueue.current_task()
    if running is not None:
        record.setdefault("id", running.taskid)
        record.setdefault("queue", running.queue)
    rpqueue.default_app().client.rpush(OPS_LEDGER, json.dumps(record))


def hold(tag: str, seconds: float = 30) -> bool:
    """Block until the test pushes to release_key(tag); False after ``seconds``."""
    return rpqueue.default_app().client.blpop([release_key(tag)], timeout=seconds) is not None


def spin(seconds: float) -> int:
    """Busy-wait in pure Python bytecode: an exception raised in this thread from
    outside (time limits, hard aborts) takes effect here, unlike in time.sleep()."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n
