"""Tasks for the queue-policy tests: per-message priority, unique tasks, bounds."""

from __future__ import annotations

from typing import Any

from ledger import hold, note

from rpqueue import task


@task(queue="pq")
def step(tag: str) -> None:
    note("ran", tag=tag)


@task(queue="pq", priority=7)
def background(tag: str) -> None:
    """Declared with a default per-message priority of 7 (after the default 0)."""
    note("ran", tag=tag)


@task(queue="uq", unique_for=60)
def refresh(user: int, seconds: float = 10.0) -> None:
    """Unique by arguments: a second call for the same user merges into the first."""
    note("started", tag=f"refresh-{user}")
    hold(f"refresh-{user}", seconds)
    note("finished", tag=f"refresh-{user}")


@task(queue="uq", unique_for=60, unique_key=lambda report, **_: report["id"],
      on_duplicate="refuse")
def build(report: dict[str, Any]) -> None:
    """Unique by a key function; refuses duplicates instead of merging."""
    note("ran", tag=f"build-{report['id']}", version=report.get("version"))


@task(queue="vq", vis_timeout=30, attempts=3, priority=-1)
def flaky(tag: str, **kwargs: Any) -> None:
    """Fails on its first run: the retry must keep its per-message priority."""
    note("ran", tag=tag, attempts=kwargs.get("_attempts"))
    if tag not in _failed:
        _failed.add(tag)
        raise RuntimeError("first run fails")


_failed: set[str] = set()
