"""A worker process with several threads, under a burst of quick tasks: every
task runs once and is recorded, and no worker thread hits a Redis error.

A regression test: each worker thread must use its own connection for the
hot-path scripts (app.direct(), called in the thread itself); threads that
shared one socket mixed up replies ('Bad file descriptor', 'connection has
unread data', IndexError) and lost outcomes."""

from __future__ import annotations

from ops_support import (
    OpsWorkers,
    task_ref,
    wait_until,
)

import rpqueue


def test_several_threads_share_no_connection(app: rpqueue.RPQueue, ops: OpsWorkers) -> None:
    worker = ops.start("ops_tasks", "ops", args=["--threads", "4"])
    record = task_ref(app, "ops_tasks.record")
    record.execute_many([(f"t{i}",) for i in range(300)])

    def settled() -> bool:
        log = worker.stderr()
        return ("Redis unreachable" in log or "worker thread error" in log
                or app.queue_info("ops")["stats"].get("done", 0) >= 300)  # type: ignore[attr-defined]

    wait_until(settled, timeout=20, message="300 tasks done, or a worker thread error")
    log = worker.stderr()
    assert "Redis unreachable" not in log
    assert "worker thread error" not in log
    assert app.queue_info("ops")["stats"]["done"] == 300  # type: ignore[attr-defined]
