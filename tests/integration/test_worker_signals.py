"""SIGTERM, SIGINT and SIGUSR1: stop taking tasks, let running ones finish for up to
--wait, exit 0."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import basic
import pytest
import shutdown_tasks
from harness import DelayProxy, Ledger, Workers, blocked_clients, wait_until

import rpqueue
from rpqueue import EnqueuedTask

SIGNALS = [pytest.param(signal.SIGTERM, id="SIGTERM"), pytest.param(signal.SIGINT, id="SIGINT"),
           pytest.param(signal.SIGUSR1, id="SIGUSR1")]


@pytest.mark.parametrize("sig", SIGNALS)
def test_idle_worker_exits_0(app: rpqueue.RPQueue, workers: Workers, sig: int) -> None:
    worker = workers.start("basic", "default")
    worker.signal(sig)
    assert worker.wait_exit() == 0
    assert "Traceback" not in worker.stderr()


def _not_taken_after_stop(et: EnqueuedTask, ledger: Ledger, rcli: Any) -> None:
    """``et`` (delayed) became due after the stop signal: nobody may take it.

    A worker still taking tasks would wake for it at its due time (idle
    workers sleep until the next due time), so a short margin past that
    time decides.
    """
    [item] = [p for p in rpqueue.get_page(et.queue, 0) if p["id"] == et.taskid]
    due = item["due"]

    def redis_now() -> float:
        secs, micros = rcli.time()
        return int(secs) + int(micros) / 1e6

    wait_until(lambda: redis_now() >= due + 0.5, message="past the due time")
    # Due and never run: still delayed, or handed back by a thread that took
    # it while waking just as the stop came.
    assert et.status in ("late", "waiting")
    assert ledger.events("ran", tag=et.args[0]) == []


@pytest.mark.parametrize("sig", SIGNALS)
def test_running_task_finishes_after_a_stop_signal(app: rpqueue.RPQueue, workers: Workers,
                                                   ledger: Ledger, sig: int) -> None:
    worker = workers.start("basic", "default", args=["--wait", "20", "--threads", "2"])
    basic.gate.execute("busy")
    ledger.wait_for(1, "started", tag="busy")
    worker.signal(sig)
    # Still running the task (well within --wait): the worker waits for it.
    queued_after = basic.record.execute("queued-after-signal", delay=30)
    assert worker.alive()
    ledger.release("busy")
    assert worker.wait_exit() == 0
    # The task ran to its end. (That its outcome is also written before the
    # worker leaves is test_task_completed_during_shutdown_is_recorded.)
    [finished] = ledger.events("finished", tag="busy")
    assert finished["released"] is True
    assert queued_after.status == "early"


def test_no_task_is_taken_after_a_stop_signal(app: rpqueue.RPQueue, workers: Workers,
                                              ledger: Ledger, rcli: Any) -> None:
    worker = workers.start("basic", "default", args=["--wait", "20", "--threads", "2"])
    basic.gate.execute("busy")
    ledger.wait_for(1, "started", tag="busy")
    wait_until(lambda: blocked_clients(rcli) >= 2, message="the other thread idle")
    # Due in 0.5 s: the enqueue wakes the idle thread, which goes back to
    # sleep until that due time.
    after = basic.record.execute("after-signal", delay=0.5)
    wake = app.keys.queue("default").wake
    wait_until(lambda: rcli.llen(wake) == 0 and blocked_clients(rcli) >= 2,
               message="idle thread asleep until the due time")
    worker.signal(signal.SIGTERM)
    try:
        _not_taken_after_stop(after, ledger, rcli)
    finally:
        ledger.release("busy")
    assert worker.wait_exit() == 0


def test_task_longer_than_wait_does_not_hold_the_exit(app: rpqueue.RPQueue, workers: Workers,
                                                      ledger: Ledger) -> None:
    worker = workers.start("basic", "default", args=["--wait", "0.5"])
    basic.gate.execute("stuck", 60)
    ledger.wait_for(1, "started", tag="stuck")
    signalled = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0
    took = time.monotonic() - signalled
    assert took >= 0.4  # it did wait for the task, about --wait
    assert ledger.events("finished") == []
    assert "still running" in worker.stderr()


def test_wait_lets_a_short_task_complete(app: rpqueue.RPQueue, workers: Workers,
                                         ledger: Ledger) -> None:
    worker = workers.start("basic", "default", args=["--wait", "10"])
    basic.gate.execute("short", 0.5)  # ends by itself after 0.5 s
    ledger.wait_for(1, "started", tag="short")
    worker.signal(signal.SIGUSR1)
    assert worker.wait_exit() == 0
    [done] = ledger.events("finished", tag="short")
    assert done["released"] is False


@pytest.mark.parametrize("sig", SIGNALS)
def test_multi_process_worker_stops_on_signal(app: rpqueue.RPQueue, workers: Workers,
                                              ledger: Ledger, rcli: Any, sig: int) -> None:
    worker = workers.start("basic", "default", args=["--processes", "2", "--wait", "20"])
    worker.wait_log("serving", count=2)
    basic.gate.execute("mp")
    [started] = ledger.wait_for(1, "started", tag="mp")
    after = basic.record.execute("after-signal", delay=0.5)
    worker.signal(sig)
    _not_taken_after_stop(after, ledger, rcli)
    ledger.release("mp")
    assert worker.wait_exit() == 0
    assert ledger.events("finished", tag="mp")[0]["released"] is True
    wait_until(lambda: not os.path.exists(f"/proc/{started['pid']}/status")
               or "zombie" in open(f"/proc/{started['pid']}/status").read(),
               message="child exited")


REENTRANT = ("BUG: the stop-signal handler (worker/process.py _on_stop) calls "
             "threading.Event.set(), which is not reentrant: a second signal handled while the "
             "first handler is inside set() (holding the Event's Condition lock) runs the "
             "handler nested in the same thread and deadlocks; the worker process hangs")


def test_ctrl_c_to_the_process_group(app: rpqueue.RPQueue, workers: Workers,
                                     ledger: Ledger) -> None:
    """Ctrl-C in a terminal sends SIGINT to the supervisor and its children at once."""
    worker = workers.start("basic", "default", args=["--processes", "2", "--wait", "20"])
    worker.wait_log("serving", count=2)
    basic.gate.execute("cc")
    ledger.wait_for(1, "started", tag="cc")
    os.killpg(worker.pid, signal.SIGINT)  # the worker's own group (own session)
    ledger.release("cc")
    assert worker.wait_exit(timeout=8) == 0
    assert ledger.events("finished", tag="cc")[0]["released"] is True
    assert "Traceback" not in worker.stderr()


def test_task_completed_during_shutdown_is_recorded(app: rpqueue.RPQueue, slow_link: DelayProxy,
                                                    workers: Workers, ledger: Ledger) -> None:
    # The task stops its own worker, then returns a result large enough that
    # writing it takes a while over the (slow) link to Redis.
    size = 4_000_000
    et = shutdown_tasks.finish_during_shutdown.execute(size)
    worker = workers.start("shutdown_tasks", "default", url=slow_link.url,
                           args=["--wait", "30"], ready=False)
    assert worker.wait_exit() == 0
    ledger.wait_for(1, "returning")
    assert et.status == "done"
    assert et.result is not None and len(et.result) == size


def test_stop_signal_handler_survives_a_second_signal_during_the_first() -> None:
    """The interleaving a hung worker's faulthandler dump showed, made deterministic.

    (In a real worker: SIGINT to the process group plus the SIGTERM the
    supervisor forwards, see test_ctrl_c_to_the_process_group.)
    """
    import threading

    from rpqueue.worker import process

    stop = threading.Event()
    saved = {s: signal.getsignal(s) for s in process.STOP_SIGNALS}
    try:
        process._on_stop(stop)
        handler = signal.getsignal(signal.SIGTERM)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert callable(handler)

    def second_signal_inside_first_handler() -> None:
        with stop._cond:  # type: ignore[attr-defined]  # what stop.set() holds
            handler(signal.SIGINT, None)  # the nested, second handler

    t = threading.Thread(target=second_signal_inside_first_handler, daemon=True)
    t.start()
    t.join(2)
    assert not t.is_alive(), "the second handler deadlocked inside stop.set()"
