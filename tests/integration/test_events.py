"""The per-queue event stream with real workers (issue #17): written by the
scripts that change the state, in order per task, read by app.events,
app.aevents and ``rpqueue events``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import state_tasks as st
from harness import Ledger, Workers

import rpqueue
from rpqueue.events import Event

T = 15.0
EVENTS_ON = {"RPQUEUE_EVENTS": "1"}


@pytest.fixture
def events_app(app: rpqueue.RPQueue) -> Iterator[rpqueue.RPQueue]:
    """The default app with events on (producer side), off again afterwards."""
    app.set_events(True)
    yield app
    app.set_events(False)


def _by_task(events: list[Event]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        out.setdefault(e.id, []).append(e.event)
    return out


def test_events_in_order_per_task(events_app: rpqueue.RPQueue, workers: Workers,
                                  ledger: Ledger) -> None:
    app = events_app
    # Threads enough that the task held for its progress blocks no other.
    workers.start("state_tasks", "st", env=EVENTS_ON, args=["--threads", "3"])
    ok = st.double.execute(1)
    bad = st.raises.execute("x")
    dead = st.raises_dead.execute("y")
    later = st.double.execute(2, delay=60)
    retried = st.flaky.execute("ev", 2)
    prog = st.with_progress.execute("evp", 2)
    assert ok.get(timeout=T) == 2
    for h in (bad, dead):
        with pytest.raises(rpqueue.TaskFailed):
            h.get(timeout=T)
    assert later.cancel() is True
    assert retried.get(timeout=T) == "ok after 2"
    ledger.wait_for(1, "progressed", tag="evp")
    ledger.release("evp")
    assert prog.get(timeout=T) == "done"

    events = list(app.events(["st"], since=0, timeout=0.3))
    seen = _by_task(events)
    assert seen[ok.taskid] == ["enqueued", "started", "succeeded"]
    assert seen[bad.taskid] == ["enqueued", "started", "failed"]
    assert seen[dead.taskid] == ["enqueued", "started", "dead"]
    assert seen[later.taskid] == ["enqueued", "cancelled"]
    assert seen[retried.taskid] == ["enqueued", "started", "retrying", "started", "succeeded"]
    assert seen[prog.taskid] == ["enqueued", "started", "progress", "progress", "succeeded"]
    one = [e for e in events if e.id == retried.taskid]
    assert [e.attempt for e in one] == [1, 1, 1, 2, 2]
    assert {e.name for e in events} >= {"state_tasks.double", "state_tasks.flaky"}
    assert all(e.queue == "st" for e in events)
    progress = [e for e in events if e.event == "progress"]
    assert progress[-1].data == {"done": 2.0, "total": 2.0, "note": "step 2 ✓"}
    # Stream order is time order.
    assert [e.cursor for e in events] == sorted(
        (e.cursor for e in events), key=lambda c: tuple(map(int, c.split("-"))))


def test_follow_from_now_on(events_app: rpqueue.RPQueue, workers: Workers) -> None:
    app = events_app
    old = st.double.execute(5)  # before the follower starts: not seen
    workers.start("state_tasks", "st", env=EVENTS_ON)
    old.get(timeout=T)
    follower = app.events(["st"], timeout=T)
    h = st.double.execute(6)
    got: list[Event] = []
    for e in follower:
        got.append(e)
        if e.id == h.taskid and e.event == "succeeded":
            break
    assert old.taskid not in {e.id for e in got}
    assert [e.event for e in got if e.id == h.taskid] == ["enqueued", "started", "succeeded"]


def test_all_queues_and_since_a_cursor(events_app: rpqueue.RPQueue) -> None:
    app = events_app
    a = st.double.execute(1)
    events = list(app.events(since=0, timeout=0.2))
    assert [e.id for e in events] == [a.taskid]
    b = st.double.execute(2)
    after = list(app.events(["st"], since=events[-1].cursor, timeout=0.2))
    assert [e.id for e in after] == [b.taskid]


def test_async_events(events_app: rpqueue.RPQueue, workers: Workers) -> None:
    app = events_app
    workers.start("state_tasks", "st", env=EVENTS_ON)
    h = st.async_progress.execute("aev")
    assert h.get(timeout=T) == "async done"

    async def collect() -> list[str]:
        return [e.event async for e in app.aevents(["st"], since=0, timeout=0.3)
                if e.id == h.taskid]

    assert asyncio.run(collect()) == ["enqueued", "started", "progress", "progress",
                                      "succeeded"]


def test_events_are_off_by_default(app: rpqueue.RPQueue, workers: Workers, rcli: Any) -> None:
    workers.start("state_tasks", "st")
    assert st.double.execute(3).get(timeout=T) == 6
    assert rcli.exists(app.keys.queue("st").events) == 0
    assert list(app.events(["st"], since=0, timeout=0.1)) == []


def test_bad_arguments_are_refused(app: rpqueue.RPQueue) -> None:
    with pytest.raises(ValueError, match="since"):
        app.events(["st"], since="yesterday")
    with pytest.raises(ValueError, match="timeout"):
        app.events(["st"], timeout=-1)
    with pytest.raises(ValueError, match="maxlen"):
        app.set_events(True, maxlen=0)


def test_cli_follows_events(events_app: rpqueue.RPQueue, redis_url: str) -> None:
    h = st.double.execute(7)
    h2 = st.double.execute(8, delay=60)
    h2.cancel()
    run = subprocess.run(
        [sys.executable, "-m", "rpqueue", "events", "st", "--json", "--since", "0",
         "--idle", "0.5", "--url", redis_url],
        capture_output=True, text=True, timeout=T)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(x["id"], x["event"]) for x in lines] == [
        (h.taskid, "enqueued"), (h2.taskid, "enqueued"), (h2.taskid, "cancelled")]
    text = subprocess.run(
        [sys.executable, "-m", "rpqueue", "events", "--since", "0", "--idle", "0.5",
         "--url", redis_url], capture_output=True, text=True, timeout=T)
    assert text.returncode == 0 and "cancelled" in text.stdout, text.stderr


def test_nothing_missing_across_a_redis_restart_with_aof(app: rpqueue.RPQueue, workers: Workers,
                                                         redis_factory: Any) -> None:
    server = redis_factory({"appendonly": "yes", "appendfsync": "always"})
    app.set_redis_url(server.url)
    app.set_events(True)
    try:
        workers.start("state_tasks", "st", url=server.url, env=EVENTS_ON)
        before = st.double.execute(1)
        assert before.get(timeout=T) == 2
        server.kill()  # a crash, not a clean shutdown: the AOF is all there is
        server.start()
        after = st.double.execute(2)
        assert after.get(timeout=T) == 4
        seen = _by_task(list(app.events(["st"], since=0, timeout=0.3)))
        assert seen[before.taskid] == ["enqueued", "started", "succeeded"]
        assert seen[after.taskid] == ["enqueued", "started", "succeeded"]
        assert before.state == "succeeded"  # state records survive too
    finally:
        app.set_events(False)
