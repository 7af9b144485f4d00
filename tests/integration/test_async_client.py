"""Issue #9: the async client (redis.asyncio) against a real redis-server.

aexecute / astatus / await_started / await_result / aresult / acancel /
aretry and the async Data methods share the sync code's scripts and keys:
what one side writes the other reads. Every test runs its coroutines in two
event loops one after the other (asyncio.run twice), which is what the
per-loop client cache (RPQueue.aclient) is for.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_mixed
import aio_tasks
import pytest
from harness import WorkerProcess
from support.paths import ASYNCMODS

import rpqueue
from rpqueue import Data, Leased


@pytest.fixture
def worker(redis_url: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One worker serving the async (and sync) test tasks."""
    proc = WorkerProcess([sys.executable, "-m", "rpqueue.run", "--module=aio_mixed", "--url",
                          redis_url, "--loglevel", "INFO", "--threads=2", "aio"],
                         tmp_path / "workers", "worker", cwd=ASYNCMODS)
    try:
        proc.wait_log("serving")
        yield proc
    finally:
        proc.stop()


def twice(make: Any) -> list[Any]:
    """Run the coroutine ``make()`` returns in two fresh event loops, one after the other."""
    return [asyncio.run(make()) for _ in range(2)]


# -- tasks -------------------------------------------------------------------


def test_aexecute_astatus_acancel_without_worker(app: rpqueue.RPQueue) -> None:
    async def main() -> None:
        et = await aio_tasks.sleeper.aexecute("x", 0)
        assert isinstance(et, rpqueue.EnqueuedTask)
        assert await et.astatus() == "waiting"
        assert et.status == "waiting"  # the sync side sees the same task
        late = await aio_tasks.sleeper.aexecute("y", 0, delay=30)
        assert await late.astatus() == "early"
        assert await et.acancel() is True
        assert await et.astatus() == "done"
        assert await et.acancel() is False
        assert await late.acancel() is True
        assert await et.await_started(timeout=0.05) is True  # gone counts as done
        # Not started within the timeout: False, after about that long.
        pending = await aio_tasks.sleeper.aexecute("z", 0)
        t0 = time.monotonic()
        assert await pending.await_started(timeout=0.2) is False
        assert time.monotonic() - t0 >= 0.19
        with pytest.raises(TimeoutError):
            await pending.await_result(timeout=0.1)
        assert pending.cancel() is True

    twice(main)
    assert "aio" in app.known_queues()


def test_aexecute_validates_like_execute(app: rpqueue.RPQueue) -> None:
    async def main() -> None:
        with pytest.raises(TypeError):
            await aio_tasks.sleeper.aexecute(object(), 0)
        with pytest.raises(ValueError):
            await aio_tasks.sleeper.aexecute("x", 0, taskid="")
        et = await aio_tasks.sleeper.aexecute("x", 0, taskid="fixed-id", _queue="elsewhere")
        assert (et.taskid, et.queue) == ("fixed-id", "elsewhere")
        assert await et.acancel() is True

    twice(main)


def test_results_through_a_real_worker(app: rpqueue.RPQueue, worker: WorkerProcess) -> None:
    async def main() -> list[Any]:
        handles = [await aio_tasks.compute.aexecute(i, 10) for i in range(20)]
        sync_one = await aio_mixed.sync_work.aexecute("s", 0.05)
        assert await handles[0].await_started(timeout=10) is True
        results = await asyncio.gather(*(h.await_result(timeout=10) for h in handles))
        assert await sync_one.await_result(timeout=10) == "sync s"
        assert await handles[0].aresult() == results[0]
        assert handles[0].result == results[0]  # the sync read agrees
        # A saved result is gone once cancelled: -1.
        assert await handles[1].acancel() == -1
        assert await handles[1].aresult() is None
        return results

    first, second = twice(main)
    assert first == second == [{"sum": i + 10, "args": [i, 10]} for i in range(20)]


def test_aretry_queues_one_attempt_fewer(app: rpqueue.RPQueue) -> None:
    async def main() -> None:
        again = await aio_tasks.manual_async.aretry("r", _attempts=3, delay=5)
        assert again is not None
        assert await again.astatus() == "early"
        assert await aio_tasks.manual_async.aretry("r", _attempts=1) is None
        with pytest.raises(TypeError):
            await aio_tasks.manual_async.aretry("r", _attempts="3")
        raw = app.client.hget(app.keys.queue("aio").msg, again.taskid)
        assert b'"_attempts":2' in raw
        assert await again.acancel() is True

    twice(main)


def test_aclient_is_per_event_loop(app: rpqueue.RPQueue) -> None:
    async def client_id() -> int:
        client = app.aclient()
        assert app.aclient() is client  # cached for this loop
        await client.ping()
        return id(client)

    async def in_one_loop() -> tuple[int, int]:
        a = await client_id()
        # The same loop, another task: the same client.
        b = await asyncio.create_task(client_id())
        return a, b

    (a1, b1), (a2, b2) = twice(in_one_loop)
    assert a1 == b1 and a2 == b2


