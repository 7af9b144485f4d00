"""Failover on a real cluster: SIGKILL the primary that owns a busy queue.

Each test gets its own 6-node cluster (it breaks it) and a ledger on a
separate plain redis-server, so what ran is known exactly whatever the
cluster lost.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import cluster_tasks
from cluster_harness import Ledger, Workers, wait_until
from redis.exceptions import RedisError
from redis_cluster import RedisCluster6

import rpqueue
from rpqueue.errors import NotDurable

RESUME_BOUND = 5.0  # seconds from promotion to tasks completing again


class Producer:
    """Queues ``work`` tasks one by one until stopped, recording each outcome."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.returned: list[tuple[str, float]] = []  # (task id, when it returned)
        self.raised: list[tuple[str, BaseException]] = []
        self.raised_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def start(self) -> Producer:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._n += 1
            taskid = f"p{self._n}"
            try:
                cluster_tasks.work.execute(self._n, 0.005, _queue=self.queue, taskid=taskid)
            except (RedisError, NotDurable) as exc:
                self.raised.append((taskid, exc))
                self.raised_at.append(time.time())
                time.sleep(0.01)  # the cluster is down: do not spin
            else:
                self.returned.append((taskid, time.time()))
            time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the producer hung"


def test_primary_failover_under_load_with_durable_enqueue(
        own_cluster: RedisCluster6, workers: Workers, ledger: Ledger) -> None:
    cluster = own_cluster
    app = rpqueue.default_app()
    app.set_durable(1, timeout=1.0)
    queue = "busy"
    # Enough work (~8 s for 6 threads) that every worker still finds some
    # after the promotion, even one that was in its longest (5 s) backoff:
    # once the new primary has no replica, the producer's durable enqueues
    # each wait out their timeout and add little.
    backlog = cluster_tasks.work.execute_many([(-i, 0.05) for i in range(1000)], _queue=queue)
    pool = [workers.start(queue, threads=2, ready=False) for _ in range(3)]
    for w in pool:
        w.wait_ready()
    producer = Producer(queue).start()
    try:
        ledger.wait_for(50)
        victim = cluster.primary_for_key(app.keys.queue(queue).ready)
        replica = cluster.replica_of(victim)
        killed_at = time.time()
        victim.kill()
        cluster.wait_promoted(victim, replica)
        promoted_at = time.time()

        # Processing resumes: a task is taken from the new primary (nothing
        # can be taken while the slot has no primary).
        def started_after(t0: float) -> list[dict[str, Any]]:
            return [e for e in ledger.events("start") if e["t"] > t0]

        first = wait_until(lambda: started_after(promoted_at), timeout=RESUME_BOUND + 5,
                           message=lambda: f"a task to start after promotion\n{workers.logs()}")
        resumed = min(e["t"] for e in first) - promoted_at
        assert resumed <= RESUME_BOUND, f"resumed {resumed:.2f}s after promotion"
        # Every worker process is back at work, none exited.
        wait_until(lambda: {e["pid"] for e in started_after(promoted_at)} >= {w.pid for w in pool},
                   timeout=10, message=lambda: f"every worker working again\n{workers.logs()}")
        assert all(w.alive() for w in pool)

        # The new primary has no replica: durable enqueues cannot be
        # confirmed, and say so.
        wait_until(lambda: any(isinstance(exc, NotDurable) and t > promoted_at
                               for (_, exc), t in zip(producer.raised, producer.raised_at)),
                   timeout=10, message="NotDurable from the replica-less new primary")
        # With the dead primary back (it rejoins as the new primary's
        # replica), durable enqueues are confirmed again.
        victim.start()
        restarted_at = time.time()
        wait_until(lambda: any(t > restarted_at for _, t in producer.returned), timeout=20,
                   message="a durable execute() to return after the old primary rejoined")
    finally:
        producer.stop()

    def drained() -> bool:
        info = app.queue_info(queue)
        return info["waiting"] == 0 and info["running"] == 0 and info["delayed"] == 0

    wait_until(drained, timeout=30, message=lambda: f"queue drained: {app.queue_info(queue)}")
    assert all(w.alive() for w in pool)
    ran = {e["id"] for e in ledger.events("ran")}
    confirmed = [t.taskid for t in backlog] + [taskid for taskid, _ in producer.returned]
    lost = [taskid for taskid in confirmed if taskid not in ran
            and app.store.run(app.store.calls.status(queue, taskid)) == "done"]
    assert lost == [], f"{len(lost)} confirmed enqueues lost: {lost[:10]}"
    # Executes that could not be confirmed raised instead of returning.
    assert producer.raised, "the producer never noticed the outage"
    kinds = {type(exc).__name__ for _, exc in producer.raised}
    assert kinds <= {"NotDurable", "RedisUnreachable", "ConnectionError", "TimeoutError",
                     "ClusterDownError",
                     "TryAgainError", "SlotNotCoveredError"}, kinds
    unconfirmed_but_ran = sum(taskid in ran for taskid, _ in producer.raised)
    print(f"\nfailover: promotion {promoted_at - killed_at:.2f}s after SIGKILL, processing "
          f"resumed {resumed:.2f}s after promotion; {len(confirmed)} confirmed enqueues, "
          f"none lost; {len(producer.raised)} raised ({sorted(kinds)}), "
          f"{unconfirmed_but_ran} of those ran anyway")


