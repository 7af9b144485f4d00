"""Redis going away: a worker logs, reconnects with backoff, and resumes when Redis is
back, losing no queued task. Uses a dedicated server (AOF, fsync always) the test
kills, pauses and restarts."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import basic
import pytest
import redis
from harness import Ledger, Workers, wait_until
from redis_server import RedisServerProcess

import rpqueue


@pytest.fixture
def server(app: rpqueue.RPQueue, fresh_redis: RedisServerProcess) -> RedisServerProcess:
    rpqueue.set_redis_url(fresh_redis.url)
    return fresh_redis


@pytest.fixture
def fledger(server: RedisServerProcess) -> Iterator[Ledger]:
    client = server.client(decode_responses=True)
    yield Ledger(client)
    client.close()


def _worker(workers: Workers, server: RedisServerProcess, *extra: str, ready: bool = True) -> Any:
    return workers.start("basic", "default", "other", url=server.url, ready=ready,
                         args=["--timeout", "2", *extra])


def test_worker_survives_a_redis_crash_and_loses_no_queued_task(
        server: RedisServerProcess, workers: Workers, fledger: Ledger) -> None:
    worker = _worker(workers, server)
    basic.record.execute("before")
    fledger.wait_for(1, "ran", tag="before")
    # Queued, not yet due, when Redis dies.
    queued = [basic.record.execute(f"q{i}", delay=1.0, _queue=("default", "other")[i % 2])
              for i in range(6)]
    server.kill(signal.SIGKILL)
    worker.wait_log("unreachable", timeout=30)
    assert worker.alive()
    server.restart()
    fledger.client.connection_pool.disconnect()
    runs = fledger.wait_for(7, "ran", timeout=30)
    assert {r["id"] for r in runs if r["tag"] != "before"} == {t.taskid for t in queued}
    # And it takes new work as usual.
    basic.record.execute("after")
    fledger.wait_for(1, "ran", tag="after")
    assert worker.alive()


def test_task_finishing_during_an_outage_is_recorded_after_it(
        server: RedisServerProcess, workers: Workers, fledger: Ledger) -> None:
    worker = _worker(workers, server)
    et = basic.sleeper.execute("outage", 1.0)
    fledger.wait_for(1, "started", tag="outage")
    server.kill(signal.SIGKILL)
    # It finishes while Redis is down; the worker cannot write the outcome yet.
    worker.wait_log("unreachable", timeout=30)
    server.restart()
    wait_until(lambda: et.status == "done", timeout=30, message="outcome written")
    assert et.result == "slept 1.0"
    assert len(fledger.events("started", tag="outage")) == 1


def test_worker_started_while_redis_is_down(server: RedisServerProcess, workers: Workers,
                                            fledger: Ledger) -> None:
    basic.record.execute("queued-earlier")
    server.kill(signal.SIGKILL)
    worker = _worker(workers, server, ready=False)
    worker.wait_log("unreachable", timeout=30)
    assert worker.alive()
    server.restart()
    fledger.client.connection_pool.disconnect()
    fledger.wait_for(1, "ran", tag="queued-earlier", timeout=30)
    worker.wait_ready()


def test_worker_resumes_after_redis_hangs(server: RedisServerProcess, workers: Workers,
                                          fledger: Ledger) -> None:
    worker = _worker(workers, server)
    basic.record.execute("before")
    fledger.wait_for(1, "ran", tag="before")
    server.pause()  # SIGSTOP: connections stay open, nothing answers
    try:
        worker.wait_log("unreachable", timeout=30)
    finally:
        server.resume()
    basic.record.execute("after")
    fledger.wait_for(1, "ran", tag="after", timeout=30)
    assert worker.alive()


def test_producer_reconnects_after_a_restart(server: RedisServerProcess,
                                             fledger: Ledger) -> None:
    first = basic.record.execute("one")
    server.restart()  # clean restart: AOF keeps the queue; scripts are forgotten
    second = basic.record.execute("two")
    assert (first.status, second.status) == ("waiting", "waiting")
    assert rpqueue.queue_sizes()[0][:2] == ("default", 2)
    server.kill(signal.SIGKILL)
    with pytest.raises(redis.ConnectionError):
        basic.record.execute("three")
