"""What the periodic task modules use to tell the tests they ran.

Each run RPUSHes one JSON object to ``ledger:<name>`` through the worker's
own Redis connection, stamped with the Redis server's TIME, so every timing
assertion in the tests uses one clock (Redis's), never the workers' clocks.
"""

from __future__ import annotations

import json
import os
from typing import Any

import rpqueue
from rpqueue import current_task


def ledger_key(name: str) -> str:
    return f"ledger:{name}"


def record(name: str, **extra: Any) -> str | None:
    """Note one execution of ``name``; returns the running task's id."""
    client = rpqueue.default_app().client
    secs, micros = client.time()
    running = current_task()
    taskid = running.taskid if running is not None else None
    entry = {"t": int(secs) + int(micros) / 1e6, "id": taskid, "pid": os.getpid(), **extra}
    client.rpush(ledger_key(name), json.dumps(entry))
    return taskid
