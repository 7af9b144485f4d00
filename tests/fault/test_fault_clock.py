"""Figure 7: workers whose wall clocks are 300 s behind and 300 s ahead.

Two workers run under Debian's faketime, one at -300 s and one at +300 s,
side by side on the same queue. Delayed tasks are queued by the test (true
clock) and by tasks running on each skewed worker. Every due time, lease
and wake-up is Redis server time, so each delayed task must start within
1 s of its due time, and no task (vis_timeout=10) may run twice.

``--exclude-monotonic`` skews the wall clock only, as a misset system
clock or a broken NTP does; the monotonic clock keeps running true. (It
also sidesteps libfaketime 0.9.10 hanging Python 3.11's timed waits on a
faked monotonic clock.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import fault_tasks
import pytest
import redis
from faultlib import Ledger, WorkerPool, drained, queue_state, report, use, wait_until

pytestmark = pytest.mark.fault

SKEWS = {"-300s": -300.0, "+300s": 300.0}
PROBES = 300
EARLY = 0.01  # Redis keeps due times in whole ms
LATE = 1.0


def faketime(skew: str) -> list[str]:
    return ["faketime", "--exclude-monotonic", "-f", skew]


def test_skewed_worker_clocks(redis_url: str, pools: Callable[..., WorkerPool],
                              ledger: Ledger) -> None:
    # The fault is really applied: the skewed clock is off by the skew.
    for skew, offset in SKEWS.items():
        seen = float(subprocess.run([*faketime(skew), sys.executable, "-c",
                                     "import time; print(time.time())"],
                                    capture_output=True, text=True, check=True).stdout)
        assert abs(seen - time.time() - offset) < 5, (skew, seen - time.time())

    use(redis_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    pool = pools(redis_url, size=0, threads=2, work=0)
    own_queue = {}
    for skew in SKEWS:
        own_queue[skew] = f"skew{skew}"
        pool.slots.append(pool.spawn(prefix=faketime(skew), queues=["default", own_queue[skew]]))
    # Both workers up and taking tasks; the ledger names their pids (faketime
    # runs python as its child, so the pid is not the one we started).
    warmups = {fault_tasks.good.execute(-1, _queue=queue).taskid: skew
               for skew, queue in own_queue.items()}
    wait_until(lambda: set(ledger.tally().executed()) >= set(warmups), timeout=30,
               message="both skewed workers to run a task")
    pids = {warmups[e.id]: e.pid for e in ledger.raw_events() if e.id in warmups}

    # Delayed tasks queued on the true clock ...
    due: dict[str, tuple[float, float]] = {}
    for n in range(PROBES):
        delay = 1.0 + (n % 9) * 0.25
        before = time.time()
        fault_tasks.probe.execute(n, delay=delay, taskid=f"probe-{n}")
        due[f"probe-{n}"] = (before + delay, time.time() + delay)
        if n % 30 == 29:
            time.sleep(0.3)  # spread the due times over a few seconds
    # ... and by each skewed worker.
    first = PROBES
    schedulers = {}
    for skew, queue in own_queue.items():
        sched = fault_tasks.schedule_probes.execute(first, 50, 1.5, _queue=queue)
        schedulers[sched.taskid] = (skew, range(first, first + 50))
        first += 50

    total = first
    wait_until(lambda: len(ledger.tally().executed() & {f"probe-{n}" for n in range(total)}) == total,
               timeout=60, interval=0.2, message=lambda: f"{total} probes to run")
    wait_until(lambda: drained(queue_state(client)), timeout=30)
    tally = ledger.tally()
    for e in tally.events:
        if e.id in schedulers and e.kind in "SE":
            skew, numbers = schedulers[e.id]
            assert e.pid == pids[skew]
    sched_times = {}
    for e in tally.events:
        if e.id in schedulers:
            sched_times.setdefault(e.id, []).append(e.t)
    for sid, (_, numbers) in schedulers.items():
        s_time, e_time = min(sched_times[sid]), max(sched_times[sid])
        for n in numbers:
            due[f"probe-{n}"] = (s_time + 1.5, e_time + 1.5)

    starts = tally.first_start()
    lateness = {i: starts[i] - due[i][1] for i in due}
    early = {i: due[i][0] - starts[i] for i in due if starts[i] < due[i][0] - EARLY}
    ran_by = {skew: sum(1 for e in tally.events if e.kind == "S" and e.id in due and e.pid == pid)
              for skew, pid in pids.items()}
    report("7 worker clocks -300 s / +300 s", delayed_tasks=len(due),
           worst_late_s=round(max(lateness.values()), 3), started_early=len(early),
           duplicates=tally.duplicates, run_by=ran_by)
    assert not early, sorted(early.items())[:5]
    assert max(lateness.values()) <= LATE, sorted(lateness.items(), key=lambda kv: -kv[1])[:5]
    assert tally.duplicates == 0
    assert all(ran_by.values()), ran_by  # both skewed workers took delayed tasks
    assert pool.unexpected_exits() == []
    client.close()
