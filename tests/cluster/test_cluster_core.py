"""Every core feature on a real 6-node Redis Cluster, with real worker processes.

The producer side is this process (the default app, pointed at the cluster
by a ``redis+cluster://`` URL); workers are ``python -m rpqueue.run --url
redis+cluster://...`` subprocesses. Queue names are chosen so that their
hash tags land on different primaries: nothing here passes by having every
key on one node.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import cluster_periodic
import cluster_tasks
import pytest
from cluster_harness import Ledger, Workers, monitor_commands, wait_until
from redis.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis_cluster import RedisCluster6

import rpqueue
from rpqueue.admin import dead_records, requeue_dead
from rpqueue.data import Data


def _spread(cluster: RedisCluster6, count: int = 3, prefix: str = "shard") -> list[str]:
    names = cluster.queue_names_on_distinct_primaries(count, prefix=prefix)
    app = rpqueue.default_app()
    owners = {cluster.primary_for_key(app.keys.queue(q).ready).port for q in names}
    assert len(owners) == count, "queue names must map to distinct primaries"
    return names


def _ran(ledger: Ledger) -> list[Any]:
    return [e["tag"] for e in ledger.events("ran")]


# -- layout ------------------------------------------------------------------


def test_each_queue_lives_on_the_primary_owning_its_tag(cluster: RedisCluster6,
                                                        cluster_url: str) -> None:
    app = rpqueue.default_app()
    assert app.cluster
    queues = _spread(cluster)
    for q in queues:
        cluster_tasks.record.execute(q, _queue=q)
        cluster_tasks.record.execute(q, _queue=q, delay=60)
    for q in queues:
        k = app.keys.queue(q)
        slots = {key_slot(key.encode()) for key in (k.ready, k.msg, k.delayed, k.wake, k.stats)}
        assert len(slots) == 1, f"keys of queue {q} span slots {slots}"
        slot = slots.pop()
        owner = cluster.primary_for_key(k.ready)
        c = owner.client()
        try:
            assert c.llen(k.ready) == 1 and c.zcard(k.delayed) == 1 and c.hlen(k.msg) == 2
            assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) >= 4
        finally:
            c.close()
        for other in cluster.primaries():
            if other.port != owner.port:
                c = other.client()
                try:
                    assert c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
                finally:
                    c.close()


# -- tasks -------------------------------------------------------------------


def test_execute_wait_result(cluster_url: str, workers: Workers, ledger: Ledger) -> None:
    workers.start()
    t = cluster_tasks.add.execute(2, 3)
    assert t.wait(15)
    wait_until(lambda: t.status == "done", message="add() done")
    assert t.result == 5
    assert rpqueue.result(t.taskid) == 5
    assert ledger.wait_for(1, tag="add")


def test_delayed_task_runs_when_due(cluster_url: str, workers: Workers, ledger: Ledger) -> None:
    workers.start()
    start = time.time()
    t = cluster_tasks.record.execute("later", delay=1.0)
    assert t.status == "early"
    entry = ledger.wait_for(1, tag="later")[0]
    assert entry["t"] - start >= 0.9
    assert entry["t"] - start < 3.0, "a due task must start promptly, not at the next poll"


def test_strict_priority_across_shards(cluster: RedisCluster6, cluster_url: str,
                                       workers: Workers, ledger: Ledger) -> None:
    """One worker serving three queues on three primaries takes them in the
    order given, whatever order they were filled in."""
    high, mid, low = _spread(cluster)
    for q in (low, mid, high):
        for i in range(4):
            cluster_tasks.record.execute(f"{q}-{i}", _queue=q)
    workers.start(high, mid, low)
    ledger.wait_for(12)
    ran = [e["queue"] for e in ledger.events("ran")]
    assert ran == [high] * 4 + [mid] * 4 + [low] * 4


def test_priorities_of_all_queues_mode(cluster: RedisCluster6, cluster_url: str,
                                       workers: Workers, ledger: Ledger) -> None:
    """A worker serving every queue orders them by set_priority (lower first)."""
    a, b, c = _spread(cluster)
    for pri, q in enumerate((c, a, b)):
        rpqueue.set_priority(q, pri)
        for i in range(3):
            cluster_tasks.record.execute(f"{q}-{i}", _queue=q)
    workers.start()
    ledger.wait_for(9)
    assert [e["queue"] for e in ledger.events("ran")] == [c] * 3 + [a] * 3 + [b] * 3


def test_higher_priority_task_overtakes_a_backlog_on_another_shard(
        cluster: RedisCluster6, cluster_url: str, workers: Workers, ledger: Ledger) -> None:
    high, low = _spread(cluster, 2)
    for i in range(30):
        cluster_tasks.slow.execute(i, 0.05, _queue=low)
    workers.start(high, low)
    ledger.wait_for(3)
    before = len(_ran(ledger))
    cluster_tasks.record.execute("urgent", _queue=high)
    ledger.wait_for(1, tag="urgent")
    tags = _ran(ledger)
    # The one worker thread finishes the task it was running (maybe one more
    # it had taken as the urgent one arrived), then takes the urgent one.
    assert tags.index("urgent") <= before + 2, tags


def test_visibility_timeout_retries_then_dead_letters(
        cluster_url: str, workers: Workers, ledger: Ledger) -> None:
    workers.start(threads=3)
    t = cluster_tasks.vanish.execute("v")
    ledger.wait_for(3, tag="v")
    dead = wait_until(lambda: rpqueue.read_deadletter(), message="the task dead-lettered")
    assert [d["id"] for d in dead] == [t.taskid]
    assert dead[0]["attempts_used"] == 3
    time.sleep(0.5)
    assert len(ledger.events("ran", tag="v")) == 3, "no run after the last attempt"


def test_dead_letter_then_requeue(cluster_url: str, workers: Workers, ledger: Ledger) -> None:
    app = rpqueue.default_app()
    workers.start()
    t = cluster_tasks.fail_then_pass.execute("fp")
    ledger.wait_for(2, tag="fp")
    records = wait_until(lambda: dead_records(app.ctx), message="dead letter")
    assert records[0]["id"] == t.taskid and "not yet" in records[0]["error"]
    ledger.set_flag("pass:fp")
    assert requeue_dead(app.ctx, records) == 1
    ledger.wait_for(3, tag="fp")
    wait_until(lambda: t.status == "done", message="requeued task done")
    assert dead_records(app.ctx) == []


def test_periodic_task_runs_once_per_period(cluster_url: str, workers: Workers,
                                            ledger: Ledger) -> None:
    """Two workers, two schedulers: each period runs once."""
    for _ in range(2):
        workers.start(module="cluster_periodic")
    ticks = ledger.wait_for(4, "tick", timeout=10)
    times = sorted(e["t"] for e in ticks)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap > cluster_periodic.PERIOD * 0.5 for gap in gaps), gaps
    span = times[-1] - times[0]
    assert len(times) <= span / cluster_periodic.PERIOD + 1.5


def test_call_task_by_name_from_code_that_does_not_import_it(
        cluster_url: str, workers: Workers, ledger: Ledger) -> None:
    workers.start()
    remote = rpqueue.new_rpqueue("cluster-remote")
    remote.set_redis_url(cluster_url)
    try:
        assert "cluster_tasks.add" not in remote.registry
        wait_until(lambda: "cluster_tasks.add" in remote.known_tasks, message="registry")
        t = remote.call_task("cluster_tasks.add", None, 20, 22)
        wait_until(lambda: t.status == "done", message="remote call done")
        assert remote.result(t.taskid) == 42
    finally:
        remote.client.close()


# -- inspection ----------------------------------------------------------------


def test_inspection_over_shards(cluster: RedisCluster6, cluster_url: str, workers: Workers,
                                ledger: Ledger) -> None:
    app = rpqueue.default_app()
    queues = _spread(cluster)
    ids: dict[str, list[str]] = {}
    for n, q in enumerate(queues):
        ids[q] = [cluster_tasks.record.execute(f"{q}-{i}", _queue=q).taskid
                  for i in range(n + 1)]
        ids[q].append(cluster_tasks.record.execute(f"{q}-late", _queue=q, delay=120).taskid)
    sizes = {q: n for q, n, _ in rpqueue.queue_sizes()}
    assert sizes == {q: n + 2 for n, q in enumerate(queues)}
    last = queues[-1]
    page = rpqueue.get_page(last, 0)
    assert [p["id"] for p in page] == ids[last]
    assert [p["status"] for p in page] == ["waiting"] * 3 + ["delayed"]
    assert page[0]["name"] == "cluster_tasks.record"
    assert rpqueue.get_page(last, 1, per_page=2)[0]["id"] == ids[last][2]
    info = app.queue_info(last)
    assert (info["waiting"], info["delayed"]) == (3, 1)
    assert rpqueue.delete_item(last, ids[last][0])
    assert rpqueue.clear_queue(queues[0]) == 2
    assert rpqueue.clear_queue(queues[1], delete=True) == 3
    assert queues[1] not in rpqueue.known_queues()
    # flush_tasks: everything queued now, the delayed one forced due, runs.
    workers.start(*queues)
    done, started, waiting = rpqueue.flush_tasks(complete=True, force_delayed=True, timeout=15)
    # The worker may finish waiting tasks before flush_tasks lists them;
    # the delayed one is certainly listed.
    assert ids[last][-1] in done and set(done) <= set(ids[last][1:])
    assert not started and not waiting
    ledger.wait_for(3)
    assert sorted(_ran(ledger)) == sorted([f"{last}-1", f"{last}-2", f"{last}-late"])


# -- data queues ---------------------------------------------------------------


def test_data_queue_put_get_refresh_done(cluster: RedisCluster6, cluster_url: str) -> None:
    qa, qb = _spread(cluster, 2, prefix="data")
    leased = Data(qa, vis_timeout=5, attempts=2, use_dead=True)
    put = leased.put_data([{"n": i} for i in range(5)])
    assert leased.currently_available() == (5, 0)
    got = leased.get_data_with_receipts(3)
    assert [v.item for v in got.values()] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert leased.currently_available() == (2, 3)
    first = next(iter(got))
    assert leased.refresh_data({first: got[first]}, vis_timeout=10) == [first]
    assert leased.done_data(got) == 3
    assert leased.get_data(5, vis_timeout=0) == {i: v for i, v in put.items()
                                                 if v["n"] >= 3}
    plain = Data(qb)
    plain.put_data(["x", "y"])
    assert list(plain.get_data(10).values()) == ["x", "y"]
    assert plain.get_data(1) == {}


def test_data_queue_dead_letters_across_shards(cluster: RedisCluster6,
                                              cluster_url: str) -> None:
    """Dead letters of data queues on three primaries, read and removed together."""
    app = rpqueue.default_app()
    names = _spread(cluster, 3, prefix="dead")
    queues = [Data(name, vis_timeout=0.05, attempts=2, use_dead=True) for name in names]
    for q in queues:
        q.put_data([q.queue])

    def all_dead() -> bool:
        # Lease whatever is readable again until every item ran out of
        # attempts and was dead-lettered.
        for q in queues:
            q.get_data(1)
        time.sleep(0.06)
        return len(Data.read_dead(app)) == 3

    wait_until(all_dead, timeout=10, message=lambda: f"3 dead items: {Data.read_dead(app)}")
    rows = rpqueue.read_deadletter(is_data=True)
    assert sorted(r["queue"] for r in rows) == sorted(names)
    assert sorted(r["item"] for r in rows) == sorted(names)
    assert Data(names[0], is_dead=True).delete_all() == 1
    everything = Data(rpqueue.DEADLETTER_QUEUE)
    assert sorted(row[2] for row in everything.get_data(10).values()) == sorted(names[1:])
    assert Data.read_dead(app) == []


def test_data_get_timeout_blocks_until_a_put(cluster_url: str) -> None:
    q = Data("data-block")
    got: list[Any] = []

    def reader() -> None:
        started = time.monotonic()
        got.append(q.get_data(1, get_timeout=10))
        got.append(time.monotonic() - started)

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    q.put_data(["hello"])
    t.join(15)
    assert list(got[0].values()) == ["hello"]
    assert got[1] < 2.0, "the put must wake the blocked reader at once"
    started = time.monotonic()
    assert q.get_data(1, get_timeout=0.5) == {}
    assert 0.45 <= time.monotonic() - started < 2.0


def test_data_get_timeout_longer_than_the_socket_timeout(cluster: RedisCluster6,
                                                         cluster_url: str) -> None:
    """A blocking read longer than the socket timeout is split into shorter
    waits, on a cluster client as on a single server."""
    app = rpqueue.default_app()
    app.set_redis_url(cluster.url, socket_timeout=1.0)
    q = Data("data-long-wait")
    started = time.monotonic()
    assert q.get_data(1, get_timeout=2.5) == {}
    assert time.monotonic() - started >= 2.4


# -- clients -------------------------------------------------------------------


def test_async_client(cluster: RedisCluster6, cluster_url: str, workers: Workers,
                      ledger: Ledger) -> None:
    first, other = _spread(cluster, 2, prefix="aq")
    workers.start(first, other, "default")

    async def main() -> tuple[Any, Any, Any, Any]:
        t = await cluster_tasks.add.aexecute(3, 4)
        m = await cluster_tasks.async_mul.aexecute(6, 7, _queue=other)
        later = await cluster_tasks.record.aexecute("never", delay=60)
        status = await later.astatus()
        cancelled = await later.acancel()
        return await t.await_result(15), await m.await_result(15), status, cancelled

    added, multiplied, status, cancelled = asyncio.run(main())
    assert (added, multiplied, status, cancelled) == (7, 42, "early", True)
    assert ledger.wait_for(1, tag="async_mul")


def test_cluster_client_passed_to_set_redis_connection(cluster: RedisCluster6,
                                                       cluster_url: str, workers: Workers,
                                                       ledger: Ledger) -> None:
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port)
                                         for n in cluster.nodes[:2]])
    rpqueue.set_redis_connection(client)
    app = rpqueue.default_app()
    assert app.cluster
    assert app.describe_connection().startswith("redis+cluster://")
    workers.start()
    t = cluster_tasks.add.execute(1, 1)
    wait_until(lambda: t.status == "done", message="task done")
    assert t.result == 2

    async def main() -> Any:
        et = await cluster_tasks.add.aexecute(2, 2)
        return await et.await_result(15)

    assert asyncio.run(main()) == 4
    q = Data("passed-client")
    q.put_data([1, 2])
    assert sorted(q.get_data(2).values()) == [1, 2]


# -- idle --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["three-queues", "all-queues"])
def test_idle_worker_on_three_shards_does_not_busy_poll(
        cluster: RedisCluster6, cluster_url: str, workers: Workers, ledger: Ledger,
        mode: str) -> None:
    queues = _spread(cluster, prefix="idle")
    for q in queues:
        rpqueue.set_priority(q, 1)
    worker = workers.start(*(queues if mode == "three-queues" else ()))
    primaries = cluster.primaries()
    clients = [p.client(socket_timeout=30) for p in primaries]
    try:
        def blocked() -> bool:
            return all(any(c.get("cmd") == "blpop" for c in cl.client_list()) for cl in clients)

        wait_until(blocked, message="the worker blocked on every shard")
        time.sleep(1.0)  # past start-up (registry, first heartbeat)
        before = cluster.commandstats(primaries)
        window = 4.0  # long enough to average out the 2 s heartbeat and 5 s refresh
        sent = monitor_commands(clients, window)
        after = cluster.commandstats(primaries)
    finally:
        for cl in clients:
            cl.close()
    ours = {"info", "client|list", "monitor", "echo", "client"}
    sent = [c for c in sent if c["command"].split()[0].strip('"').lower() not in ours]
    rate = len(sent) / window
    kinds = sorted({c["command"].split()[0].strip('"').upper() for c in sent})
    assert rate <= 10, f"{rate:.1f} commands/s while idle: {kinds}"
    # INFO commandstats counts what scripts ran too: still no polling.
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    script_calls = calls.get("evalsha", 0) + calls.get("eval", 0)
    assert script_calls / (window + 1) <= 6, calls
    print(f"\nidle worker ({mode}): {rate:.1f} commands/s ({kinds}); commandstats {calls}")
    # Asleep, yet a task on any shard starts at once.
    for q in queues:
        started = time.time()
        cluster_tasks.record.execute(q, _queue=q)
        entry = ledger.wait_for(1, tag=q)[0]
        assert entry["t"] - started < 0.5, f"task on {q} waited {entry['t'] - started:.2f}s"
    assert worker.alive()


def test_queue_policies_on_shards(cluster: RedisCluster6, cluster_url: str, workers: Workers,
                                  ledger: Ledger) -> None:
    """Per-message priority, unique tasks, bounds and aging on queues of distinct
    primaries: every policy key shares its queue's slot."""
    a, b = _spread(cluster, 2, prefix="policy")
    app = rpqueue.default_app()
    for q in (a, b):
        k = app.keys.queue(q)
        assert len({key_slot(x.encode()) for x in (k.ready, k.prio, k.conf, k.uniq)}) == 1
    rpqueue.set_queue_limit(a, 3)
    for tag, pri in (("p5", 5), ("p0", 0), ("m2", -2)):
        cluster_tasks.record.execute(tag, _queue=a, priority=pri)
    with pytest.raises(rpqueue.QueueFull):
        cluster_tasks.record.execute("over", _queue=a)
    first = cluster_tasks.record.execute("u", _queue=b, unique_for=60)
    assert cluster_tasks.record.execute("u", _queue=b, unique_for=60).taskid == first.taskid
    rpqueue.set_scheduling("aging", age=30)
    try:
        workers.start(a, b)
        ledger.wait_for(4)
        assert _ran(ledger) == ["m2", "p0", "p5", "u"]
    finally:
        rpqueue.set_scheduling("strict")
