"""Lease semantics with real workers: fencing, extend(), 0/1 never twice, dead letters.

The task module is tests/fault/taskmods/lease_tasks.py (shared with the
fault-injection suite); the workers find it through PYTHONPATH. The seed
README's own vis_timeout examples, whose timings (5 s leases, 6 s sleeps)
are too slow for this file, run verbatim in tests/fault/test_fault_readme.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import lease_tasks
import pytest
from harness import Ledger, Workers, wait_until
from support.paths import FAULT_TASKMODS

import rpqueue
from rpqueue import admin

ENV = {"PYTHONPATH": str(FAULT_TASKMODS), "LEASE_TASKS_RUNNING_LEASE": "3"}


def start(workers: Workers, threads: int = 2) -> Any:
    return workers.start("lease_tasks", env=ENV, args=[f"--threads={threads}"])


def stats(app: rpqueue.RPQueue, queue: str = "default") -> dict[str, int]:
    raw = app.client.hgetall(app.keys.queue(queue).stats)
    return {k.decode(): int(v) for k, v in raw.items()}


def cli(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that the table shows whole ids and names.
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-m", "rpqueue", "dead", *args, "--url", redis_url],
                          capture_output=True, text=True, timeout=30, env=env)


# -- fencing ------------------------------------------------------------------------


def test_late_completion_is_fenced(app: rpqueue.RPQueue, workers: Workers,
                                   ledger: Ledger) -> None:
    worker = start(workers)
    et = lease_tasks.fenced.execute("f")
    # The first delivery holds past its 1 s lease; the second runs and finishes.
    runs = ledger.wait_for(2, "started", tag="f")
    assert [r["attempts"] for r in runs] == [3, 2]
    wait_until(lambda: et.status == "done")
    assert et.result == "second"
    # Now the first returns: its lease is gone, so it can neither extend nor finish.
    ledger.release("f:first")
    (late,) = ledger.wait_for(1, "first_returns", tag="f")
    assert late["extended"] is False
    worker.wait_log("finished after its lease was lost")
    assert et.result == "second"
    assert stats(app)["done"] == 1
    assert ledger.events("started", tag="f") == runs


# -- extend() and the default of no renewal ------------------------------------------


def test_extend_keeps_the_lease(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    start(workers)
    lease_tasks.extends.execute("x", 2.5)
    ledger.wait_for(1, "finished", tag="x")
    time.sleep(1.2)  # a lost lease would have been handed on by now
    assert len(ledger.events("started", tag="x")) == 1
    assert ledger.events("extend_refused", tag="x") == []
    assert stats(app).get("retried", 0) == 0
    assert stats(app)["done"] == 1


def test_no_automatic_renewal(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    start(workers)
    lease_tasks.no_extend.execute("n", 1.6)
    # Not extended: the lease runs out after 1 s and the task runs again.
    runs = ledger.wait_for(2, "started", tag="n")
    assert [r["attempts"] for r in runs] == [2, 1]
    assert stats(app)["retried"] >= 1


# -- 0/1 tasks --------------------------------------------------------------------------


def kill_while_running(task: str, app: rpqueue.RPQueue, workers: Workers,
                       ledger: Ledger) -> rpqueue.EnqueuedTask:
    """Run a 0/1 task, SIGKILL its worker mid-run, start another worker and
    wait for the vanished lease (3 s here) to be dealt with."""
    first = start(workers)
    et: rpqueue.EnqueuedTask = getattr(lease_tasks, task).execute("z")
    ledger.wait_for(1, "started", tag="z")
    first.signal(signal.SIGKILL)
    first.wait_exit()
    start(workers)
    key = "dead" if task == "once_dead" else "lost"
    wait_until(lambda: stats(app).get(key, 0) == 1, timeout=15)
    time.sleep(0.5)
    return et


@pytest.mark.parametrize("task", ["once", "once_dead"])
def test_zero_or_one_task_never_runs_twice(task: str, app: rpqueue.RPQueue, workers: Workers,
                                           ledger: Ledger) -> None:
    et = kill_while_running(task, app, workers, ledger)
    # Dropped (or buried), never run again.
    assert len(ledger.events("started", tag="z")) == 1
    assert et.status == "done"  # gone from the queue
    if task == "once_dead":
        (record,) = admin.dead_records(app.ctx)
        assert record["id"] == et.taskid
        assert record["reason"] == "worker lost while running"


def test_vanished_zero_or_one_task_counts_its_attempt(app: rpqueue.RPQueue, workers: Workers,
                                                      ledger: Ledger) -> None:
    kill_while_running("once_dead", app, workers, ledger)
    (record,) = admin.dead_records(app.ctx)
    assert record["attempts_used"] == 1


# -- dead letters: records, requeue, purge -----------------------------------------------


def kill_all(app: rpqueue.RPQueue, ledger: Ledger, workers: Workers) -> dict[str, Any]:
    """Three calls that fail until healed; returns their handles once all are dead."""
    start(workers)
    began = time.time()
    handles = {
        "a": lease_tasks.flaky.execute("a"),
        "b": lease_tasks.flaky.execute("b"),
        "c": lease_tasks.flaky_once.execute("c"),
    }
    wait_until(lambda: len(admin.dead_records(app.ctx)) == 3)
    return {"handles": handles, "began": began}


def test_dead_letter_records(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    run = kill_all(app, ledger, workers)
    handles = run["handles"]
    records = {r["id"]: r for r in admin.dead_records(app.ctx)}
    assert set(records) == {h.taskid for h in handles.values()}
    for tag, h in handles.items():
        r = records[h.taskid]
        assert r["queue"] == "default"
        assert r["name"] == h.name
        assert r["args"] == [tag]
        assert r["reason"] == "task raised an exception"
        assert run["began"] - 1 <= r["time"] <= time.time() + 1
    a, c = records[handles["a"].taskid], records[handles["c"].taskid]
    assert a["attempts_used"] == 2 and a["error"] == "ValueError: flaky a is broken"
    assert c["attempts_used"] == 1 and c["error"] == "KeyError: 'c'"
    # Each ran exactly its attempts.
    assert [len(ledger.events("ran", tag=t)) for t in "abc"] == [2, 2, 1]
    # The module-level reader agrees.
    assert {r["id"] for r in rpqueue.read_deadletter()} == set(records)


@pytest.mark.xfail(not hasattr(rpqueue, "Data"), strict=True, reason="Data not yet available")
def test_deadletter_queue_through_data(app: rpqueue.RPQueue, workers: Workers,
                                       ledger: Ledger) -> None:
    data = rpqueue.Data  # fails at once while Data is not there
    run = kill_all(app, ledger, workers)
    got = data(rpqueue.DEADLETTER_QUEUE, is_tasks=True).get_data(items=5)
    assert set(got) == {h.taskid for h in run["handles"].values()}
    for tag, h in run["handles"].items():
        taskid, name, args, kwargs, when = got[h.taskid]
        assert (taskid, name, args) == (h.taskid, h.name, [tag])
        assert isinstance(kwargs, dict)
        assert run["began"] - 1 <= when <= time.time() + 1


def test_requeue_one_by_api(app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    run = kill_all(app, ledger, workers)
    a = run["handles"]["a"]
    app.client.set("test:healed:a", 1)
    (record,) = [r for r in admin.dead_records(app.ctx) if r["id"] == a.taskid]
    assert admin.requeue_dead(app.ctx, [record]) == 1
    wait_until(lambda: a.status == "done" and len(ledger.events("ran", tag="a")) == 3)
    # Requeued with fresh attempts; the others stay dead.
    assert ledger.events("ran", tag="a")[-1]["attempts"] == 2
    assert {r["id"] for r in admin.dead_records(app.ctx)} == {
        run["handles"]["b"].taskid, run["handles"]["c"].taskid}


def test_requeue_by_name_and_all_by_cli(redis_url: str, app: rpqueue.RPQueue,
                                        workers: Workers, ledger: Ledger) -> None:
    run = kill_all(app, ledger, workers)
    for tag in "abc":
        app.client.set(f"test:healed:{tag}", 1)
    listed = cli(redis_url, "list")
    assert listed.returncode == 0, listed.stderr
    for h in run["handles"].values():
        assert h.taskid in listed.stdout
    by_name = cli(redis_url, "requeue", "--name", "lease_tasks.flaky_once")
    assert by_name.returncode == 0, by_name.stderr
    assert "requeued 1 " in by_name.stdout
    wait_until(lambda: run["handles"]["c"].status == "done"
               and len(ledger.events("ran", tag="c")) == 2)
    assert len(admin.dead_records(app.ctx)) == 2
    everything = cli(redis_url, "requeue")
    assert "requeued 2 " in everything.stdout, everything.stdout + everything.stderr
    wait_until(lambda: all(h.status == "done" for h in run["handles"].values()))
    assert admin.dead_records(app.ctx) == []


def test_purge_by_api_and_cli(redis_url: str, app: rpqueue.RPQueue, workers: Workers,
                              ledger: Ledger) -> None:
    run = kill_all(app, ledger, workers)
    a = run["handles"]["a"]
    (record,) = [r for r in admin.dead_records(app.ctx) if r["id"] == a.taskid]
    assert admin.delete_dead(app.ctx, [record]) == 1
    assert a.taskid not in {r["id"] for r in admin.dead_records(app.ctx)}
    purged = cli(redis_url, "purge", "--yes")  # no filter: every dead letter, so --yes
    assert purged.returncode == 0 and "purged 2 " in purged.stdout, purged.stdout + purged.stderr
    assert admin.dead_records(app.ctx) == []
    k = app.keys.queue("default")
    assert app.client.zcard(k.dead) == 0 and app.client.hlen(k.deadmsg) == 0


def test_requeue_one_by_cli(redis_url: str, app: rpqueue.RPQueue, workers: Workers,
                            ledger: Ledger) -> None:
    run = kill_all(app, ledger, workers)
    b = run["handles"]["b"]
    app.client.set("test:healed:b", 1)
    out = cli(redis_url, "requeue", "--id", b.taskid)
    assert out.returncode == 0, out.stderr
    wait_until(lambda: b.status == "done")
    assert len(admin.dead_records(app.ctx)) == 2


def test_cli_list_shows_the_record(redis_url: str, app: rpqueue.RPQueue, workers: Workers,
                                   ledger: Ledger) -> None:
    kill_all(app, ledger, workers)
    out = cli(redis_url, "list", "--name", "lease_tasks.flaky_once")
    assert out.returncode == 0, out.stderr
    assert "lease_tasks.flaky_once" in out.stdout and "KeyError" in out.stdout
    assert "lease_tasks.flaky " not in out.stdout
