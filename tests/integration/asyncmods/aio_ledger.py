"""How the async task modules tell the tests what happened.

Each event is one JSON object RPUSHed to LEDGER. Coroutines write through
the worker's asyncio client (``app.aclient()``, the event loop's own
connection); sync tasks through the sync client. Times are ``time.time()``
in the worker, so a test compares intervals of one process.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import rpqueue

LEDGER = "aio:ledger"


def release_key(tag: str) -> str:
    return f"aio:release:{tag}"


def _record(event: str, fields: dict[str, Any]) -> str:
    record: dict[str, Any] = {"event": event, "pid": os.getpid(), "t": time.time(), **fields}
    running = rpqueue.current_task()
    if running is not None:
        record.setdefault("id", running.taskid)
        record.setdefault("queue", running.queue)
    return json.dumps(record)


async def anote(event: str, **fields: Any) -> None:
    await rpqueue.default_app().aclient().rpush(LEDGER, _record(event, fields))


def note(event: str, **fields: Any) -> None:
    rpqueue.default_app().client.rpush(LEDGER, _record(event, fields))


async def ahold(tag: str, seconds: float = 30) -> bool:
    """Wait (without blocking the loop) until the test pushes to release_key(tag)."""
    got = await rpqueue.default_app().aclient().blpop([release_key(tag)], timeout=seconds)
    return got is not None
