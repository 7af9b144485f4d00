"""sec_tasks plus a periodic task: a worker with a scheduler thread."""

from __future__ import annotations

from sec_tasks import *  # noqa: F403
from sec_tasks import note

from rpqueue import periodic_task


@periodic_task(run_every=1, queue="sec-periodic")
def tick() -> None:
    note("tick")
