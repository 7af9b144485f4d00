"""An ordinary task (called delayed by the test) and an hourly periodic task."""

from periodic_ledger import record

import rpqueue
from rpqueue import periodic_task, task


@task(save_results=60, name="flush.job")
def job(tag: str) -> str:
    record("flush.job", tag=tag)
    return f"ran {tag}"


@periodic_task(3600, name="flush.hourly")
def hourly() -> None:
    record("flush.hourly")


@task(name="flush.gate")
def gate(seconds: float = 20) -> str:
    """Run until the test pushes to 'release:flush.gate' (or ``seconds`` pass)."""
    record("flush.gate", event="started")
    released = rpqueue.default_app().client.blpop(["release:flush.gate"], timeout=seconds)
    record("flush.gate", event="finished", released=released is not None)
    return "gated"
