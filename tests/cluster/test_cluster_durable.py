"""Durable enqueue (``set_durable``): WAIT for replicas in the enqueue's round trip.

On the session cluster every primary has one replica, so ``set_durable(1)``
must return with the task already on the replica, and ``set_durable(2)``
cannot be satisfied and must raise NotDurable naming the task, which the
primary did queue. The failover half of the story is in
test_cluster_failover.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import cluster_tasks
import pytest
from redis.crc import key_slot
from redis_cluster import RedisCluster6, SentinelSetup
from redis_server import RedisServerProcess

import rpqueue
from rpqueue.errors import EnqueueRefused, NotDurable
from rpqueue.task import TaskRef


def _replica_has(deployment: Any, primary: RedisServerProcess, key: str, field: str) -> bool:
    replica = deployment.replica_of(primary) if isinstance(deployment, RedisCluster6) \
        else deployment.replica
    c = replica.client()
    try:
        if isinstance(deployment, RedisCluster6):
            c.execute_command("READONLY")
        return bool(c.hexists(key, field))
    finally:
        c.close()


def _spread(cluster: RedisCluster6, count: int) -> list[str]:
    return cluster.queue_names_on_distinct_primaries(count, prefix="durable")


def test_durable_execute_returns_once_the_replica_has_the_task(cluster: RedisCluster6,
                                                               cluster_url: str) -> None:
    app = rpqueue.default_app()
    app.set_durable(1, timeout=2.0)
    for q in _spread(cluster, 3):
        k = app.keys.queue(q)
        primary = cluster.primary_for_key(k.msg)
        t = cluster_tasks.record.execute(q, _queue=q)
        assert _replica_has(cluster, primary, k.msg, t.taskid)
        assert t.status == "waiting"


def test_durable_execute_waits_for_a_slow_replica(cluster: RedisCluster6,
                                                  cluster_url: str) -> None:
    """Not merely fast replication: with the replica frozen, execute() waits
    the whole timeout and raises; once it thaws, execute() returns again."""
    app = rpqueue.default_app()
    app.set_durable(1, timeout=0.3)
    q = _spread(cluster, 1)[0]
    replica = cluster.replica_of(cluster.primary_for_key(app.keys.queue(q).msg))
    replica.pause()  # shorter than cluster-node-timeout: no failover
    try:
        started = time.monotonic()
        with pytest.raises(NotDurable) as info:
            cluster_tasks.record.execute("frozen", _queue=q)
        assert time.monotonic() - started >= 0.28
        assert info.value.acknowledged == 0
    finally:
        replica.resume()
    app.set_durable(1, timeout=2.0)
    cluster_tasks.record.execute("thawed", _queue=q)
    assert app.queue_info(q)["waiting"] == 2


def test_durable_execute_raises_when_replicas_cannot_confirm(cluster: RedisCluster6,
                                                             cluster_url: str) -> None:
    app = rpqueue.default_app()
    app.set_durable(2, timeout=0.2)  # each primary has only one replica
    q = _spread(cluster, 1)[0]
    started = time.monotonic()
    with pytest.raises(NotDurable) as info:
        cluster_tasks.record.execute("x", _queue=q, taskid="durable-id-1")
    assert 0.15 <= time.monotonic() - started < 3
    err = info.value
    assert isinstance(err, EnqueueRefused)
    assert (err.taskids, err.acknowledged, err.required) == (["durable-id-1"], 1, 2)
    assert "durable-id-1" in str(err) and "MAY" in str(err) and "1 of the 2" in str(err)
    # The primary did queue it: the error says so, and it is true.
    assert app.store.run(app.store.calls.status(q, "durable-id-1")) == "waiting"


def test_durable_execute_many(cluster: RedisCluster6, cluster_url: str) -> None:
    app = rpqueue.default_app()
    q = _spread(cluster, 1)[0]
    app.set_durable(1, timeout=2.0)
    handles = cluster_tasks.record.execute_many([(i,) for i in range(5)], _queue=q)
    primary = cluster.primary_for_key(app.keys.queue(q).msg)
    assert all(_replica_has(cluster, primary, app.keys.queue(q).msg, h.taskid)
               for h in handles)
    app.set_durable(2, timeout=0.1)
    with pytest.raises(NotDurable) as info:
        cluster_tasks.record.execute_many([(i,) for i in range(3)], _queue=q)
    assert len(info.value.taskids) == 3
    assert app.queue_info(q)["waiting"] == 8  # the primary queued them all


def test_durable_aexecute(cluster: RedisCluster6, cluster_url: str) -> None:
    app = rpqueue.default_app()
    queues = _spread(cluster, 2)

    async def main() -> tuple[Any, Any]:
        app.set_durable(1, timeout=2.0)
        ok = [await cluster_tasks.record.aexecute(q, _queue=q) for q in queues]
        app.set_durable(2, timeout=0.1)
        try:
            await cluster_tasks.record.aexecute("x", _queue=queues[0], taskid="async-durable")
        except NotDurable as exc:
            return ok, exc
        return ok, None

    ok, err = asyncio.run(main())
    for q, t in zip(queues, ok):
        k = app.keys.queue(q)
        assert _replica_has(cluster, cluster.primary_for_key(k.msg), k.msg, t.taskid)
    assert isinstance(err, NotDurable) and err.taskids == ["async-durable"]
    assert err.acknowledged == 1


def test_durable_first_call_after_script_flush(cluster: RedisCluster6, cluster_url: str) -> None:
    """cluster_url flushed the script caches: the durable pipeline's EVALSHA
    answers NOSCRIPT, and it must send the script's source instead."""
    rpqueue.default_app().set_durable(1, timeout=2.0)
    q = _spread(cluster, 1)[0]
    node = cluster.primary_for_key(rpqueue.default_app().keys.queue(q).msg)
    c = node.client()
    try:
        c.script_flush()
        t = cluster_tasks.record.execute("after-flush", _queue=q)
    finally:
        c.close()
    assert t.status == "waiting"


