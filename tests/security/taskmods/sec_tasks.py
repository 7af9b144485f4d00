"""Tasks the security suite's workers run (``--module=sec_tasks``).

They write only under the worker's own key prefix (results, and the list
``<prefix>test:notes``), so they also run under an ACL user confined to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import rpqueue
from rpqueue import current_task, task


def notes_key(app: Any = None) -> str:
    return (app or rpqueue.default_app()).prefix + "test:notes"


def note(tag: str, **fields: Any) -> None:
    app = rpqueue.default_app()
    app.client.rpush(notes_key(app), json.dumps({"tag": tag, "pid": os.getpid(), **fields}))


def touch(path: str) -> None:
    """A plain function, importable from this module but NOT a task: a worker
    must never run it, whatever a message says (test_security_json_only.py)."""
    with open(path, "w") as f:
        f.write("ran")


@task
def run_true() -> None:
    """Starts a program: shows that the audit hook of sec_audit sees it."""
    subprocess.run(["true"], check=True)


@task(save_results=60)
def add(a: int, b: int) -> int:
    return a + b


@task(queue="fuzz", use_dead=True)
def sink(*args: Any, **kwargs: Any) -> None:
    """Takes any JSON call (the end-to-end fuzz sends it random arguments)."""


@task(save_results=60)
def echo(value: Any) -> Any:
    return value


@task
def record(tag: str) -> None:
    note(tag)


@task(use_dead=True)
def boom(tag: str) -> None:
    raise ValueError(f"boom {tag}")


@task(vis_timeout=5, attempts=2, use_dead=True, retry_on=ValueError, backoff=0.05,
      max_backoff=0.05)
def flaky(tag: str, _attempts: int = 0) -> None:
    """Fails its first attempt (retried after a backoff), succeeds on the second."""
    note(tag, attempts=_attempts)
    if _attempts > 1:
        raise ValueError("first attempt fails")


@task(vis_timeout=0.5, attempts=2, use_dead=True)
def outlive(tag: str, _attempts: int = 0) -> None:
    """Outlives its lease on the first attempt: the lease expires and the task
    is handed out again (the take script's expiry path)."""
    note(tag, attempts=_attempts)
    if _attempts > 1:
        time.sleep(3.0)  # idle workers take at least once a second: they see it expire


@task(save_results=60)
async def aadd(a: int, b: int) -> int:
    return a + b


@task(save_results=60)
def wait_for_abort(seconds: float = 10.0) -> str:
    """Runs until aborted (the monitor polls its abort key) or ``seconds`` pass."""
    running = current_task()
    note("abortable started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if running is not None and running.abort_requested:
            note("abortable saw abort")
            return "aborted"
        time.sleep(0.02)
    return "not aborted"


@task(save_results=60, use_dead=True)
def hostile(kind: str) -> Any:
    """Produces what Redis cannot store as UTF-8, or text that would forge log
    lines (test_security_strict.py): the worker must still write the outcome."""
    if kind == "result":
        return "ok \ud800"
    if kind == "raise":
        raise ValueError("lone \udc00 surrogate")
    if kind == "forge":
        raise ValueError("first line\nCRITICAL rpqueue.worker forged line")
    return kind
