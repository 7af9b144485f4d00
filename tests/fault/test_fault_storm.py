"""Figures 1 and 2: a SIGKILL storm on the workers.

20,000 tasks are queued at a steady rate over ~55 s while 4 worker
processes (4 threads each) run them; every 2 s for 60 s one worker,
chosen at random, is SIGKILLed and another started in its place, as a
process manager would. Redis and the ledger are not touched.

"In flight at a kill" is measured right after each kill: the tasks whose
lease the killed worker still held and that it had started (the ledger
names the last worker that started each task). Those, and only those,
may run twice (vis_timeout tasks) or never finish (0/1 tasks).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fault_tasks
import pytest
import redis
from faultlib import Ledger, Producer, WorkerPool, drained, lease_ids, missing, queue_state, report, use

pytestmark = pytest.mark.fault

TASKS = 20_000
STORM = 60.0
EVERY = 2.0
FEED = 55.0  # seconds over which the tasks are queued
DRAIN = 30.0


@dataclass
class Storm:
    producer: Producer
    pool: WorkerPool
    kills: int
    held: int  # started tasks whose lease a killed worker held, summed over kills
    held_ids: set[str]
    killed_pids: set[int]
    last_kill: float  # monotonic


def run_storm(url: str, pools: Callable[..., WorkerPool], ledger: Ledger, task: Any) -> Storm:
    use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    pool = pools(url, size=4, threads=4, work=0.005)
    producer = Producer(task, TASKS, rate=TASKS / FEED)
    rng = random.Random(20_000)
    start = time.monotonic()
    producer.start()
    held = 0
    held_ids: set[str] = set()
    killed: set[int] = set()
    kills = int(STORM / EVERY)
    for k in range(1, kills + 1):
        time.sleep(max(0.0, start + k * EVERY - time.monotonic()))
        victim = pool.kill_and_replace(rng)
        killed.add(victim.pid)
        # Let the ledger receive whatever the victim sent just before it died;
        # its leases last >= 1.8 s more, so none can move meanwhile.
        time.sleep(0.2)
        ids = lease_ids(client)
        mine = [i for i, pid in zip(ids, ledger.last_starter(ids)) if pid == victim.pid]
        held += len(mine)
        held_ids.update(mine)
    last_kill = time.monotonic()
    producer.join_checked(30)
    client.close()
    return Storm(producer, pool, kills, held, held_ids, killed, last_kill)


def ledger_in_flight(events: list[Any], killed: set[int]) -> int:
    """Runs a killed worker started and never ended (the ledger's own view)."""
    open_runs: set[tuple[str, int]] = set()
    for e in events:
        if e.pid in killed:
            if e.kind == "S":
                open_runs.add((e.id, e.pid))
            else:
                open_runs.discard((e.id, e.pid))
    return len(open_runs)


def test_sigkill_storm_at_least_once(redis_url: str, pools: Callable[..., WorkerPool],
                                     ledger: Ledger) -> None:
    storm = run_storm(redis_url, pools, ledger, fault_tasks.work)
    acked = storm.producer.acked
    assert len(acked) == TASKS
    client = redis.Redis.from_url(redis_url, socket_timeout=30)

    def finished() -> bool:
        return drained(queue_state(client)) and not (set(acked) - ledger.tally().completed())

    done = False
    deadline = storm.last_kill + DRAIN
    while time.monotonic() < deadline:
        if finished():
            done = True
            break
        time.sleep(0.25)
    drain_s = time.monotonic() - storm.last_kill
    tally = ledger.tally()
    state = queue_state(client)
    lost = len(set(acked) - tally.completed())
    report("1 sigkill storm (vis_timeout=2, attempts=5)", tasks=len(acked), kills=storm.kills,
           lost=lost, duplicates=tally.duplicates, in_flight_at_kills=storm.held,
           started_not_ended_at_kills=ledger_in_flight(tally.events, storm.killed_pids),
           drained_after_last_kill_s=round(drain_s, 1), redelivered=state["stats"].get("retried", 0))
    assert done, (f"not drained {DRAIN}s after the last kill: {state}; "
                  f"{missing(acked, tally.completed())}")
    assert lost == 0, missing(acked, tally.completed())
    assert tally.duplicates <= storm.held, (
        f"{tally.duplicates} duplicate runs but only {storm.held} tasks in flight at the kills")
    # Every duplicate is a task that was in flight at a kill.
    dup_ids = {i for i, n in tally.starts.items() if n > 1}
    assert dup_ids <= storm.held_ids, sorted(dup_ids - storm.held_ids)[:10]
    assert state["stats"].get("dead", 0) == 0 and state["stats"].get("lost", 0) == 0, state
    assert storm.pool.unexpected_exits() == []
    client.close()


def test_sigkill_storm_zero_or_one(redis_url: str, pools: Callable[..., WorkerPool],
                                   ledger: Ledger) -> None:
    storm = run_storm(redis_url, pools, ledger, fault_tasks.work_once)
    acked = storm.producer.acked
    assert len(acked) == TASKS
    client = redis.Redis.from_url(redis_url, socket_timeout=30)

    # A 0/1 task a killed worker held keeps its lease (app.running_lease,
    # 300 s) and is never run again, so "drained" is: nothing waiting, and
    # no run for a while.
    last_count, quiet_since, drain_s = -1, time.monotonic(), None
    deadline = storm.last_kill + DRAIN
    while time.monotonic() < deadline:
        state = queue_state(client)
        count = ledger.count()
        now = time.monotonic()
        if count != last_count:
            last_count, quiet_since = count, now
        if not (state["ready"] or state["delayed"]) and now - quiet_since >= 2.0:
            drain_s = quiet_since - storm.last_kill
            break
        time.sleep(0.25)
    tally = ledger.tally()
    state = queue_state(client)
    orphans = lease_ids(client)
    lost = len(set(acked) - tally.executed())
    report("2 sigkill storm (0/1 tasks)", tasks=len(acked), kills=storm.kills, lost=lost,
           duplicates=tally.duplicates, in_flight_at_kills=len(orphans),
           started_not_ended_at_kills=ledger_in_flight(tally.events, storm.killed_pids),
           drained_after_last_kill_s=None if drain_s is None else round(max(drain_s, 0.0), 1))
    assert drain_s is not None, f"still busy {DRAIN}s after the last kill: {state}"
    assert tally.duplicates == 0, [i for i, n in tally.starts.items() if n > 1][:10]
    # What a killed worker held is all that may be missing: each orphaned
    # lease is one task in flight at a kill (started or just taken).
    assert lost <= len(orphans), f"{lost} lost, {len(orphans)} in flight at the kills"
    assert set(acked) - tally.executed() <= set(orphans)
    starters = ledger.last_starter(orphans)
    assert all(p is None or p in storm.killed_pids for p in starters)
    assert len(orphans) <= storm.kills * 4  # at most one lease per worker thread
    assert storm.pool.unexpected_exits() == []
    client.close()
