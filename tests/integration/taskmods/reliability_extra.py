"""Tasks only some workers of tests/integration/test_reliability_two.py define."""

from __future__ import annotations

from ledger import hold, note

from rpqueue import task


@task(queue="newq")
def extra(tag: str) -> None:
    note("ran", tag=tag)


@task(queue="newq")
def busy(tag: str) -> None:
    """Keeps its worker's only thread until the test releases ``tag``."""
    note("started", tag=tag)
    hold(tag, 30)
