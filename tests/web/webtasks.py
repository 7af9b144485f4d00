"""Tasks for the dashboard's browser tests, run by a real worker whose
working directory is tests/web (``python -m rpqueue.run --module=webtasks``).

The test process never imports this module: it queues calls by task name,
so nothing here registers in the test process's default app.
"""

from __future__ import annotations

import rpqueue

# Labels in this set make ``sometimes`` raise; the tests add and remove them
# to get a real dead letter and then a successful rerun of the same task.
FAIL = "webtest:fail"
# Every label ``sometimes`` ran to completion, in order.
DONE = "webtest:done"


# Results kept a minute: the task page shows them (test_dashboard_actions.py).
@rpqueue.task(queue="web", use_dead=True, save_results=60)
def sometimes(label: str, *extra: object) -> str:
    client = rpqueue.default_app().client
    if client.sismember(FAIL, label):
        raise RuntimeError(f"told to fail: {label}")
    client.rpush(DONE, label)
    return label


@rpqueue.periodic_task(3600, queue="web")
def hourly_rollup() -> None:
    """Only here so that the schedule section has a periodic task."""


@rpqueue.cron_task("0 5 * * mon", queue="web")
def weekly_cleanup() -> None:
    """Only here so that the schedule section has a cron task."""
