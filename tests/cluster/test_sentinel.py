"""rpqueue through Redis Sentinel (``redis+sentinel://s1,s2,s3/mymaster``).

A smoke set of the core features, then a failover: SIGKILL the primary,
the sentinels promote the replica, and the workers carry on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import cluster_tasks
from cluster_harness import Ledger, Workers, wait_until
from redis.exceptions import RedisError
from redis_cluster import SentinelSetup

import rpqueue
from rpqueue.data import Data

RESUME_BOUND = 5.0


def test_sentinel_execute_result_and_delay(sentinel_url: str, workers: Workers,
                                           ledger: Ledger) -> None:
    app = rpqueue.default_app()
    assert not app.cluster and app.describe_connection() == sentinel_url
    workers.start()
    t = cluster_tasks.add.execute(20, 22)
    later = cluster_tasks.record.execute("later", delay=0.5)
    assert later.status == "early"
    wait_until(lambda: t.status == "done", message="add() done")
    assert t.result == 42
    ledger.wait_for(1, tag="later")


def test_sentinel_async_client(sentinel_url: str, workers: Workers) -> None:
    workers.start()

    async def main() -> Any:
        t = await cluster_tasks.async_mul.aexecute(6, 7)
        return await t.await_result(15)

    assert asyncio.run(main()) == 42


def test_sentinel_data_queue_and_inspection(sentinel_url: str) -> None:
    q = Data("sentinel-data", vis_timeout=5)
    q.put_data(["a", "b"])
    got = q.get_data_with_receipts(2)
    assert [v.item for v in got.values()] == ["a", "b"]
    assert q.done_data(got) == 2
    started = time.monotonic()
    assert q.get_data(1, get_timeout=0.3) == {}
    assert time.monotonic() - started >= 0.25
    ids = [cluster_tasks.record.execute(i, _queue="sq").taskid for i in range(3)]
    assert dict((n, s) for n, s, _ in rpqueue.queue_sizes()) == {"sq": 3}
    assert [p["id"] for p in rpqueue.get_page("sq", 0)] == ids
    assert rpqueue.clear_queue("sq") == 3


def test_sentinel_failover(own_sentinel: SentinelSetup, workers: Workers,
                           ledger: Ledger) -> None:
    deployment = own_sentinel
    queue = "busy"
    cluster_tasks.work.execute_many([(-i, 0.01) for i in range(300)], _queue=queue)
    pool = [workers.start(queue, threads=2, ready=False) for _ in range(2)]
    for w in pool:
        w.wait_ready()
    stop = threading.Event()
    raised: list[BaseException] = []

    def produce() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                cluster_tasks.work.execute(n, 0.005, _queue=queue)
            except RedisError as exc:
                raised.append(exc)
                time.sleep(0.05)
            time.sleep(0.005)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        ledger.wait_for(30)
        old = deployment.primary
        killed_at = time.time()
        old.kill()
        new = deployment.wait_failover(old.port)
        promoted_at = time.time()
        assert new is deployment.replica

        def started_after() -> list[dict[str, Any]]:
            return [e for e in ledger.events("start") if e["t"] > promoted_at]

        first = wait_until(started_after, timeout=RESUME_BOUND + 10,
                           message=lambda: f"a task after the failover\n{workers.logs()}")
        resumed = min(e["t"] for e in first) - promoted_at
        assert resumed <= RESUME_BOUND, f"resumed {resumed:.2f}s after promotion"
        wait_until(lambda: {e["pid"] for e in started_after()} >= {w.pid for w in pool},
                   timeout=10, message=lambda: f"every worker working again\n{workers.logs()}")
    finally:
        stop.set()
        producer.join(30)
    assert all(w.alive() for w in pool)
    assert raised, "the producer never noticed the failover"
    print(f"\nsentinel failover: promotion {promoted_at - killed_at:.2f}s after SIGKILL, "
          f"processing resumed {resumed:.2f}s after it")
