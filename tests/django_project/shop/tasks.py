"""The project's tasks, written against the Tasks framework only."""

from __future__ import annotations

from typing import Any

try:  # Django 6+
    from django.tasks import task
except ImportError:  # older Django with the django-tasks backport
    from django_tasks import task

from eco_ledger import note


@task()
def add(a: int, b: int) -> int:
    note("django", task="add", args=[a, b])
    return a + b


@task()
def record(tag: str) -> None:
    """Notes the order calls run in."""
    note("django", task="record", tag=tag)


@task()
def fail(reason: str) -> None:
    raise ValueError(reason)


@task(takes_context=True)
def with_context(context: Any, x: int) -> dict[str, Any]:
    return {"id": context.task_result.id, "attempt": context.attempt, "x": x}


@task(queue_name="emails")
def send_email(to: str) -> str:
    note("django", task="send_email", to=to)
    return f"sent to {to}"
