"""rpqueue as the backend of Django's Tasks framework (issue 22), with the
small Django project in tests/django_project and real workers started the
way users start them: ``python manage.py rpqueue_worker``.

Django 6's ``django.tasks`` needs Python 3.12; on older Pythons the
``django-tasks`` backport (the same API) stands in for it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from support.worker import WorkerProcess, Workers, wait_until

pytest.importorskip("django")

PROJECT = Path(__file__).resolve().parents[1] / "django_project"
MODS = Path(__file__).parent / "ecosystemmods"


@pytest.fixture(scope="module")
def django_ready() -> Iterator[None]:
    """Django set up in this process with the test project's settings."""
    import django

    sys.path.insert(0, str(PROJECT))
    before = os.environ.get("DJANGO_SETTINGS_MODULE")
    os.environ["DJANGO_SETTINGS_MODULE"] = "djproject.settings"
    django.setup()
    yield
    sys.path.remove(str(PROJECT))
    # Later tests' child processes must not inherit the test project.
    if before is None:
        os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    else:
        os.environ["DJANGO_SETTINGS_MODULE"] = before


@pytest.fixture
def backend(django_ready: None, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from rpqueue.contrib.django import api

    monkeypatch.syspath_prepend(str(MODS))  # shop.tasks notes runs in the eco ledger
    found = api.task_backends()["default"]
    found.app.set_redis_url(redis_url)
    return found


@pytest.fixture
def start_worker(workers: Workers, redis_url: str) -> Callable[..., WorkerProcess]:
    def start(*args: str, ready: int = 1) -> WorkerProcess:
        env = {"PYTHONPATH": str(MODS), "RPQUEUE_DJANGO_URL": redis_url,
               "ECO_REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "djproject.settings"}
        return workers.add([sys.executable, str(PROJECT / "manage.py"), "rpqueue_worker", *args],
                           env=env, ready=ready)

    return start


def finished(task: Any, rid: str) -> Callable[[], Any]:
    def check() -> Any:
        result = task.get_result(rid)
        return result if result.is_finished else None
    return check


def ledger(rcli: Any) -> list[dict[str, Any]]:
    from eco_ledger import read

    return read(rcli, "django")


def test_enqueue_run_and_read_the_result(backend: Any, start_worker: Any) -> None:
    from shop.tasks import add

    from rpqueue.contrib.django import api

    result = add.enqueue(2, 3)
    assert result.status == api.TaskResultStatus.READY
    assert result.backend == "default" and result.args == [2, 3]
    pending = add.get_result(result.id)
    assert pending.status == api.TaskResultStatus.READY and pending.args == [2, 3]
    assert pending.enqueued_at is not None and pending.started_at is None

    start_worker()
    done = wait_until(finished(add, result.id), 30, message="add() finished")
    assert done.status == api.TaskResultStatus.SUCCESSFUL
    assert done.return_value == 5
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert len(done.worker_ids) == 1 and done.attempts == 1
    result.refresh()
    assert result.status == api.TaskResultStatus.SUCCESSFUL and result.return_value == 5


def test_a_failing_task_is_failed_with_its_error(backend: Any, start_worker: Any) -> None:
    from shop.tasks import fail

    from rpqueue.contrib.django import api

    result = fail.enqueue("no such order 42")
    start_worker()
    done = wait_until(finished(fail, result.id), 30, message="fail() finished")
    assert done.status == api.TaskResultStatus.FAILED
    (error,) = done.errors
    assert error.exception_class_path == "builtins.ValueError"
    assert error.exception_class is ValueError
    assert "no such order 42" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        done.return_value  # noqa: B018 - the framework raises for a failed task


def test_higher_priority_runs_first(backend: Any, start_worker: Any, rcli: Any) -> None:
    from shop.tasks import record

    for priority in (-10, 0, 50, 100, -100):
        record.using(priority=priority).enqueue(f"p{priority}")
    start_worker()
    wait_until(lambda: len(ledger(rcli)) >= 5, 30, message="five runs")
    assert [r["tag"] for r in ledger(rcli)] == ["p100", "p50", "p0", "p-10", "p-100"]


def test_run_after_defers_the_call(backend: Any, start_worker: Any) -> None:
    from django.utils import timezone
    from shop.tasks import add

    from rpqueue.contrib.django import api

    start_worker()
    when = timezone.now() + timedelta(seconds=2)
    result = add.using(run_after=when).enqueue(1, 1)
    assert add.get_result(result.id).status == api.TaskResultStatus.READY
    done = wait_until(finished(add, result.id), 30, message="the deferred add() finished")
    assert done.return_value == 2
    assert done.task.run_after == when
    assert done.started_at >= when


def test_context_queues_and_async_enqueue(backend: Any, start_worker: Any) -> None:
    from shop.tasks import send_email, with_context

    start_worker()
    ctx = with_context.enqueue(4)
    mail = send_email.enqueue("ada@example.com")
    assert mail.task.queue_name == "emails" and mail.id.endswith(":emails")
    queued = asyncio.run(send_email.aenqueue("bob@example.com"))
    got = wait_until(finished(with_context, ctx.id), 30, message="with_context() finished")
    assert got.return_value == {"id": ctx.id, "attempt": 1, "x": 4}
    for rid, to in ((mail.id, "ada@example.com"), (queued.id, "bob@example.com")):
        sent = wait_until(finished(send_email, rid), 30, message="send_email() finished")
        assert sent.return_value == f"sent to {to}"


def test_enqueue_on_commit_sends_only_committed_calls(backend: Any, start_worker: Any,
                                                     rcli: Any) -> None:
    from django.db import transaction
    from shop.tasks import record

    from rpqueue.contrib.django import api

    sent: list[Any] = []

    def on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
        sent.append(task_result)

    api.task_enqueued.connect(on_enqueued)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            transaction.on_commit(partial(record.enqueue, "rolled back"))
            raise RuntimeError("the order could not be saved")
        assert sent == []
        with transaction.atomic():
            transaction.on_commit(partial(record.enqueue, "committed"))
            assert sent == []  # not before the commit
        assert len(sent) == 1
    finally:
        api.task_enqueued.disconnect(on_enqueued)
    start_worker()
    wait_until(finished(record, sent[0].id), 30, message="the committed call ran")
    assert [r["tag"] for r in ledger(rcli)] == ["committed"]


def test_bad_input_is_refused_clearly(backend: Any) -> None:
    from shop.tasks import add

    from rpqueue.contrib.django import RPQueueBackend, api

    with pytest.raises(api.InvalidTask, match="Queue 'nope' is not valid"):
        add.using(queue_name="nope")
    with pytest.raises(api.ResultDoesNotExist, match="not an rpqueue result id"):
        backend.get_result("garbage")
    with pytest.raises(api.ResultDoesNotExist, match="unknown, or its result expired"):
        backend.get_result("0nknownTaskId000000000:default")
    with pytest.raises(api.InvalidTask, match=r"unknown OPTIONS .* URLL"):
        RPQueueBackend("other", {"OPTIONS": {"URLL": "redis://x"}})
    with pytest.raises(api.InvalidTask, match="RESULT_TTL"):
        RPQueueBackend("other", {"OPTIONS": {"RESULT_TTL": -1}})


def test_the_worker_command_refuses_a_queue_the_backend_lacks(
        backend: Any, start_worker: Any) -> None:
    worker = start_worker("nope", ready=0)
    assert worker.wait_exit() != 0
    assert "queue(s) 'nope' not in the QUEUES of task backend 'default'" in worker.log()
