"""Async tasks with time limits (a worker for this module is supervised)."""

from __future__ import annotations

import asyncio

from aio_ledger import anote

from rpqueue import task


@task(queue="aio-limits", timeout=0.5, use_dead=True)
async def too_slow(tag: str) -> None:
    await anote("start", tag=tag)
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        await anote("cancelled", tag=tag)
        raise
    await anote("not-stopped", tag=tag)


@task(queue="aio-limits", timeout=5)
async def quick(tag: str) -> str:
    await asyncio.sleep(0.05)
    await anote("quick", tag=tag)
    return tag


@task(queue="aio-limits", timeout=0.5, use_dead=True)
async def slow_cleanup(tag: str) -> None:
    """Cleans up for a while after its cancellation, still awaiting (not stuck)."""
    await anote("start", tag=tag)
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        await asyncio.sleep(1.8)
        await anote("cleaned-up", tag=tag)
        raise
