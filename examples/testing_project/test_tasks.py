"""Testing the tasks in tasks.py with rpqueue.testing: a real worker in
this process against a temporary redis-server, and eager mode."""

from __future__ import annotations

import pytest
import tasks

import rpqueue
from rpqueue.testing import InProcessWorker


def test_a_real_worker_runs_the_task(rpqueue_worker: InProcessWorker) -> None:
    handle = tasks.add.options(priority=1).execute(2, 3)
    rpqueue_worker.drain(timeout=10)
    assert handle.state == "succeeded"
    assert handle.result == 5


def test_drain_waits_for_tasks_queued_by_tasks(rpqueue_worker: InProcessWorker) -> None:
    tasks.SENT.clear()
    tasks.signup.execute("Ann@Example.com")
    rpqueue_worker.drain(timeout=10)
    assert tasks.SENT == ["Ann@Example.com"]


def test_drain_waits_for_retries(rpqueue_worker: InProcessWorker) -> None:
    handle = tasks.flaky_fetch.execute("https://example.com", 2)
    rpqueue_worker.drain(timeout=10)
    assert handle.result == "fetched https://example.com"


def test_delayed_tasks_can_be_run_now(rpqueue_worker: InProcessWorker) -> None:
    handle = tasks.add.options(delay=3600).execute(1, 1)
    rpqueue_worker.drain(timeout=10, run_delayed=True)
    assert handle.result == 2


def test_eager_mode_runs_tasks_at_execute(rpqueue_eager: rpqueue.RPQueue) -> None:
    tasks.SENT.clear()
    assert tasks.signup.execute("bob@example.com").result == "bob@example.com"
    assert tasks.SENT == ["bob@example.com"]  # the task it queued ran too


def test_eager_mode_retries_and_records_the_error(rpqueue_eager: rpqueue.RPQueue) -> None:
    assert tasks.flaky_fetch.execute("u", 2).result == "fetched u"
    failed = tasks.flaky_fetch.execute("u", 3)
    assert failed.state == "failed"
    assert isinstance(failed.inline_error, ConnectionError)
    with pytest.raises(rpqueue.TaskFailed):
        failed.get()


def test_bad_arguments_are_refused_at_execute(rpqueue_app: rpqueue.RPQueue) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        tasks.add.execute(1, 2, c=3)
    assert rpqueue_app.queue_sizes() == []
