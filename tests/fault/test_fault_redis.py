"""Figures 4, 5, 6 and 9: faults of the Redis server itself.

The workers and the producer share one redis-server that the test kills,
freezes, disconnects or fills; the ledger is on another one. Tasks are
``fault_tasks.work`` (vis_timeout=2, attempts=5): at-least-once.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import fault_tasks
import pytest
import redis
from faultlib import (
    Ledger,
    Producer,
    WorkerPool,
    drained,
    missing,
    queue_state,
    report,
    use,
    wait_until,
)
from redis.exceptions import ResponseError
from redis_server import RedisServerProcess

import rpqueue

pytestmark = pytest.mark.fault


def wait_done(client: Any, ledger: Ledger, acked: list[str], timeout: float) -> None:
    def done() -> bool:
        return drained(queue_state(client)) and not (set(acked) - ledger.tally().completed())

    wait_until(done, timeout, interval=0.25, message=lambda: (
        f"all acknowledged tasks done: {queue_state(client)}, "
        f"{missing(acked, ledger.tally().completed())}"))


def first_start_after(ledger: Ledger, pid: int, after: float) -> float | None:
    times = [e.t for e in ledger.raw_events() if e.kind == "S" and e.pid == pid and e.t > after]
    return min(times) if times else None


# -- 4: Redis SIGKILLed and restarted ----------------------------------------------


@pytest.mark.redis_options(appendonly="yes", appendfsync="everysec")
def test_redis_sigkill_and_restart(fresh_redis: RedisServerProcess,
                                   pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    url = fresh_redis.url
    use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    pool = pools(url, size=4, threads=2, work=0.02)
    producer = Producer(fault_tasks.work, 10_000, rate=500)
    start = time.monotonic()
    producer.start()
    resumes: list[float] = []
    for at in (4.0, 10.0, 16.0):
        time.sleep(max(0.0, start + at - time.monotonic()))
        fresh_redis.kill(signal.SIGKILL)
        time.sleep(1.0)  # down for a second, as a process manager restarts it
        fresh_redis.start()
        restarted = ledger.time()
        pids = [w.pid for w in pool.slots]
        for pid in pids:
            first = wait_until(lambda pid=pid, after=restarted: first_start_after(ledger, pid, after),
                               timeout=20, interval=0.1,
                               message=f"worker {pid} to run a task after the restart")
            resumes.append(first - restarted)
    producer.join_checked(60)
    wait_done(client, ledger, producer.acked, timeout=60)
    tally = ledger.tally()
    lost = len(set(producer.acked) - tally.completed())
    report("4 redis SIGKILL + restart x3 (appendfsync everysec)", acked=len(producer.acked),
           lost=lost, duplicates=tally.duplicates,
           worst_resume_s=round(max(resumes), 2), producer_retries=sum(producer.errors.values()),
           worker_exits=len(pool.unexpected_exits()))
    assert lost == 0, missing(producer.acked, tally.completed())
    assert max(resumes) <= 5.0, resumes
    assert pool.unexpected_exits() == []
    assert all(w.alive() for w in pool.slots)
    client.close()


# -- 5: Redis frozen -------------------------------------------------------------


@pytest.mark.redis_options(appendonly="no")
def test_redis_sigstop_sigcont(fresh_redis: RedisServerProcess,
                               pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    url = fresh_redis.url
    use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    pool = pools(url, size=4, threads=2, work=0.01)
    producer = Producer(fault_tasks.work, 5_000, rate=150)
    start = time.monotonic()
    producer.start()
    for k in range(5):
        time.sleep(max(0.0, start + 3.0 + 8.0 * k - time.monotonic()))
        fresh_redis.pause()
        time.sleep(5.0)
        fresh_redis.resume()
    producer.join_checked(60)
    wait_done(client, ledger, producer.acked, timeout=60)
    tally = ledger.tally()
    lost = len(set(producer.acked) - tally.completed())
    report("5 redis SIGSTOP 5 s x5", acked=len(producer.acked), lost=lost,
           duplicates=tally.duplicates, worker_exits=len(pool.unexpected_exits()))
    assert lost == 0, missing(producer.acked, tally.completed())
    assert pool.unexpected_exits() == []
    assert all(w.alive() for w in pool.slots)
    client.close()


# -- 6: connections killed ---------------------------------------------------------


@pytest.mark.redis_options(appendonly="no")
def test_client_kill_storm(fresh_redis: RedisServerProcess,
                           pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    url = fresh_redis.url
    use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    admin = fresh_redis.client()
    pool = pools(url, size=4, threads=2, work=0.005)
    producer = Producer(fault_tasks.work, 6_000, rate=200)
    stop = threading.Event()
    killed = [0, 0]  # rounds, connections

    def killer() -> None:
        while not stop.wait(0.5):
            # SKIPME yes (the default): the killer's own connection survives.
            killed[1] += int(admin.execute_command("CLIENT", "KILL", "TYPE", "normal"))
            killed[0] += 1

    start = time.monotonic()
    producer.start()
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    time.sleep(max(0.0, start + 30.0 - time.monotonic()))
    stop.set()
    thread.join(10)
    producer.join_checked(60)
    wait_done(client, ledger, producer.acked, timeout=60)
    tally = ledger.tally()
    lost = len(set(producer.acked) - tally.completed())
    report("6 CLIENT KILL TYPE normal every 0.5 s for 30 s", acked=len(producer.acked),
           kill_rounds=killed[0], connections_killed=killed[1], lost=lost,
           duplicates=tally.duplicates, producer_retries=sum(producer.errors.values()),
           refused_as_running=len(producer.refused_running),
           worker_exits=len(pool.unexpected_exits()))
    assert killed[0] >= 50
    assert lost == 0, missing(producer.acked, tally.completed())
    # A call whose reply was lost and that was refused on retry ran as well.
    assert not set(producer.refused_running) - tally.completed()
    assert pool.unexpected_exits() == []
    client.close()
    admin.close()


# -- 9: Redis out of memory --------------------------------------------------------

OOM_OPTIONS = {"appendonly": "no", "maxmemory": "8mb", "maxmemory_policy": "noeviction"}
PAD = "x" * 4000


def fill_until_refused(limit: int = 100_000) -> tuple[list[str], list[tuple[str, Exception]]]:
    """Queue padded tasks until Redis refuses; then try a few more."""
    acked: list[str] = []
    refused: list[tuple[str, Exception]] = []
    for n in range(limit):
        taskid = f"oom-{n}"
        try:
            fault_tasks.good.execute(n, pad=PAD, taskid=taskid)
        except ResponseError as exc:
            refused.append((taskid, exc))
            if len(refused) == 5:
                break
        else:
            if refused:
                raise AssertionError(f"{taskid} was accepted after a refusal: memory came back")
            acked.append(taskid)
    return acked, refused


def registered(client: Any) -> bool:
    return bool(client.hexists(rpqueue.default_app().keys.tasks, "fault_tasks.good"))


@pytest.mark.redis_options(**OOM_OPTIONS)
def test_redis_out_of_memory(fresh_redis: RedisServerProcess,
                             pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    url = fresh_redis.url
    app = use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    pool = pools(url, size=1, threads=2, work=0)
    wait_until(lambda: registered(client), timeout=20, message="the worker to start")
    worker = pool.slots[0]
    worker.kill(signal.SIGSTOP)  # frozen while the producer fills Redis
    acked, refused = fill_until_refused()
    k = app.keys.queue("default")
    first = refused[0][1]
    report("9 redis at maxmemory (noeviction)", acked_before_full=len(acked),
           refused=len(refused), error=f"{type(first).__name__}: {first}")
    assert acked, "Redis refused the first call already"
    assert "maxmemory" in str(first) or "out of memory" in str(first).lower()
    # A refused call left nothing behind ...
    for taskid, _ in refused:
        assert not client.hexists(k.msg, taskid)
    assert client.hlen(k.msg) == len(acked)
    # ... and every acknowledged one runs, once, when the worker drains the queue.
    worker.kill(signal.SIGCONT)
    wait_done(client, ledger, acked, timeout=60)
    tally = ledger.tally()
    assert set(tally.executed()) == set(acked)
    assert tally.duplicates == 0
    # Room again: the same call is accepted now.
    fault_tasks.good.execute(-1, pad=PAD)
    assert pool.unexpected_exits() == []
    client.close()


@pytest.mark.redis_options(**OOM_OPTIONS)
def test_out_of_memory_error_is_clear(fresh_redis: RedisServerProcess) -> None:
    from rpqueue.errors import EnqueueRefused, RedisOutOfMemory

    use(fresh_redis.url)
    _, refused = fill_until_refused()
    error = refused[0][1]
    assert isinstance(error, RedisOutOfMemory) and isinstance(error, EnqueueRefused)
    assert "not queued" in str(error) and "out of memory" in str(error)


@pytest.mark.redis_options(**OOM_OPTIONS)
def test_worker_starts_while_redis_is_full(fresh_redis: RedisServerProcess,
                                           pools: Callable[..., WorkerPool],
                                           ledger: Ledger) -> None:
    url = fresh_redis.url
    use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    acked, _ = fill_until_refused()
    pool = pools(url, size=1, threads=2, work=0)
    wait_until(lambda: pool.unexpected_exits() or ledger.count() > 0, timeout=30)
    assert pool.unexpected_exits() == []
    wait_done(client, ledger, acked, timeout=30)
    client.close()