def test_closed_event_loops_release_their_clients(app: rpqueue.RPQueue, rcli: Any) -> None:
    async def main() -> None:
        await app.aclient().ping()

    asyncio.run(main())
    gc.collect()
    before = len(rcli.client_list())
    for _ in range(5):
        asyncio.run(main())
    gc.collect()
    assert len(rcli.client_list()) <= before + 1


def test_async_client_takes_the_socket_timeout_of_set_redis_url(app: rpqueue.RPQueue,
                                                                redis_url: str) -> None:
    app.set_redis_url(redis_url, socket_timeout=7.5)

    async def main() -> Any:
        client = app.aclient()
        await client.ping()
        return client.connection_pool.connection_kwargs["socket_timeout"]

    assert asyncio.run(main()) == 7.5


# -- data queues -------------------------------------------------------------


def test_async_data_put_get_done(app: rpqueue.RPQueue) -> None:
    q = Data("adata", vis_timeout=30, attempts=2)

    async def main() -> None:
        put = await q.aput_data([{"n": i} for i in range(5)], chunksize=2)
        assert list(put.values()) == [{"n": i} for i in range(5)]
        assert q.currently_available() == (5, 0)  # the sync side sees them
        got = await q.aget_data(3)
        assert list(got.values()) == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert q.currently_available() == (2, 3)
        assert await q.adone_data(list(got)) == 3
        rest = q.get_data(5)  # sync read of what the async side put
        assert list(rest.values()) == [{"n": 3}, {"n": 4}]
        assert sorted(await q.arefresh_data(list(rest), vis_timeout=0)) == sorted(rest)
        # A lease of 0 made them readable again.
        peeked = await q.aget_data(5, vis_timeout=-1)
        assert sorted(peeked.values(), key=lambda v: v["n"]) == [{"n": 3}, {"n": 4}]
        assert await q.adone_data(list(rest)) == 2
        assert q.currently_available() == (0, 0)
        assert await q.aget_data(5) == {}

    twice(main)
    assert "adata" in {k.decode() for k in app.client.smembers(app.keys.data_queues)}


def test_async_data_receipts(app: rpqueue.RPQueue) -> None:
    q = Data("areceipts", vis_timeout=30, attempts=3)

    async def main() -> None:
        await q.aput_data("one", is_one=True)
        held = await q.aget_data_with_receipts(1)
        [(item_id, leased)] = held.items()
        assert isinstance(leased, Leased) and leased.item == "one"
        assert await q.arefresh_data(held, vis_timeout=10) == [item_id]
        # The lease ends; another reader takes the item under a new receipt.
        assert await q.arefresh_data([item_id], vis_timeout=0) == [item_id]
        again = await q.aget_data_with_receipts(1)
        assert list(again) == [item_id]
        # The old receipt acts no more; the new one does.
        assert await q.arefresh_data(held) == []
        assert await q.adone_data(held) == 0
        assert await q.adone_data(again) == 1
        with pytest.raises(ValueError):
            await q.aget_data_with_receipts(1, vis_timeout=0)

    twice(main)


def test_async_data_blocking_read_does_not_block_the_loop(app: rpqueue.RPQueue) -> None:
    q = Data("await-data")

    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def late_put() -> None:
            await asyncio.sleep(0.3)
            await q.aput_data(["late"])

        tick = asyncio.create_task(ticker())
        put = asyncio.create_task(late_put())
        t0 = time.monotonic()
        got = await q.aget_data(1, get_timeout=5)
        waited = time.monotonic() - t0
        tick.cancel()
        await put
        assert list(got.values()) == ["late"]
        assert 0.25 <= waited < 3  # woken by the put, not by the timeout
        assert ticks >= 10  # the loop ran other coroutines meanwhile
        t0 = time.monotonic()
        assert await q.aget_data(1, get_timeout=0.2) == {}
        assert time.monotonic() - t0 >= 0.19

    twice(main)


def test_async_data_dead_letters_and_errors(app: rpqueue.RPQueue) -> None:
    q = Data("adead", vis_timeout=0.05, attempts=1, use_dead=True)
    dead = Data("adead", is_dead=True)

    async def main() -> None:
        [item_id] = await q.aput_data([{"x": 1}])
        assert list(await q.aget_data(1)) == [item_id]
        await asyncio.sleep(0.1)  # the only lease runs out
        assert await q.aget_data(1) == {}
        rows = await dead.aget_data(10, vis_timeout=-1)  # a peek at the dead letters
        assert list(rows) == [item_id]
        assert await dead.adone_data([item_id]) == 1
        assert await dead.aget_data(10) == {}
        assert await dead.arefresh_data([item_id]) == []
        with pytest.raises(ValueError):
            await dead.aput_data([1])
        with pytest.raises(TypeError):
            await q.aput_data([object()])
        with pytest.raises(ValueError):
            await q.aget_data(0)

    twice(main)
