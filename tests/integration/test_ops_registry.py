"""The worker registry with real workers (issue #7): every worker process
heartbeats; ``rpqueue workers`` lists them with what they run; a killed worker
drops out within registry.STALE seconds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from ops_support import (
    Ledger,
    OpsWorkers,
    task_ref,
    wait_until,
)

import rpqueue
from rpqueue.registry import HEARTBEAT, STALE, live_workers

# The ledger fixture reads what the ops task modules noted (ops_ledger.py).
pytestmark = pytest.mark.ops_ledger


def _cli_workers(redis_url: str) -> str:
    done = subprocess.run([sys.executable, "-m", "rpqueue", "workers", "--url", redis_url],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _by_pid(app: rpqueue.RPQueue) -> dict[int, dict[str, Any]]:
    return {w["pid"]: w for w in live_workers(app.ctx)}


def test_workers_listed_with_their_work(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger,
                                        redis_url: str) -> None:
    ops.start("ops_tasks", "ops", args=["--threads", "2"])
    task_ref(app, "ops_tasks.record").execute("one")
    task_ref(app, "ops_tasks.boom").execute("two")
    gate = task_ref(app, "ops_tasks.gate").execute("held")
    [held] = ledger.wait_for(1, "gate", tag="held")
    pid = held["pid"]

    def beat_shows_it() -> dict[str, Any] | None:
        w = _by_pid(app).get(pid)
        return w if w and w["running"] and w["done"] >= 1 and w["failed"] >= 1 else None

    w = wait_until(beat_shows_it, timeout=HEARTBEAT * 3, message="a heartbeat with the gate")
    assert w["host"] == socket.gethostname()
    assert w["queues"] == ["ops"] and w["threads"] == 2
    assert abs(w["started"] - time.time()) < 60
    [running] = w["running"]
    assert running["task"] == "ops_tasks.gate" and running["id"] == gate.taskid
    assert running["queue"] == "ops" and running["for"] >= 0
    out = _cli_workers(redis_url)
    assert f"{socket.gethostname()}:{pid}:" in out
    assert f"ops_tasks.gate ({gate.taskid}," in out
    ledger.release("held")
    # A stopped worker leaves the registry at once.
    ops.stop_all()
    assert _by_pid(app) == {}


def test_killed_worker_drops_out(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger,
                                 redis_url: str) -> None:
    worker = ops.start("ops_tasks", "ops", args=["--processes", "2"], ready=2)
    pids = wait_until(lambda: set(_by_pid(app)) if len(_by_pid(app)) == 2 else None,
                      message="two worker processes registered")
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    worker.wait_log("starting another")
    # The replacement registers; the killed one is still listed until its beat goes stale ...
    wait_until(lambda: len(_by_pid(app)) == 3, timeout=HEARTBEAT * 3,
               message="the replacement registered beside the stale entry")
    # ... and drops out within STALE seconds of its last beat.
    wait_until(lambda: victim not in _by_pid(app), timeout=STALE + HEARTBEAT,
               interval=0.2, message="the killed worker dropped out")
    gone_after = time.monotonic() - killed_at
    assert STALE - HEARTBEAT - 1 <= gone_after <= STALE + 1
    live = _by_pid(app)
    assert len(live) == 2 and victim not in live
    out = _cli_workers(redis_url)
    assert f":{victim}:" not in out
    assert all(f":{pid}:" in out for pid in live)
