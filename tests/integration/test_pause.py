"""Pausing a queue: real workers skip it while serving others, and take it up on resume."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# legacymods/ is importable: tests/conftest.py puts it on sys.path.
import pause_tasks
import pytest
from legacy_procs import Worker, wait_until

import rpqueue


@pytest.fixture
def started() -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    yield workers
    for w in workers:
        w.stop()


def runs(rcli: Any, queue: str) -> list[dict[str, Any]]:
    return [r for r in (json.loads(x) for x in rcli.lrange(pause_tasks.RAN, 0, -1))
            if r["queue"] == queue]


def test_pause_resume_and_list(app: rpqueue.RPQueue, rcli: Any) -> None:
    assert app.paused_queues() == []
    assert app.pause_queue("b") is True
    assert app.pause_queue(b"a") is True
    assert app.pause_queue("a") is False
    assert app.paused_queues() == ["a", "b"] and app.is_paused("a")
    assert rcli.smembers("rpqueue:paused") == {"a", "b"}
    # Producers may still queue into a paused queue.
    handle = pause_tasks.held.execute(1, _queue="a")
    assert handle.status == "waiting"
    assert app.resume_queue("a") is True
    assert app.resume_queue("a") is False
    assert app.paused_queues() == ["b"] and not app.is_paused("a")
    with pytest.raises(ValueError):
        app.pause_queue("")


def test_paused_set_follows_the_prefix(app: rpqueue.RPQueue, rcli: Any) -> None:
    other = rpqueue.new_rpqueue("pause-prefix-test", "other:")
    other.set_redis_connection(app.client)
    other.pause_queue("x")
    assert other.paused_queues() == ["x"] and app.paused_queues() == []
    assert rcli.smembers("other:paused") == {"x"}


@pytest.mark.parametrize("serving", ["named", "all"])
def test_worker_skips_a_paused_queue_and_resumes_within_a_second(
        app: rpqueue.RPQueue, rcli: Any, redis_url: str, started: list[Worker],
        tmp_path: Path, serving: str) -> None:
    queues = ["held", "free"] if serving == "named" else []
    if serving == "named":
        app.pause_queue("held")
        started.append(Worker(tmp_path, "pause_tasks", redis_url, queues))
    else:
        # Both queues known before the worker starts; paused while it runs.
        rpqueue.set_priority("held", 1)
        rpqueue.set_priority("free", 2)
        started.append(Worker(tmp_path, "pause_tasks", redis_url, queues))
        app.pause_queue("held")
        time.sleep(1.2)  # workers re-read the paused set at least once a second
    for n in range(3):
        pause_tasks.held.execute(n)
        pause_tasks.free.execute(n)
    wait_until(lambda: len(runs(rcli, "free")) == 3, what="the free queue to be served")
    time.sleep(1.0)
    assert runs(rcli, "held") == []
    k = app.keys.queue("held")
    assert rcli.llen(k.ready) == 3

    resumed = time.time()
    app.resume_queue("held")
    done = wait_until(lambda: r if len(r := runs(rcli, "held")) == 3 else None,
                      what="the resumed queue to be served")
    assert sorted(r["n"] for r in done) == [0, 1, 2]
    # About a second: the paused set is re-read at least once a second and an
    # idle worker wakes at least once a second.
    assert done[0]["at"] - resumed < 2.5


def test_a_worker_whose_queues_are_all_paused_idles_without_spinning(
        app: rpqueue.RPQueue, rcli: Any, redis_url: str, started: list[Worker],
        tmp_path: Path) -> None:
    app.pause_queue("held")
    app.pause_queue("free")
    started.append(Worker(tmp_path, "pause_tasks", redis_url, ["held", "free"], ["--threads", "2"]))
    pause_tasks.free.execute(1)
    time.sleep(0.5)
    before = rcli.info("commandstats")
    time.sleep(2.0)
    after = rcli.info("commandstats")

    def calls(stats: dict[str, Any]) -> int:
        # Refused commands (a BLPOP naming no key) count apart from calls.
        return sum(int(v["calls"]) + int(v.get("rejected_calls", 0)) + int(v.get("failed_calls", 0))
                   for v in stats.values())

    # Heartbeats and a paused-set read a second; a spinning worker makes thousands.
    assert calls(after) - calls(before) < 60
    assert runs(rcli, "free") == []
    app.resume_queue("free")
    wait_until(lambda: len(runs(rcli, "free")) == 1, what="the resumed queue to be served")
