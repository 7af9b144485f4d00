"""Worker recycling (issue 22): ``--max-tasks-per-child`` and
``--max-memory-per-child`` replace a worker process between tasks, with real
worker processes; every task runs exactly once across the restarts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support.worker import Workers, wait_until

import rpqueue

MODS = Path(__file__).parent / "ecosystemmods"


@pytest.fixture
def eco(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> dict[str, str]:
    """Task modules importable here and in workers; the ledger's URL for workers."""
    monkeypatch.syspath_prepend(str(MODS))
    return {"PYTHONPATH": str(MODS), "ECO_REDIS_URL": redis_url}


def _all_done(handles: list[Any]) -> bool:
    return all(h.status == "done" for h in handles)


def test_max_tasks_per_child_replaces_the_process_every_n_tasks(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, eco: dict[str, str]) -> None:
    import recycle_tasks
    from eco_ledger import read

    handles = [recycle_tasks.record.execute(n) for n in range(20)]
    w = workers.start("recycle_tasks", "recycle", env=eco, args=["--max-tasks-per-child", "5"])
    wait_until(lambda: len(read(rcli, "recycle")) >= 20, 60,
               message=lambda: f"20 runs; log:\n{w.logs()}")
    wait_until(lambda: _all_done(handles), 30, message="every task done")
    runs = read(rcli, "recycle")
    assert sorted(r["n"] for r in runs) == list(range(20))  # each exactly once
    per_pid = Counter(r["pid"] for r in runs)
    # One thread: each process ran exactly five, then made way for the next.
    assert list(per_pid.values()) == [5, 5, 5, 5]
    assert w.pid not in per_pid  # the supervisor itself runs no task
    w.wait_log("retired (recycled); starting another", count=4)
    assert "exited with" not in w.log()
    assert w.alive()


def test_recycling_waits_for_running_tasks_and_loses_none(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, eco: dict[str, str]) -> None:
    import recycle_tasks
    from eco_ledger import read

    # Three threads, each task runs 0.3 s, and --wait 0: were retiring a
    # shutdown, the tasks of the other threads would be cut off and lost
    # (or run again once their lease ran out).
    handles = [recycle_tasks.record.execute(n, 0.3) for n in range(18)]
    w = workers.start("recycle_tasks", "recycle", env=eco,
                      args=["--threads", "3", "--wait", "0", "--max-tasks-per-child", "4"])
    wait_until(lambda: len(read(rcli, "recycle")) >= 18, 60,
               message=lambda: f"18 runs; log:\n{w.logs()}")
    wait_until(lambda: _all_done(handles), 30, message="every task done")
    runs = read(rcli, "recycle")
    assert sorted(r["n"] for r in runs) == list(range(18))
    assert len({r["pid"] for r in runs}) >= 2
    assert "still running" not in w.log()


def test_max_memory_per_child_replaces_a_process_that_grew(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, eco: dict[str, str]) -> None:
    import recycle_tasks
    from eco_ledger import read

    from rpqueue.worker.recycle import MIB, rss_bytes

    # Each call keeps 40 MiB; the limit sits 60 MiB above a fresh worker's
    # size (about this process's), so a process retires after two calls.
    limit = rss_bytes() / MIB + 60
    handles = [recycle_tasks.grow.execute(n, 40) for n in range(6)]
    w = workers.start("recycle_tasks", "recycle_mem", env=eco,
                      args=["--max-memory-per-child", f"{limit:.0f}"])
    wait_until(lambda: len(read(rcli, "recycle_mem")) >= 6, 60,
               message=lambda: f"6 runs; log:\n{w.logs()}")
    wait_until(lambda: _all_done(handles), 30, message="every task done")
    runs = read(rcli, "recycle_mem")
    assert sorted(r["n"] for r in runs) == list(range(6))
    assert len({r["pid"] for r in runs}) >= 2
    assert "MiB, over the limit" in w.log()


def test_bad_recycling_options_are_refused(workers: Workers, eco: dict[str, str]) -> None:
    w = workers.start("recycle_tasks", env=eco, args=["--max-tasks-per-child", "-1"],
                      ready=False)
    assert w.wait_exit() == 2
    assert "--max-tasks-per-child and --max-memory-per-child must be at least 0" in w.log()
