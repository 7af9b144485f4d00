"""Tasks run by ``rpqueue demo``'s workers (python -m rpqueue.run --module=rpqueue.demo_tasks)."""

from __future__ import annotations

from typing import Any

from . import default_app, periodic_task, task


def _key(name: str) -> str:
    return default_app().prefix + "demo:" + name


@task(queue="high")
def checkout(order: int) -> int:
    return sum(range(order % 100))


@task(queue="low")
def report(n: int) -> int:
    return n * 2


@task(queue="high", save_results=300)
def add(a: int, b: int) -> int:
    return a + b


@task(queue="low", attempts=3, retry_delay=0.2)
def flaky(label: str, **kwargs: Any) -> str | None:
    """Fails on its first two attempts, then succeeds: manual retries at work."""
    left = kwargs.get("_attempts", 1)
    default_app().client.incr(_key("flaky_runs"))
    if left > 1:
        flaky.retry(label, **kwargs)
        return None
    default_app().client.set(_key("flaky_ok"), label)
    return label


@periodic_task(1, queue="low")
def tick() -> None:
    default_app().client.incr(_key("ticks"))
