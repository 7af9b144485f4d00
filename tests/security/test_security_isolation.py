"""Issue #11: key-prefix isolation. Two apps, ``new_rpqueue(.., "a:")`` and
``new_rpqueue(.., "b:")``, on one server, with tasks, queues and data queues
of the same names: neither ever sees the other's tasks, results, registry,
dead letters, data queues, queue lists, priorities or workers.

Both apps register a task under the same name; each records which app ran
it, so a message crossing over would be run by the wrong app's function (or
dead-lettered as unknown) and show up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sec_helpers import wait_until

import rpqueue
from rpqueue import admin
from rpqueue.data import Data
from rpqueue.registry import live_workers
from rpqueue.worker.process import run_threads


class IsolatedApp:
    """One app with its own prefix, tasks and an in-process worker thread."""

    def __init__(self, label: str, url: str) -> None:
        self.label = label
        self.app = rpqueue.new_rpqueue(f"sec-iso-{label}", f"{label}:")
        self.app.set_redis_url(url)
        self.app.store.forget_seen()  # the server was flushed since a previous test
        self.ran: list[tuple[str, Any]] = []
        app = self.app

        @app.task(name="shared.work", save_results=60)  # type: ignore[attr-defined]
        def work(value: Any) -> str:
            self.ran.append(("shared.work", value))
            return f"{label}:{value}"

        @app.task(name="shared.fail", use_dead=True)  # type: ignore[attr-defined]
        def fail(value: Any) -> None:
            self.ran.append(("shared.fail", value))
            raise RuntimeError(f"{label} fails {value}")

        @app.task(name=f"only.{label}", queue=f"only-{label}")  # type: ignore[attr-defined]
        def only(value: Any) -> None:
            self.ran.append((f"only.{label}", value))

        self.work, self.fail, self.only = work, fail, only
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start_worker(self) -> None:
        self.thread = threading.Thread(
            target=run_threads, args=(self.app.ctx, None, 1, 0.5, self.stop), daemon=True,
            name=f"sec-iso-{self.label}")
        self.thread.start()

    def stop_worker(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(15)
            assert not self.thread.is_alive()


@pytest.fixture
def two_apps(redis_url: str) -> Iterator[tuple[IsolatedApp, IsolatedApp]]:
    a, b = IsolatedApp("a", redis_url), IsolatedApp("b", redis_url)
    try:
        yield a, b
    finally:
        a.stop_worker()
        b.stop_worker()


def test_two_prefixes_on_one_server_never_see_each_other(
        two_apps: tuple[IsolatedApp, IsolatedApp], redis_url: str) -> None:
    a, b = two_apps
    raw = redis.Redis.from_url(redis_url, decode_responses=True)

    # Queued before any worker runs: both "default" queues hold a task each.
    a.app.set_priority("default", 5)  # type: ignore[attr-defined]
    ta = a.work.execute("from-a")
    tb = b.work.execute("from-b")
    assert (ta.status, tb.status) == ("waiting", "waiting")
    assert a.app.get_page("default", 0)[0]["id"] == ta.taskid  # type: ignore[attr-defined]
    assert [i["id"] for i in b.app.get_page("default", 0)] == [tb.taskid]  # type: ignore[attr-defined]
    # A task id is only known under its own prefix.
    assert a.app.store.run(a.app.store.calls.status("default", tb.taskid)) == "done"  # i.e. not there at all
    assert a.app.delete_item("default", tb.taskid) is False  # type: ignore[attr-defined]
    assert tb.status == "waiting"

    a.start_worker()
    wait_until(lambda: ta.status == "done", message="a's task")
    assert tb.status == "waiting"  # a's worker left b's same-named queue alone
    b.start_worker()
    wait_until(lambda: tb.status == "done", message="b's task")
    assert ta.result == "a:from-a" and tb.result == "b:from-b"
    assert a.ran == [("shared.work", "from-a")] and b.ran == [("shared.work", "from-b")]

    # Results by id alone look only under the app's own prefix.
    assert a.app.results([ta.taskid, tb.taskid]) == ["a:from-a", None]  # type: ignore[attr-defined]
    assert b.app.results([ta.taskid, tb.taskid]) == [None, "b:from-b"]  # type: ignore[attr-defined]

    # Dead letters.
    da = a.fail.execute(1)
    db = b.fail.execute(2)
    wait_until(lambda: admin.dead_records(a.app.ctx) and admin.dead_records(b.app.ctx),
               message="both dead-lettered")
    assert [r["id"] for r in admin.dead_records(a.app.ctx)] == [da.taskid]
    assert [r["id"] for r in admin.dead_records(b.app.ctx)] == [db.taskid]
    assert [r["id"] for r in a.app.read_deadletter()] == [da.taskid]  # type: ignore[attr-defined]
    tasks_dead_b = Data(rpqueue.DEADLETTER_QUEUE, is_tasks=True, app=b.app).get_data(
        10, vis_timeout=-1)
    assert list(tasks_dead_b) == [db.taskid]
    # Requeueing a's dead letters never touches b's.
    assert admin.requeue_dead(a.app.ctx, admin.dead_records(a.app.ctx)) == 1
    wait_until(lambda: len(a.ran) == 3, message="a's dead task ran again")
    assert [r["id"] for r in admin.dead_records(b.app.ctx)] == [db.taskid]

    # Queue lists, priorities, per-queue stats, the task registry, workers.
    b.only.execute("x")
    wait_until(lambda: ("only.b", "x") in b.ran)
    assert a.app.known_queues() == ["default"]
    assert b.app.known_queues() == ["default", "only-b"]
    assert a.app.priorities() == {"default": 5.0} and b.app.priorities() == {}
    assert {q for q, _, _ in b.app.queue_sizes()} == {"default", "only-b"}  # type: ignore[attr-defined]
    assert b.app.queue_info("default")["stats"]["enqueued"] == 2  # type: ignore[attr-defined]
    assert set(a.app.read_registry()) == {"shared.work", "shared.fail", "only.a"}
    assert set(b.app.read_registry()) == {"shared.work", "shared.fail", "only.b"}
    assert "only.a" not in b.app.known_tasks  # type: ignore[attr-defined]
    assert b.app.get_task("only.a") is None  # type: ignore[attr-defined]
    wait_until(lambda: live_workers(a.app.ctx) and live_workers(b.app.ctx))
    assert len(live_workers(a.app.ctx)) == 1 and len(live_workers(b.app.ctx)) == 1
    assert live_workers(a.app.ctx)[0]["id"] != live_workers(b.app.ctx)[0]["id"]

    # Data queues of the same name.
    qa, qb = Data("shared-data", app=a.app), Data("shared-data", app=b.app)
    qa.put_data(["a1", "a2"])
    assert qb.currently_available() == (0, 0)
    assert qb.get_data(5) == {}
    qb.put_data(["b1"])
    assert sorted(qa.get_data(5).values()) == ["a1", "a2"]
    assert list(qb.get_data(5).values()) == ["b1"]
    dying_a = Data("shared-dead", vis_timeout=0.05, use_dead=True, app=a.app)
    dying_a.put_data(["gone-a"])
    dying_a.get_data(1)
    wait_until(lambda: Data("shared-dead", is_dead=True, app=a.app).currently_available()[0] == 1)
    assert Data.read_dead(b.app) == []
    assert Data(rpqueue.DEADLETTER_QUEUE, app=b.app).get_data(10) == {}
    assert [r["item"] for r in Data.read_dead(a.app)] == ["gone-a"]

    # Clearing and flushing act on one prefix only.
    pending_a = a.work.execute("later-a", delay=60)
    pending_b = b.work.execute("later-b", delay=60)
    assert a.app.clear_queue("default") == 1  # type: ignore[attr-defined]
    assert pending_b.status == "early" and pending_a.status == "done"
    done, started, waiting = a.app.flush_tasks(complete=True, timeout=5)  # type: ignore[attr-defined]
    assert pending_b.taskid not in done + started + waiting
    assert b.app.clear_queue("default", delete=True) == 1  # type: ignore[attr-defined]
    assert a.app.known_queues() == ["default"]

    # Every key on the server belongs to exactly one of the two prefixes.
    keys = raw.keys("*")
    assert keys and all(k.startswith(("a:", "b:")) for k in keys), keys
    raw.close()
