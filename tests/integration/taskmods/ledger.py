"""What task modules use to tell the tests they ran.

Each event is one JSON object RPUSHed to the list ``test:ledger`` through the
worker's own Redis connection (so it follows --url/--host/--prefix), which
lets a test await executions with a deadline instead of sleeping.
"""

from __future__ import annotations

import json
import os
from typing import Any

import rpqueue
from rpqueue import current_task

LEDGER = "test:ledger"


def release_key(tag: str) -> str:
    return f"test:release:{tag}"


def note(event: str, app: Any = None, **fields: Any) -> None:
    app = app or rpqueue.default_app()
    record: dict[str, Any] = {"event": event, "pid": os.getpid(), **fields}
    running = current_task()
    if running is not None:
        record["id"] = running.taskid
        record["queue"] = running.queue
    app.client.rpush(LEDGER, json.dumps(record))


def hold(tag: str, seconds: float, app: Any = None) -> bool:
    """Block until the test pushes to release_key(tag); False after ``seconds``."""
    app = app or rpqueue.default_app()
    return app.client.blpop([release_key(tag)], timeout=seconds) is not None
