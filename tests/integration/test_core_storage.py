"""Storage: the key prefix, one hash tag per queue, Redis TIME, one round trip per execute()."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import basic
import pytest
from harness import Ledger, Workers, command_calls, top_level_commands, wait_until
from redis_server import RedisServerProcess, free_port

import rpqueue

QUEUE_NAMES = ["default", "low", "a{b}c", "x}", "{", "%7B", "sp ace", "\u00e9"]


def hash_tag(key: str) -> str | None:
    """The part of a key Redis Cluster hashes, when it has a hash tag (the cluster rule)."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end < 0 or end == start + 1:
        return None
    return key[start + 1:end]


def _exercise(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger, prefix: str) -> None:
    """Use every kind of key: waiting, delayed, results, stats, priorities, dead letters."""
    for q in QUEUE_NAMES:
        rpqueue.set_priority(q, 1)
        basic.add.execute(1, 2, _queue=q)
        basic.record.execute(q, _queue=q)
        basic.record.execute("later", delay=60, _queue=q)
    rpqueue.call_task("nobody.knows", "default")
    workers.start("basic", *QUEUE_NAMES, args=["--prefix", prefix])
    ledger.wait_for(len(QUEUE_NAMES), "ran")
    wait_until(lambda: rpqueue.read_deadletter(), message="dead letter written")


def test_every_key_starts_with_the_prefix(app: rpqueue.RPQueue, workers: Workers,
                                          ledger: Ledger, rcli: Any) -> None:
    rpqueue.set_key_prefix("pfx:")
    _exercise(app, workers, ledger, "pfx:")
    keys = [k for k in rcli.keys("*") if not k.startswith("test:")]
    assert len(keys) > len(QUEUE_NAMES)
    assert [k for k in keys if not k.startswith("pfx:")] == []


def test_all_keys_of_a_queue_share_one_hash_tag(app: rpqueue.RPQueue, workers: Workers,
                                                ledger: Ledger, rcli: Any) -> None:
    _exercise(app, workers, ledger, "rpqueue:")
    by_tag: dict[str | None, list[str]] = defaultdict(list)
    for key in rcli.keys("rpqueue:*"):
        by_tag[hash_tag(key)].append(key)
    untagged = by_tag.pop(None, [])
    # Only the global indexes have no tag.
    assert all(k.count(":") == 1 or k.startswith("rpqueue:queues") for k in untagged), untagged
    # One tag per queue, and each queue's keys (several parts) under it.
    assert len(by_tag) == len(QUEUE_NAMES)
    assert all(len(keys) >= 3 for keys in by_tag.values()), dict(by_tag)


def _cluster_port() -> int:
    # Redis refuses cluster mode on ports above 55535 (the bus port is port + 10000).
    while (port := free_port()) > 55535:
        pass
    return port


@pytest.fixture
def cluster_redis(tmp_path: Path) -> Iterator[RedisServerProcess]:
    """A one-node Redis Cluster: any command or script mixing slots fails with CROSSSLOT."""
    for attempt in range(5):
        server = RedisServerProcess(
            tmp_path / f"cluster{attempt}",
            {"cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
             "cluster-port": free_port()},
            port=_cluster_port())
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if attempt == 4:
                raise
    client = server.client(decode_responses=True)
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    wait_until(lambda: "cluster_state:ok" in client.execute_command("CLUSTER", "INFO"),
               message="cluster ok")
    client.close()
    try:
        yield server
    finally:
        server.stop()


def test_queue_operations_stay_in_one_cluster_slot(app: rpqueue.RPQueue,
                                                   cluster_redis: RedisServerProcess,
                                                   workers: Workers) -> None:
    rpqueue.set_redis_url(cluster_redis.url)
    for q in QUEUE_NAMES:
        rpqueue.set_priority(q, 2)
        waiting = basic.add.execute(1, 2, _queue=q)
        delayed = basic.add.execute(3, 4, _queue=q, delay=30)
        assert (waiting.status, delayed.status) == ("waiting", "early")
        assert rpqueue.get_page(q, 0)
        assert delayed.cancel() is True
        assert rpqueue.delete_item(q, waiting.taskid) is True
        basic.add.execute(5, 6, _queue=q, delay=30)
        assert rpqueue.clear_queue(q) == 1
        rpqueue.default_app().queue_info(q)
    et = basic.add.execute(20, 22, _queue="a{b}c")
    # A worker serving one queue: take, finish, results, dead letters.
    workers.start("basic", "a{b}c", url=cluster_redis.url)
    wait_until(lambda: et.result == 42, message="ran on the cluster node")
    assert rpqueue.result(et.taskid) == 42
    assert et.cancel() == -1
    rpqueue.call_task("nobody.knows", "a{b}c")
    wait_until(lambda: rpqueue.read_deadletter(), message="dead letter")
    assert rpqueue.read_deadletter(delete=True)


# -- Redis TIME, not local clocks ------------------------------------------------------


def test_delays_use_redis_time_not_the_callers_clock(app: rpqueue.RPQueue, rcli: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 7200)  # two hours slow
    et = basic.record.execute("x", delay=10)
    monkeypatch.undo()
    secs, micros = rcli.time()
    now = int(secs) + int(micros) / 1e6
    [item] = rpqueue.get_page("default", 0)
    assert 9 <= item["due"] - now <= 10.5
    assert et.status == "early"


def test_a_worker_with_a_fast_clock_runs_nothing_early(app: rpqueue.RPQueue, workers: Workers,
                                                       ledger: Ledger, rcli: Any) -> None:
    workers.start("skewed_clock", "default")
    et = basic.record.execute("on-time", delay=1.0)
    enqueued = time.monotonic()
    [run] = ledger.wait_for(1, "ran", tag="on-time")
    assert time.monotonic() - enqueued >= 0.9
    assert run["id"] == et.taskid


# -- one round trip per execute() -------------------------------------------------------


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0)
            for k in set(before) | set(after) if after.get(k, 0) != before.get(k, 0)}


@pytest.mark.parametrize("call", [
    pytest.param(lambda: basic.record.execute("x"), id="plain"),
    pytest.param(lambda: basic.record.execute("x", delay=30), id="delay"),
    pytest.param(lambda: basic.record.execute("x", taskid="fixed-id"), id="taskid"),
    pytest.param(lambda: basic.fail_until_zero_fast.execute(3), id="attempts"),
    pytest.param(lambda: basic.record_low.execute("x", _queue="default"), id="queue-override"),
    pytest.param(lambda: basic.fail_until_zero_fast.retry(3, _attempts=3), id="retry"),
    pytest.param(lambda: rpqueue.call_task("basic.record", "default", "x"), id="call_task"),
])
def test_one_round_trip_per_execute(app: rpqueue.RPQueue, redis_url: str, rcli: Any,
                                    call: Any) -> None:
    basic.record.execute("warm-up")  # the queue is now used once in this process
    # INFO commandstats also counts what scripts run inside, so only EVALSHA
    # is compared there; MONITOR shows every command a client sent.
    command_calls(rcli)
    before = command_calls(rcli)
    call()
    after = command_calls(rcli)
    assert _delta(before, after)["evalsha"] == 1
    sent = top_level_commands(redis_url, call)
    assert [c["command"].split()[0].upper() for c in sent] == ["EVALSHA"]


def test_first_use_of_a_queue_in_a_process_is_registered(app: rpqueue.RPQueue,
                                                         rcli: Any) -> None:
    basic.record.execute("x", _queue="brand-new")
    assert "brand-new" in rpqueue.known_queues()
