"""``async def`` tasks for tests/integration/test_async_worker.py.

Plain ``@task`` settings only (no time limits): a worker for this module runs
unsupervised, one process.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from aio_ledger import ahold, anote

import rpqueue
from rpqueue import task


@task(queue="aio")
async def sleeper(tag: str, seconds: float) -> str:
    await anote("start", tag=tag)
    await asyncio.sleep(seconds)
    await anote("end", tag=tag)
    return tag


# The order coroutines start in, counted before their first await (the ledger's
# order is that of the writes, which may overtake each other).
_started = itertools.count()


@task(queue="aio-hi", name="aio.order_hi")
async def order_hi(tag: str) -> None:
    await anote("order", tag=tag, seq=next(_started))
    await asyncio.sleep(0.01)


@task(queue="aio-lo", name="aio.order_lo")
async def order_lo(tag: str) -> None:
    await anote("order", tag=tag, seq=next(_started))
    await asyncio.sleep(0.01)


@task(queue="aio", save_results=60)
async def compute(x: int, y: int) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {"sum": x + y, "args": [x, y]}


@task(queue="aio")
async def whoami(tag: str, pause: float) -> None:
    """current_task() before and after awaits, with many of these interleaved."""
    before = rpqueue.current_task()
    await asyncio.sleep(pause)
    middle = rpqueue.current_task()
    await anote("whoami", tag=tag, before=before and before.taskid,
                middle=middle and middle.taskid)
    await asyncio.sleep(pause)
    after = rpqueue.current_task()
    await anote("whoami-after", tag=tag, after=after and after.taskid)


@task(queue="aio", vis_timeout=1, attempts=2, use_dead=True)
async def hang(tag: str, seconds: float, _attempts: Any = None) -> str:
    """Outlives its 1 s visibility timeout: the lease expires while it still runs."""
    await anote("hang-start", tag=tag, left=_attempts)
    await asyncio.sleep(seconds)
    await anote("hang-end", tag=tag, left=_attempts)
    return "late"


@task(queue="aio", attempts=3, retry_delay=0)
async def manual_sync(tag: str, _attempts: Any = None) -> None:
    """Retries itself with the sync Task.retry from inside the coroutine."""
    await anote("manual", tag=tag, left=_attempts, how="sync")
    if _attempts is not None and _attempts > 1:
        manual_sync.retry(tag, _attempts=_attempts, delay=0)


@task(queue="aio", attempts=3, retry_delay=0)
async def manual_async(tag: str, _attempts: Any = None) -> None:
    """Retries itself with ``await Task.aretry`` (the event loop is never blocked)."""
    await anote("manual", tag=tag, left=_attempts, how="async")
    if _attempts is not None and _attempts > 1:
        again = await manual_async.aretry(tag, _attempts=_attempts, delay=0)
        await anote("manual-queued", tag=tag, again=again.taskid if again else None)


class Flaky(Exception):
    pass


@task(queue="aio", attempts=3, vis_timeout=10, use_dead=True, retry_on=Flaky, backoff=0.4,
      max_backoff=2)
async def flaky_vis(tag: str, _attempts: Any = None) -> None:
    await anote("flaky", tag=tag, left=_attempts)
    raise Flaky(f"{tag} failed with {_attempts} left")


@task(queue="aio", attempts=3, retry_on=Flaky, backoff=0.4, max_backoff=2)
async def flaky_plain(tag: str, _attempts: Any = None) -> str:
    """A 0/1 task: a retry is a new call, queued from inside the event loop."""
    await anote("flaky", tag=tag, left=_attempts)
    if _attempts != 1:
        raise Flaky(f"{tag} failed with {_attempts} left")
    return "third time"


@task(queue="aio", attempts=3, vis_timeout=30, use_dead=True)
async def abortable(tag: str, _attempts: Any = None) -> None:
    await anote("start", tag=tag, left=_attempts)
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        await anote("cancelled", tag=tag)
        raise
    await anote("not-aborted", tag=tag)


@task(queue="aio")
async def cooperative(tag: str) -> str:
    await anote("start", tag=tag)
    for _ in range(300):
        running = rpqueue.current_task()
        if running is not None and running.abort_requested:
            await anote("saw-abort", tag=tag)
            return "stopped early"
        await asyncio.sleep(0.05)
    return "ran to the end"


@task(queue="aio")
async def gated(tag: str) -> None:
    await anote("start", tag=tag)
    await ahold(tag)
    await anote("end", tag=tag)


@task(queue="aio", save_results=60)
async def slow_result(tag: str, seconds: float) -> str:
    """Writes nothing after its sleep: only its outcome goes to Redis when it ends."""
    await anote("start", tag=tag)
    await asyncio.sleep(seconds)
    return tag


@task(queue="aio")
async def chain(left: int) -> None:
    """Queues its successor at once: that enqueue races the worker's batched takes."""
    if left > 0:
        await chain.aexecute(left - 1)
    await anote("chain", left=left)
