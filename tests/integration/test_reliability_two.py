"""Reliability, round two (issue 24): a broken queue, a full Redis, tasks only
some workers know, and a producer after Redis lost its data. Each test runs
real redis-server and real worker processes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import reliability_extra as rx
import reliability_tasks as rt
from harness import Ledger, Workers, blocked_clients, wait_until
from redis_server import RedisServerProcess

import rpqueue


def _worker_record(rcli: Any) -> dict[str, Any]:
    records: list[dict[str, Any]] = [json.loads(raw) for raw in rcli.hvals("rpqueue:workers")]
    assert len(records) == 1, records
    return records[0]


# -- 6. a key of the wrong type -------------------------------------------------------


def test_a_queue_with_a_broken_ready_list_does_not_stop_the_others(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any) -> None:
    # "broken" comes first in the worker's order: every take tries it first.
    rcli.set(app.store.keys.queue("broken").ready, "not a list")
    worker = workers.start("reliability_tasks", "broken", "default")
    for i in range(21):
        rt.record.execute(f"t{i}")
    ledger.wait_for(21, "ran")
    worker.wait_log("queue broken (skipped meanwhile) is broken")
    # Reported once per period, not once per take.
    assert worker.stderr().count("is broken") == 1
    wait_until(lambda: "take:broken" in _worker_record(rcli).get("broken", {}),
               message="the broken queue in the heartbeat record")
    # Repaired, it is served again.
    rcli.delete(app.store.keys.queue("broken").ready)
    rt.record.execute("late", _queue="broken")
    ledger.wait_for(1, "ran", tag="late", timeout=60)


def test_a_broken_wake_list_is_reported_and_idle_workers_block(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any) -> None:
    # Queued (and due in a moment) before the wake list breaks: enqueueing
    # itself pushes to it.
    rt.record.execute("on-broken", _queue="broken", delay=1.0)
    rcli.delete(app.store.keys.queue("broken").wake)
    rcli.set(app.store.keys.queue("broken").wake, "not a list")
    worker = workers.start("reliability_tasks", "broken", "default")
    worker.wait_log("the wake list of queue broken")
    # Idle, the worker blocks on the good wake lists instead of spinning on
    # a BLPOP that fails at once...
    wait_until(lambda: blocked_clients(rcli) >= 1, message="the idle worker blocked in BLPOP")
    # ...and still serves every queue, the broken one's tasks included.
    rt.record.execute("good")
    ledger.wait_for(1, "ran", tag="good")
    ledger.wait_for(1, "ran", tag="on-broken")
    assert worker.stderr().count("is broken") == 1


def test_a_paused_set_of_the_wrong_type_does_not_stop_the_work(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any) -> None:
    rcli.set(app.store.keys.paused, "not a set")
    worker = workers.start("reliability_tasks")  # all queues
    for i in range(5):
        rt.record.execute(f"p{i}")
    rt.record_other.execute("other")
    ledger.wait_for(6, "ran")
    worker.wait_log("key rpqueue:paused")


# -- 8. a full Redis -------------------------------------------------------------------


@pytest.mark.redis_options(appendonly="no", maxmemory="8mb", maxmemory_policy="noeviction")
def test_a_retry_refused_by_a_full_redis_is_recorded_once_memory_is_back(
        app: rpqueue.RPQueue, fresh_redis: RedisServerProcess, workers: Workers) -> None:
    rpqueue.set_redis_url(fresh_redis.url)
    client = fresh_redis.client(decode_responses=True)
    fledger = Ledger(client)
    worker = workers.start("reliability_tasks", "default", "other", url=fresh_redis.url)
    handle = rt.fills_then_fails.execute("oom", 12 * 1024 * 1024)
    fledger.wait_for(1, "run", tag="oom")
    worker.wait_log("ValueError: first run")
    assert client.info("memory")["used_memory"] > 8 * 1024 * 1024
    # Memory comes back: the retry, recorded while Redis was full, runs...
    client.delete(rt.FILLER)
    fledger.release("oom")
    fledger.wait_for(2, "run", tag="oom")
    wait_until(lambda: handle.status == "done", message="the retried call done")
    assert handle.result == "second run"
    # ...and the worker goes on serving its other queues.
    rt.record_other.execute("other")
    fledger.wait_for(1, "ran", tag="other")
    client.close()


# -- 3. the known-queues index after Redis lost its data --------------------------------


def test_a_producer_registers_its_queue_again_after_redis_lost_the_index(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any) -> None:
    worker = workers.start("reliability_tasks")  # all queues: it finds them in the index
    rt.record_other.execute("first")
    ledger.wait_for(1, "ran", tag="first")
    # Redis loses everything (a restart without persistence, a failover to a
    # replica that missed the writes): the index is gone, the producer's
    # memory of having written it is not.
    rcli.flushall()
    # The worker goes by the index: it stops serving the queue it lost.
    wait_until(lambda: rcli.hlen("rpqueue:workers")
               and "other" not in _worker_record(rcli)["queues"],
               message="the worker no longer serving the lost queue")
    # The producer registers its queues again every note_again seconds
    # (NOTE_AGAIN, 30 s): 0 here, so that this very call does.
    app.store.note_again = 0
    rt.record_other.execute("again")
    ledger.wait_for(1, "ran", tag="again")
    assert worker.alive()


# -- 11. a producer while Redis loads its data -------------------------------------------


def test_a_producer_waits_while_redis_loads_its_data(
        app: rpqueue.RPQueue, redis_factory: Any) -> None:
    # Each key takes 100 us to load: 20,000 keys keep Redis loading about 2 s,
    # answering clients (LOADING) meanwhile.
    server = redis_factory({"key-load-delay": 100,
                            "loading-process-events-interval-bytes": 1024})
    rpqueue.set_redis_url(server.url)
    with server.client() as client:
        with client.pipeline(transaction=False) as pipe:
            for i in range(20_000):
                pipe.set(f"fill:{i}", "x" * 100)
            pipe.execute()
        client.save()
    server.restart()
    with server.client() as client:
        assert client.info("persistence")["loading"] == 1
        handle = rt.record.execute("after-load")  # waits out the load, then queues
        assert client.info("persistence")["loading"] == 0
    assert handle.status == "waiting"


# -- 10. tasks only some workers define ----------------------------------------------------


def _dead(rcli: Any, queue: str) -> int:
    return int(rcli.zcard(f"rpqueue:q:{{{queue}}}:dead"))


def test_a_task_unknown_here_is_left_for_the_worker_that_knows_it(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any) -> None:
    newer = workers.start("reliability_extra", "newq")
    # The newer worker is busy: only the older one, serving all queues and
    # not defining the new tasks, is free to take them.
    rx.busy.execute("gate")
    ledger.wait_for(1, "started", tag="gate")
    older = workers.start("reliability_tasks")
    for i in range(5):
        rx.extra.execute(f"x{i}")
    older.wait_log("is not defined in this worker; leaving it to")
    assert _dead(rcli, "newq") == 0
    ledger.release("gate")
    ledger.wait_for(5, "ran")
    assert {e["pid"] for e in ledger.events("ran")} == {newer.pid}
    assert _dead(rcli, "newq") == 0


def test_a_task_no_live_worker_knows_is_dead_lettered_after_a_grace_period(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, rcli: Any) -> None:
    worker = workers.start("reliability_tasks", env={"RPQUEUE_UNKNOWN_GRACE": "2"})
    rx.extra.execute("orphan")
    worker.wait_log("is defined in no live worker")
    assert _dead(rcli, "newq") == 0  # not before its grace period ends
    wait_until(lambda: _dead(rcli, "newq") == 1, message="the call dead-lettered")
    records = [r for r in rpqueue.admin.dead_records(app.ctx) if r["name"] == "reliability_extra.extra"]
    assert [r["reason"] for r in records] == ["unknown task"]
    assert worker.alive()
