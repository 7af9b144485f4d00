"""retry_on with exponential backoff and jitter, with real workers (issue #7).

backoff=0.5: the n-th retry waits 0.5 * 2**(n-1) s, jittered to 50-100 % of
that, so the first wait is in [0.25, 0.5] s and the second in [0.5, 1.0] s.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from ops_support import (
    Ledger,
    OpsWorkers,
    dead_records,
    task_ref,
    wait_until,
)

import rpqueue

# The ledger fixture reads what the ops task modules noted (ops_ledger.py).
pytestmark = pytest.mark.ops_ledger

SLACK = 0.25  # scheduling and round trips on a busy machine


def _gaps(runs: list[dict[str, Any]]) -> list[float]:
    return [b["t"] - a["t"] for a, b in itertools.pairwise(runs)]


def _check_backoff(gaps: list[float]) -> None:
    first, second = gaps
    assert 0.25 - 0.05 <= first <= 0.5 + SLACK, gaps
    assert 0.5 - 0.05 <= second <= 1.0 + SLACK, gaps
    assert second >= first - 0.05, gaps  # never shorter: the ranges meet at 0.5 s


def test_retry_on_with_visibility_timeout(app: rpqueue.RPQueue, ops: OpsWorkers,
                                          ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.flaky_vis").execute("vis")
    runs = ledger.wait_for(3, "run", tag="vis")
    wait_until(lambda: dead_records(app, "ops"), message="dead-lettered after 3 runs")
    [dead] = dead_records(app, "ops")
    assert dead["id"] == et.taskid
    assert dead["reason"] == "task raised an exception"
    assert "Flaky: flaky vis" in dead["error"]
    assert dead["attempts_used"] == 3
    runs = ledger.events("run", tag="vis")
    assert len(runs) == 3
    assert [r["left"] for r in runs] == [3, 2, 1]
    assert {r["id"] for r in runs} == {et.taskid}
    _check_backoff(_gaps(runs))
    stats = app.queue_info("ops")["stats"]  # type: ignore[attr-defined]
    assert stats["retried"] == 2 and stats["failed"] == 1 and stats["dead"] == 1


def test_retry_on_for_a_0_1_task(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.flaky_01").execute("zero-one")
    ledger.wait_for(3, "run", tag="zero-one")
    wait_until(lambda: dead_records(app, "ops"), message="the last run dead-lettered")
    runs = ledger.events("run", tag="zero-one")
    assert len(runs) == 3
    assert [r["left"] for r in runs] == [3, 2, 1]
    # Each retry is a new delivery of the same task id (issue #17: the first
    # handle follows its retries), and the dead letter counts every attempt.
    assert {r["id"] for r in runs} == {et.taskid}
    _check_backoff(_gaps(runs))
    [dead] = dead_records(app, "ops")
    assert dead["id"] == et.taskid and dead["reason"] == "task raised an exception"
    assert dead["attempts_used"] == 3


def test_0_1_task_not_retried_for_another_exception(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                    ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.wrong_error_01").execute("other")
    wait_until(lambda: dead_records(app, "ops"), message="dead-lettered")
    [dead] = dead_records(app, "ops")
    assert dead["id"] == et.taskid and "ValueError" in dead["error"]
    # Nothing else comes: a retry would have run within backoff (0.1 s) + slack.
    task_ref(app, "ops_tasks.record").execute("marker", delay=0.6)
    ledger.wait_for(1, "record", tag="marker")
    assert len(ledger.events("run", tag="other")) == 1


def test_vis_task_not_retried_for_another_exception(app: rpqueue.RPQueue, ops: OpsWorkers,
                                                    ledger: Ledger) -> None:
    ops.start("ops_tasks", "ops")
    et = task_ref(app, "ops_tasks.wrong_error_vis").execute("other-vis")
    wait_until(lambda: dead_records(app, "ops"), message="dead-lettered")
    [dead] = dead_records(app, "ops")
    assert dead["id"] == et.taskid and "ValueError" in dead["error"]
    assert len(ledger.events("run", tag="other-vis")) == 1


def test_default_stays_manual_retry(app: rpqueue.RPQueue, ops: OpsWorkers,
                                    ledger: Ledger) -> None:
    """Without retry_on a raising 0/1 task is not retried; retry() still works."""
    ops.start("ops_tasks", "ops")
    boom = task_ref(app, "ops_tasks.boom").execute("once")
    task_ref(app, "ops_tasks.manual_retry").execute("manual")
    runs = ledger.wait_for(3, "run", tag="manual")
    assert [r["left"] for r in runs] == [3, 2, 1]
    task_ref(app, "ops_tasks.record").execute("marker", delay=0.3)
    ledger.wait_for(1, "record", tag="marker")
    assert len(ledger.events("boom", tag="once")) == 1
    assert len(ledger.events("run", tag="manual")) == 3
    assert boom.status not in ("waiting", "early", "late", "started")
