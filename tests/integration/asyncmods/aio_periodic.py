"""A periodic ``async def`` task (every second) and a cron one."""

from __future__ import annotations

import asyncio

from aio_ledger import anote

from rpqueue import cron_task, periodic_task


@periodic_task(run_every=1, queue="aio-periodic", name="aio.tick")
async def tick() -> str:
    await asyncio.sleep(0.01)
    await anote("tick")
    return "ticked"


@cron_task("* * * * *", queue="aio-periodic", name="aio.cron")
async def every_minute() -> None:
    await anote("cron")
