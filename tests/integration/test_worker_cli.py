"""``python -m rpqueue.run`` options and ``execute_tasks(...)``, with real worker processes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from typing import Any

import basic
import pytest
from harness import TASKMODS, Ledger, Workers, blocked_clients, wait_until

import rpqueue


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpqueue.run", *args], cwd=TASKMODS,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_missing_module_is_a_clear_error(redis_url: str) -> None:
    done = _run_cli("--url", redis_url)
    assert done.returncode != 0
    assert "--module" in done.stderr


def test_unimportable_module_is_a_clear_error(redis_url: str) -> None:
    done = _run_cli("--module=no_such_module_here", "--url", redis_url)
    assert done.returncode != 0
    assert "no_such_module_here" in done.stderr


@pytest.mark.parametrize("args", [["--threads", "0"], ["--processes", "0"],
                                  ["--loglevel", "CHATTY"], ["--threads", "many"]])
def test_bad_option_values_are_refused(redis_url: str, args: list[str]) -> None:
    done = _run_cli("--module=basic", "--url", redis_url, *args)
    assert done.returncode != 0
    assert done.stderr


def test_threads_run_tasks_concurrently(app: rpqueue.RPQueue, workers: Workers,
                                        ledger: Ledger) -> None:
    workers.start("basic", "default", args=["--threads", "3"])
    for i in range(3):
        basic.gate.execute(f"t{i}")
    started = ledger.wait_for(3, "started")
    assert len({e["pid"] for e in started}) == 1
    assert ledger.events("finished") == []
    for i in range(3):
        ledger.release(f"t{i}")
    ledger.wait_for(3, "finished")


def test_processes_run_tasks_in_separate_processes(app: rpqueue.RPQueue, workers: Workers,
                                                  ledger: Ledger) -> None:
    import signal

    worker = workers.start("basic", "default", args=["--processes", "2"])
    worker.wait_log("serving", count=2)
    for i in range(2):
        basic.gate.execute(f"p{i}")
    started = ledger.wait_for(2, "started")
    pids = {e["pid"] for e in started}
    assert len(pids) == 2 and worker.pid not in pids
    for i in range(2):
        ledger.release(f"p{i}")
    ledger.wait_for(2, "finished")
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    for pid in pids:
        wait_until(lambda pid=pid: not _alive(pid), message=f"child {pid} exited")


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_each_task_runs_exactly_once_across_processes_and_threads(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    n = 300
    two = workers.start("basic", "default", "other", args=["--processes", "2", "--threads", "3"],
                        ready=False)
    workers.start("basic", "other", "default", args=["--threads", "2"])
    two.wait_log("serving", count=2)
    queues = ["default" if i % 2 else "other" for i in range(n)]
    ids = [basic.record.execute(i, _queue=q).taskid for i, q in enumerate(queues)]
    def missing() -> str:
        ran = {r["id"] for r in ledger.events("ran")}
        lost = [(t, rpqueue.default_app().store.run(rpqueue.default_app().store.calls.status(q, t)))
                for t, q in zip(ids, queues) if t not in ran]
        return f"not run (id, status): {lost[:10]}; queues: {rpqueue.queue_sizes()}"

    wait_until(lambda: len(ledger.events("ran")) >= n, timeout=20, message=missing)
    runs = ledger.events("ran")
    wait_until(lambda: sum(size for _, size, _ in rpqueue.queue_sizes()) == 0,
               message="queues empty")
    counts = Counter(r["id"] for r in ledger.events("ran"))
    assert len(runs) == n
    assert set(counts) == set(ids)
    assert set(counts.values()) == {1}
    print("tasks per process:", Counter(r["pid"] for r in runs))


def test_loglevel_warning_hides_info(app: rpqueue.RPQueue, workers: Workers,
                                     ledger: Ledger) -> None:
    worker = workers.start("basic", "default", loglevel="WARNING", ready=False)
    basic.record.execute("quiet")
    basic.boom.execute("loud failure")
    ledger.wait_for(2, "ran")
    worker.wait_log("loud failure")
    assert "serving" not in worker.stderr()
    assert " INFO " not in worker.stderr()


def test_successlevel_controls_done_lines(app: rpqueue.RPQueue, workers: Workers,
                                          ledger: Ledger) -> None:
    default = workers.start("basic", "q-default")
    info = workers.start("basic", "q-info", args=["--successlevel", "INFO"])
    debug = workers.start("basic", "q-debug", loglevel="DEBUG")
    for q in ("q-default", "q-info", "q-debug"):
        basic.record.execute(q, _queue=q)
    ledger.wait_for(3, "ran")
    info.wait_log("done in")
    debug.wait_log("done in")
    assert "INFO" in next(line for line in info.stderr().splitlines() if "done in" in line)
    # Give the default worker the same chance to log, then check it did not.
    marker = basic.record.execute("marker", _queue="q-default")
    ledger.wait_for(1, "ran", tag="marker")
    wait_until(lambda: marker.status == "done", message="marker done")
    default.signal(__import__("signal").SIGTERM)
    assert default.wait_exit() == 0
    assert "done in" not in default.stderr()


def test_failing_task_is_logged_with_traceback_and_worker_goes_on(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    worker = workers.start("basic", "default")
    bad = basic.boom.execute("kaboom-123")
    good = basic.add.execute(2, 2)
    wait_until(lambda: good.result == 4, message="next task ran")
    err = worker.wait_log("kaboom-123")
    assert "Traceback (most recent call last)" in err
    assert "ValueError: kaboom-123" in err
    assert "basic.boom" in err
    assert bad.status == "done"
    assert worker.alive()


@pytest.mark.parametrize("processes", [1, 2])
def test_execute_tasks_function(app: rpqueue.RPQueue, redis_url: str, workers: Workers,
                                ledger: Ledger, processes: int) -> None:
    import signal

    worker = workers.python("execute_tasks_worker.py", redis_url, "2", str(processes),
                            "high", "default")
    worker.wait_log("serving", count=processes)
    slots = 2 * processes  # threads_per_process=2
    for i in range(slots):
        basic.gate.execute(f"e{i}")
    started = ledger.wait_for(slots, "started")
    assert len({e["pid"] for e in started}) == processes
    for i in range(slots):
        ledger.release(f"e{i}")
    ledger.wait_for(slots, "finished")
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0


def test_short_socket_timeout_does_not_break_idle_waiting(app: rpqueue.RPQueue, rcli: Any,
                                                         workers: Workers,
                                                         ledger: Ledger) -> None:
    import time

    worker = workers.start("basic", "default", args=["--timeout", "0.5"])
    wait_until(lambda: blocked_clients(rcli) >= 1, message="idle")
    # Idle across a few of the worker's 1 s wake-ups (or until it complains).
    deadline = time.monotonic() + 2.5
    wait_until(lambda: time.monotonic() >= deadline or "unreachable" in worker.stderr(),
               message="idle window")
    assert "unreachable" not in worker.stderr()
    started = time.monotonic()
    basic.record.execute("after-idle")
    ledger.wait_for(1, "ran", tag="after-idle", timeout=5)
    took = time.monotonic() - started
    assert took < 0.5, f"an idle worker took {took:.1f}s to start a task"
