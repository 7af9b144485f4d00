"""Sync and async tasks served by one worker."""

from __future__ import annotations

import time

import aio_tasks  # noqa: F401  (the async tasks)
from aio_ledger import note

import rpqueue
from rpqueue import task


@task(queue="aio", save_results=60)
def sync_work(tag: str, seconds: float) -> str:
    running = rpqueue.current_task()
    note("sync-start", tag=tag, current=running and running.taskid)
    time.sleep(seconds)
    note("sync-end", tag=tag)
    return f"sync {tag}"


@task(queue="aio")
def sync_gate(tag: str) -> None:
    """Blocks one worker thread until released."""
    note("sync-start", tag=tag)
    rpqueue.default_app().client.blpop([f"aio:release:{tag}"], timeout=30)
    note("sync-end", tag=tag)
