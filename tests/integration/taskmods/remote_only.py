"""Tasks only workers import: tests call them by name through the registry in Redis.

No test module may import this one.
"""

from __future__ import annotations

from typing import Any

from ledger import note

from rpqueue import task


@task(queue="remote_q", attempts=2, save_results=30)
def remote_add(a: int, b: int, **kwargs: Any) -> int:
    note("ran", tag="remote_add", args=[a, b], kwargs=kwargs)
    return a + b


@task
def remote_plain(tag: str) -> None:
    note("ran", tag=tag)
