"""A periodic task for tests/cluster (its own module: workers of other tests
should not run a scheduler)."""

from __future__ import annotations

from cluster_tasks import note

import rpqueue

PERIOD = 1.0
QUEUE = "cluster-periodic"


@rpqueue.periodic_task(PERIOD, queue=QUEUE)
def tick() -> None:
    note("tick")