def test_workers_survive_a_shard_outage_longer_than_the_client_retries(
        own_cluster: RedisCluster6, workers: Workers, ledger: Ledger) -> None:
    """Primary and replica of one shard die: every node answers CLUSTERDOWN
    for longer than redis-py's own retries last, so ClusterDownError reaches
    the worker. It must back off and carry on once the shard is back (it
    used to lose every worker thread: the process lived on, doing nothing)."""
    cluster = own_cluster
    app = rpqueue.default_app()
    qa, qb, qc = cluster.queue_names_on_distinct_primaries(3, prefix="outage")
    worker = workers.start(qa, qb, qc, threads=2)
    primary = cluster.primary_for_key(app.keys.queue(qc).ready)
    replica = cluster.replica_of(primary)
    primary.kill()
    replica.kill()
    # The outage reaches the worker as CLUSTERDOWN or, before the cluster
    # marks the slots down, as a refused connection: either way it backs off.
    wait_until(lambda: "cluster is down" in worker.log().lower()
               or "redis unreachable" in worker.log().lower(), timeout=20,
               message=lambda: f"the worker to meet CLUSTERDOWN\n{worker.log()}")
    time.sleep(1.0)
    primary.start()
    replica.start()
    cluster.wait_ok()
    for q in (qa, qb, qc):
        cluster_tasks.record.execute(q, _queue=q)
    ledger.wait_for(3, timeout=15)
    assert worker.alive()
    assert "Exception in thread" not in worker.log(), worker.log()


def test_failover_of_an_idle_queue_is_noticed_by_blocked_workers(
        own_cluster: RedisCluster6, workers: Workers, ledger: Ledger) -> None:
    """Idle workers block on the wake list of a queue whose primary dies;
    after the promotion a new task there starts within the bound."""
    cluster = own_cluster
    app = rpqueue.default_app()
    queue = "idle-failover"
    pool = [workers.start(queue, "other", ready=False) for _ in range(2)]
    for w in pool:
        w.wait_ready()
    victim = cluster.primary_for_key(app.keys.queue(queue).ready)
    replica = cluster.replica_of(victim)
    victim.kill()
    cluster.wait_promoted(victim, replica)
    promoted_at = time.time()

    def queued() -> bool:
        try:
            cluster_tasks.record.execute("after", _queue=queue)
        except RedisError:
            return False
        return True

    wait_until(queued, timeout=10, interval=0.05, message="an execute() after promotion")
    entry = ledger.wait_for(1, tag="after", timeout=RESUME_BOUND + 5)[0]
    assert entry["t"] - promoted_at <= RESUME_BOUND
    assert all(w.alive() for w in pool)


def test_worker_started_during_a_shard_outage_waits_for_the_cluster(
        own_cluster: RedisCluster6, workers: Workers, ledger: Ledger) -> None:
    """A worker started while every node answers CLUSTERDOWN (a shard has no
    primary) waits for the cluster, as it waits for an unreachable server."""
    cluster = own_cluster
    app = rpqueue.default_app()
    # The shard that dies must not hold the task registry key (a worker's
    # first write): there it would be a plain connection error.
    registry_port = cluster.primary_for_key(app.keys.tasks).port
    names = cluster.queue_names_on_distinct_primaries(3, prefix="startup")
    victim = next(q for q in names
                  if cluster.primary_for_key(app.keys.queue(q).ready).port != registry_port)
    qa = next(q for q in names if q != victim)
    primary = cluster.primary_for_key(app.keys.queue(victim).ready)
    replica = cluster.replica_of(primary)
    primary.kill()
    replica.kill()
    wait_until(lambda: not cluster.state_ok(), timeout=10, message="cluster_state:fail")
    worker = workers.start(qa, ready=False)
    # Longer than redis-py's own CLUSTERDOWN retries (about 3 s).
    time.sleep(5)
    assert worker.alive(), worker.log()
    primary.start()
    replica.start()
    cluster.wait_ok()
    cluster_tasks.record.execute("late start", _queue=qa)
    ledger.wait_for(1, tag="late start", timeout=15)
