"""Tasks with hard time limits: a worker for this module always runs under a
supervisor (a stuck task's process must be replaceable)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ops_ledger import note, spin

from rpqueue import task


@task(queue="limits", timeout=1, use_dead=True)
def sleep_hard(tag: str) -> None:
    note("start", tag=tag)
    time.sleep(30)  # a C call: the TimeLimitExceeded raised in the thread waits for it
    note("not-stopped", tag=tag)


@task(queue="limits", timeout=1, use_dead=True)
def spin_hard(tag: str) -> None:
    note("start", tag=tag)
    spin(30)
    note("not-stopped", tag=tag)


@task(queue="limits", timeout=1, vis_timeout=30, attempts=2, use_dead=True)
def sleep_once(tag: str, _attempts: Any = None) -> str:
    """Stuck on its first attempt, quick on its second."""
    note("start", tag=tag, left=_attempts)
    if _attempts == 2:
        time.sleep(30)
    note("finished", tag=tag)
    return "second time lucky"


@task(queue="limits")
def whoami(tag: str) -> int:
    note("whoami", tag=tag)
    return os.getpid()


@task(queue="limits", timeout=1, use_dead=True)
async def async_hard(tag: str) -> None:
    note("start", tag=tag)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        note("cancelled", tag=tag)
        raise
    note("not-stopped", tag=tag)


@task(queue="limits", soft_timeout=0.5, use_dead=True)
async def async_soft(tag: str) -> None:
    note("start", tag=tag)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await asyncio.sleep(0)  # clean-up may still await
        note("cancelled", tag=tag)
        raise


@task(queue="limits", timeout=5)
async def async_quick(tag: str) -> str:
    await asyncio.sleep(0.05)
    note("async-quick", tag=tag)
    return tag
