"""The read model (rpqueue.views) and the front ends that use it, on a real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest

import rpqueue
from rpqueue.errors import DuplicateTask
from rpqueue.metrics import QueueCollector
from rpqueue.task import TaskRef
from rpqueue.views import dead, queues, schedules
from rpqueue.web import model


def publish(app: rpqueue.RPQueue, ref: TaskRef) -> None:
    """Write a task's settings to the registry in Redis, as a worker does."""
    app.client.hset(app.keys.tasks, ref.name, json.dumps(ref.settings()))


def add_dead(app: rpqueue.RPQueue, queue: str, taskid: bytes | str, name: str = "t.x",
             when: float = 1_700_000_000.0) -> None:
    """A dead letter in the documented record format (docs/PROTOCOL.md)."""
    message = json.dumps({"v": 1, "id": "x", "name": name, "queue": queue, "args": [1],
                          "kwargs": {}})
    k = app.keys.queue(queue)
    app.client.hset(k.deadmsg, taskid, json.dumps({"message": message, "reason": "r",
                                                   "attempts_used": 1, "time": when}))
    app.client.zadd(k.dead, {taskid: when * 1000})
    app.client.zadd(app.keys.queues, {queue: when}, nx=True)


def count_pipelines(app: rpqueue.RPQueue, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the number of steps of each pipeline the app's store sends."""
    sent: list[int] = []
    real = app.ctx.store.pipeline

    def counted(steps: list[Any], client: Any = None) -> list[Any]:
        sent.append(len(steps))
        return real(steps, client)

    monkeypatch.setattr(app.ctx.store, "pipeline", counted)
    return sent


# -- bugs ----------------------------------------------------------------------------


def test_call_task_from_the_registry_keeps_priority_and_uniqueness(app: rpqueue.RPQueue) -> None:
    publish(app, TaskRef(app, "remote.job", queue="rq", priority=-5, unique_for=60,
                         on_duplicate="refuse"))
    ref = app.known_tasks["remote.job"]
    assert (ref.priority, ref.unique_for, ref.on_duplicate) == (-5, 60, "refuse")
    app.call_task("remote.job", None, 1)
    (item,) = app.get_page("rq", 0)
    assert item["priority"] == -5 and item.get("unique_key")
    with pytest.raises(DuplicateTask):
        app.call_task("remote.job", None, 1)


def test_dashboard_delete_all_reaches_ids_that_are_not_utf8(app: rpqueue.RPQueue) -> None:
    add_dead(app, "q", b"dead-\xff\xfe")
    add_dead(app, "q", "dead-plain", when=1_700_000_001.0)
    assert model.dead_letters(app)["total"] == 2
    assert model.dead_action(app, "delete") == {"deleted": 2, "skipped": 0}
    assert model.dead_letters(app) == {"total": 0, "items": []}
    assert app.client.hlen(app.keys.queue("q").deadmsg) == 0


def test_dashboard_requeue_all_reaches_ids_that_are_not_utf8(app: rpqueue.RPQueue) -> None:
    add_dead(app, "q", b"dead-\xff")
    assert model.dead_action(app, "requeue") == {"requeued": 1, "skipped": 0}
    assert app.client.lrange(app.keys.queue("q").ready, 0, -1) == [b"dead-\xff"]


# -- the views -------------------------------------------------------------------------


def test_overview_reads_every_queue_in_one_pipeline(app: rpqueue.RPQueue,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        TaskRef(app, "t.x", queue=f"q{i}").execute(i)
    app.set_priority("q3", 1)
    app.set_queue_limit("q4", 9)
    app.pause_queue("never-used")
    sent = count_pipelines(app, monkeypatch)
    view = queues.overview(app.ctx)
    # The index and settings, then every queue's counts: two round trips.
    assert len(sent) == 2
    rows = view.by_name()
    assert view.queues[0].name == "q3"
    assert rows["q3"].priority == 1.0 and rows["q4"].limit == {"max_len": 9, "overflow": "refuse"}
    assert rows["q0"].size == 1 and rows["q0"].stats["enqueued"] == 1
    assert rows["never-used"].paused and rows["never-used"].seen is None
    assert queues.queue_info(app.ctx, "q0")["waiting"] == 1


def test_every_front_end_counts_the_same(app: rpqueue.RPQueue,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("prometheus_client")
    for i in range(3):
        TaskRef(app, "t.x", queue="a").execute(i)
    TaskRef(app, "t.x", queue="b").execute(0, delay=600)
    add_dead(app, "b", "gone")
    api = {q: (size, seen) for q, size, seen in app.queue_sizes()}
    assert {q: s for q, (s, _) in api.items()} == {"a": 3, "b": 1}
    web = {q["name"]: q for q in model.queue_overview(app)["queues"]}
    assert (web["a"]["waiting"], web["b"]["delayed"], web["b"]["dead"]) == (3, 1, 1)
    sent = count_pipelines(app, monkeypatch)
    families = {f.name: f for f in QueueCollector(app).collect()}
    waiting = {s.labels["queue"]: s.value for s in families["rpqueue_queue_waiting"].samples}
    assert waiting == {"a": 3, "b": 0}
    assert {s.labels["queue"]: s.value
            for s in families["rpqueue_queue_dead_letters"].samples} == {"a": 0, "b": 1}
    # One scrape: the queue index, one pipeline for every queue's counts
    # (7 steps each, and Redis time), and the worker registry.
    assert sent[:2] == [5, 2 * 7 + 1] and len(sent) <= 3


def test_dead_records_keep_the_raw_id_for_actions(app: rpqueue.RPQueue) -> None:
    add_dead(app, "q", b"bad-\xff")
    (record,) = dead.dead_records(app.ctx)
    assert record["rid"] == b"bad-\xff" and record["id"] == "bad-\ufffd"
    assert dead.delete_dead(app.ctx, [record]) == 1
    assert dead.dead_records(app.ctx) == []


def test_schedule_listing_soonest_first(app: rpqueue.RPQueue) -> None:
    for queue, name, when in (("a", "late", 2_000_000_000_000), ("b", "soon", 1_000_000_000_000)):
        app.client.zadd(app.keys.queues, {queue: 1})
        app.client.zadd(app.keys.queue(queue).periodic, {name: when})
    app.client.hset(app.keys.queue("a").periodic_def, "late", "every 1h")
    items = schedules.listing(app.ctx)["items"]
    assert [(i["name"], i["schedule"], i["next_run"]) for i in items] == [
        ("soon", None, 1_000_000_000.0), ("late", "every 1h", 2_000_000_000.0)]
