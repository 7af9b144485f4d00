"""Queue policies (issue #12): per-message priority, unique tasks, bounded queues.

Storage behaviour is checked through the public API on a real Redis; the
order a worker runs things in is checked with real worker processes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import policies
import pytest
from harness import Ledger, Workers, wait_until

import rpqueue
from rpqueue.storage.wire import PRIORITY_LIMIT


def _take_all(app: rpqueue.RPQueue, queue: str) -> list[Any]:
    """Take (and finish) every waiting task of ``queue``; their first arguments in order."""
    out = []
    while True:
        reply = app.store.run(app.store.calls.take(queue, 30))
        if reply.taken is None:
            return out
        out.append(json.loads(reply.taken.raw)["args"][0])
        app.store.run(app.store.calls.done(queue, reply.taken.key, reply.taken.token, "null", 0))


# -- per-message priority --------------------------------------------------------


def test_lower_priority_runs_first_fifo_among_equals(app: rpqueue.RPQueue) -> None:
    plan = [(0, "a"), (5, "b"), (-3, "c"), (0, "d"), (5, "e"), (-3, "f"), (None, "g"),
            (-PRIORITY_LIMIT, "h"), (PRIORITY_LIMIT, "i")]
    for pri, tag in plan:
        policies.step.execute(tag, priority=pri)
    assert rpqueue.queue_sizes()[0][1] == len(plan)
    assert _take_all(app, "pq") == ["h", "c", "f", "a", "d", "g", "b", "e", "i"]


def test_task_default_priority_and_per_call_override(app: rpqueue.RPQueue) -> None:
    policies.background.execute("bg1")
    policies.step.execute("fg")
    policies.background.execute("urgent", priority=-1)
    policies.background.execute("bg2")
    assert _take_all(app, "pq") == ["urgent", "fg", "bg1", "bg2"]


def test_priority_is_validated_and_a_refused_call_queues_nothing(app: rpqueue.RPQueue) -> None:
    with pytest.raises(TypeError, match="priority must be an int"):
        policies.step.execute("x", priority=1.5)
    with pytest.raises(ValueError, match="priority must be between"):
        policies.step.execute("x", priority=PRIORITY_LIMIT + 1)
    with pytest.raises(ValueError, match="priority must be between"):
        rpqueue.task(queue="pq", priority=-PRIORITY_LIMIT - 1)(lambda: None)
    assert rpqueue.queue_sizes() == [] or rpqueue.queue_sizes()[0][1] == 0


def test_delayed_task_keeps_its_priority_when_due(app: rpqueue.RPQueue) -> None:
    late = policies.step.execute("late-urgent", priority=-2, delay=0.2)
    policies.step.execute("plain")
    assert [t["status"] for t in app.get_page("pq", 0)] == ["waiting", "delayed"]
    wait_until(lambda: late.status == "late")
    # Once due, the delayed task goes ahead of the plain one.
    assert _take_all(app, "pq") == ["late-urgent", "plain"]


def test_page_lists_waiting_tasks_in_run_order(app: rpqueue.RPQueue) -> None:
    for pri, tag in [(3, "p3"), (0, "p0"), (-1, "m1"), (0, "p0b")]:
        policies.step.execute(tag, priority=pri)
    policies.step.execute("later", delay=60)
    tags = [t["args"][0] for t in app.get_page("pq", 0, per_page=2)]
    tags += [t["args"][0] for t in app.get_page("pq", 1, per_page=2)]
    tags += [t["args"][0] for t in app.get_page("pq", 2, per_page=2)]
    assert tags == ["m1", "p0", "p0b", "p3", "later"]


def test_cancel_and_clear_reach_prioritised_tasks(app: rpqueue.RPQueue) -> None:
    keep = policies.step.execute("keep", priority=2)
    gone = policies.step.execute("gone", priority=2)
    assert gone.cancel() is True
    assert gone.status == "done"
    assert keep.status == "waiting"
    assert _take_all(app, "pq") == ["keep"]
    for i in range(5):
        policies.step.execute(f"c{i}", priority=i - 2)
    assert rpqueue.clear_queue("pq") == 5
    assert _take_all(app, "pq") == []


def test_execute_many_with_priority(app: rpqueue.RPQueue) -> None:
    policies.step.execute("plain")
    handles = policies.step.execute_many([("b1",), ("b2",)], priority=-1)
    assert [h.outcome for h in handles] == ["queued", "queued"]
    assert _take_all(app, "pq") == ["b1", "b2", "plain"]


def test_a_dead_letter_keeps_its_priority_when_requeued(app: rpqueue.RPQueue) -> None:
    rpqueue.set_queue_limit("pq", 1, "drop_oldest")
    policies.step.execute("first", priority=4)
    policies.step.execute("second")
    dead = rpqueue.read_deadletter()
    assert [(d["args"], d.get("priority")) for d in dead] == [(["first"], 4)]
    rpqueue.set_queue_limit("pq", None)
    policies.step.execute("third", priority=5)
    from rpqueue.admin import requeue_dead

    assert requeue_dead(app.ctx, dead) == 1
    assert _take_all(app, "pq") == ["second", "first", "third"]


def test_worker_runs_by_message_priority(app: rpqueue.RPQueue, workers: Workers,
                                         ledger: Ledger) -> None:
    for i in range(3):
        policies.background.execute(f"bg{i}")
    policies.step.execute("normal")
    policies.step.execute("urgent", priority=-5)
    workers.start("policies", "pq")
    ran = [e["tag"] for e in ledger.wait_for(5, "ran")]
    assert ran == ["urgent", "normal", "bg0", "bg1", "bg2"]


def test_vis_retry_keeps_priority(app: rpqueue.RPQueue, workers: Workers,
                                  ledger: Ledger) -> None:
    policies.step.execute("plain", _queue="vq")
    policies.flaky.execute("flaky")
    workers.start("policies", "vq")
    ran = [e["tag"] for e in ledger.wait_for(3, "ran")]
    # The failed run is retried at once and, at priority -1, before "plain".
    assert ran == ["flaky", "flaky", "plain"]


# -- unique tasks ------------------------------------------------------------------


def test_unique_call_merges_while_queued_and_running(app: rpqueue.RPQueue, workers: Workers,
                                                     ledger: Ledger) -> None:
    first = policies.refresh.execute(1)
    again = policies.refresh.execute(1)
    other = policies.refresh.execute(2)
    assert (first.outcome, again.outcome, other.outcome) == ("queued", "merged", "queued")
    assert again.taskid == first.taskid != other.taskid
    workers.start("policies", "uq")
    ledger.wait_for(1, "started", tag="refresh-1")
    running = policies.refresh.execute(1)
    assert running.outcome == "merged" and running.taskid == first.taskid
    ledger.release("refresh-1")
    ledger.wait_for(1, "finished", tag="refresh-1")
    wait_until(lambda: first.status == "done")
    after = policies.refresh.execute(1)
    assert after.outcome == "queued" and after.taskid != first.taskid
    ledger.release("refresh-2")
    ledger.release("refresh-1")
    ledger.wait_for(2, "finished", tag="refresh-1")


def test_unique_key_function_and_refuse(app: rpqueue.RPQueue) -> None:
    first = policies.build.execute({"id": "r1", "version": 1})
    with pytest.raises(rpqueue.DuplicateTask) as info:
        policies.build.execute({"id": "r1", "version": 2})
    assert info.value.existing == first.taskid
    assert "still queued or running" in str(info.value)
    assert policies.build.execute({"id": "r2"}).outcome == "queued"
    assert rpqueue.queue_sizes()[0][1] == 2  # the refused call queued nothing


def test_unique_claim_is_freed_by_cancel_and_expires(app: rpqueue.RPQueue) -> None:
    first = policies.step.execute("u", unique_for=60)
    assert first.cancel() is True
    second = policies.step.execute("u", unique_for=60)
    assert second.outcome == "queued" and second.taskid != first.taskid
    # No claim is left behind by cancelled tasks.
    assert second.cancel() is True
    assert app.client.hlen(app.keys.queue("pq").uniq) == 0
    short = policies.step.execute("v", unique_for=0.05)
    # Once unique_for has passed, a duplicate is queued although the first waits.
    wait_until(lambda: policies.step.execute("v", unique_for=0.05).taskid != short.taskid)


def test_unique_key_given_per_call(app: rpqueue.RPQueue) -> None:
    a = policies.step.execute("one", unique_for=60, unique_key="same")
    b = policies.step.execute("two", unique_for=60, unique_key="same")
    assert b.outcome == "merged" and b.taskid == a.taskid
    with pytest.raises(ValueError, match="over 1024 bytes"):
        policies.step.execute("x", unique_for=60, unique_key="k" * 2000)


def test_execute_many_merges_duplicates(app: rpqueue.RPQueue) -> None:
    handles = policies.step.execute_many([("a",), ("b",), ("a",)], unique_for=60)
    assert [h.outcome for h in handles] == ["queued", "queued", "merged"]
    assert handles[2].taskid == handles[0].taskid
    assert _take_all(app, "pq") == ["a", "b"]


# -- bounded queues ------------------------------------------------------------------


def test_bounded_queue_refuses_when_full(app: rpqueue.RPQueue) -> None:
    rpqueue.set_queue_limit("pq", 2)
    assert rpqueue.queue_limit("pq") == {"max_len": 2, "overflow": "refuse"}
    policies.step.execute("a")
    policies.step.execute("b", delay=60)  # delayed tasks count too
    with pytest.raises(rpqueue.QueueFull, match=r"queue 'pq' is full \(max_len 2\)") as info:
        policies.step.execute("c")
    assert info.value.max_len == 2
    assert app.queue_info("pq")["waiting"] + app.queue_info("pq")["delayed"] == 2
    # A running task does not count: taking one makes room.
    app.store.run(app.store.calls.take("pq", 30))
    policies.step.execute("c")


def test_bounded_queue_refuses_a_batch_whole(app: rpqueue.RPQueue) -> None:
    rpqueue.set_queue_limit("pq", 3)
    policies.step.execute("a")
    with pytest.raises(rpqueue.QueueFull, match="do not fit") as info:
        policies.step.execute_many([(i,) for i in range(3)])
    assert info.value.queued == []
    assert app.queue_info("pq")["waiting"] == 1
    assert len(policies.step.execute_many([(i,) for i in range(2)])) == 2


def test_drop_oldest_dead_letters_the_stalest_least_urgent(app: rpqueue.RPQueue) -> None:
    rpqueue.set_queue_limit(b"pq", 3, overflow="drop_oldest")
    for tag in ("a", "b", "c"):
        policies.step.execute(tag)
    policies.step.execute("d")  # drops a: the oldest
    policies.step.execute("lazy1", priority=9)  # drops b
    policies.step.execute("lazy2", priority=9)  # drops lazy1: least urgent band first
    dead = rpqueue.read_deadletter()
    # (dead letters of one millisecond come back in id order, not drop order)
    assert sorted(d["args"][0] for d in dead) == ["a", "b", "lazy1"]
    assert all(d["reason"] == "dropped: queue full (max_len 3)" for d in dead)
    assert app.queue_info("pq")["stats"]["dropped"] == 3
    assert _take_all(app, "pq") == ["c", "d", "lazy2"]


def test_queue_limit_validation(app: rpqueue.RPQueue) -> None:
    with pytest.raises(ValueError, match="overflow must be one of"):
        rpqueue.set_queue_limit("pq", 3, overflow="drop_newest")
    with pytest.raises(ValueError, match="max_len must be"):
        rpqueue.set_queue_limit("pq", -1)
    assert rpqueue.queue_limit("pq") is None
    rpqueue.set_queue_limit("pq", 5)
    rpqueue.set_queue_limit("pq", None)
    assert rpqueue.queue_limit("pq") is None


def test_workers_drain_a_bounded_queue(app: rpqueue.RPQueue, workers: Workers,
                                       ledger: Ledger) -> None:
    rpqueue.set_queue_limit("pq", 5)
    workers.start("policies", "pq")
    sent = 0
    # A producer that backs off on QueueFull gets everything through.
    while sent < 30:
        try:
            policies.step.execute(f"t{sent}")
            sent += 1
        except rpqueue.QueueFull:
            wait_until(lambda: app.queue_info("pq")["waiting"] < 5)
    ran = [e["tag"] for e in ledger.wait_for(30, "ran")]
    assert ran == [f"t{i}" for i in range(30)]


# -- the CLI ---------------------------------------------------------------------------


def test_cli_sets_and_shows_limits_and_priorities(app: rpqueue.RPQueue, redis_url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from rpqueue import cli

    def run(*argv: str) -> str:
        assert cli.main([*argv]) == 0
        captured = capsys.readouterr()
        return captured.out + captured.err

    out = run("limit", "--url", redis_url, "pq", "7", "--overflow", "drop_oldest", "--create")
    assert "max_len 7, overflow drop_oldest" in out
    assert rpqueue.queue_limit("pq") == {"max_len": 7, "overflow": "drop_oldest"}
    policies.step.execute("urgent", priority=-4)
    policies.step.execute("once", unique_for=60, unique_key="k1")
    listing = run("--url", redis_url)
    assert re.search(r"pq\s.*7 drop_oldest", listing), listing
    items = run("--url", redis_url, "--queue", "pq")
    assert re.search(r"waiting\s.*policies\.step.*-4", items), items
    assert "policies.step:" in items  # the unique key column (narrow terminals clip it)
    assert "unbounded" in run("limit", "--url", redis_url, "pq", "--off")
    assert rpqueue.queue_limit("pq") is None