def test_durable_refuses_settings_that_cannot_work(cluster_url: str) -> None:
    app = rpqueue.default_app()
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(ValueError):
            app.set_durable(bad)  # type: ignore[arg-type]
    for bad_timeout in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            app.set_durable(1, bad_timeout)
    app.set_redis_url(cluster_url, socket_timeout=1.0)
    app.set_durable(1, timeout=1.0)
    with pytest.raises(ValueError, match="socket timeout"):
        cluster_tasks.record.execute("x")
    app.set_durable(0)
    assert app.durable is None
    cluster_tasks.record.execute("not durable")


def test_durable_on_a_server_without_replicas_raises(redis_url: str) -> None:
    """WAIT on a lone server: nobody can confirm, so every durable enqueue raises."""
    app = rpqueue.new_rpqueue("durable-single")
    app.set_redis_url(redis_url)
    app.set_durable(1, timeout=0.1)
    try:
        with pytest.raises(NotDurable) as info:
            TaskRef(app, "cluster_tasks.record").execute("lonely", taskid="lonely-1")
        assert info.value.acknowledged == 0
        assert app.store.run(app.store.calls.status("default", "lonely-1")) == "waiting"
    finally:
        app.set_durable(0)
        app.client.close()


def test_durable_through_sentinel(sentinel: SentinelSetup, sentinel_url: str) -> None:
    app = rpqueue.default_app()
    app.set_durable(1, timeout=2.0)
    t = cluster_tasks.record.execute("via-sentinel")
    k = app.keys.queue("default")
    assert _replica_has(sentinel, sentinel.current_primary(), k.msg, t.taskid)
    app.set_durable(2, timeout=0.1)
    with pytest.raises(NotDurable):
        cluster_tasks.record.execute("too-many")


def test_keys_hash_tag_sanity() -> None:
    """Queue keys differ only after the tag, so one queue is one slot."""
    keys = rpqueue.default_app().keys.queue("some{odd}name")
    assert len({key_slot(k.encode()) for k in (keys.ready, keys.msg, keys.result("x"))}) == 1
