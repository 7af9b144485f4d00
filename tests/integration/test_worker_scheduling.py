"""Anti-starvation scheduling (worker/scheduling.py) with real worker processes:
weighted shares, aging, the settings API and the CLI. Strict order, the
default, is what test_worker_priority.py checks."""

from __future__ import annotations

import time
from itertools import groupby
from typing import Any

import pytest
import scheduling_tasks as st
from harness import Ledger, Workers

import rpqueue
from rpqueue import cli

AGE = 1.0
# How late past AGE an aged task may start: the age check runs every
# min(AGE / 4, 0.25) s, plus the 10 ms task in hand, plus a slow CI box.
AGE_TOLERANCE = 0.75


def _served(ledger: Ledger, n: int) -> list[str]:
    return [e["queue"] for e in ledger.wait_for(n, "ran")][:n]


def _gate_busy(ledger: Ledger, queue: str) -> None:
    st.gate.execute("busy", _queue=queue)
    ledger.wait_for(1, "started", tag="busy")


# -- weighted ----------------------------------------------------------------------


def test_weighted_serves_queues_three_to_one(app: rpqueue.RPQueue, workers: Workers,
                                             ledger: Ledger) -> None:
    rpqueue.set_scheduling("weighted")
    rpqueue.set_queue_weight("a", 3)
    rpqueue.set_queue_weight(b"b", 1)
    for q in ("a", "b"):
        st.work.execute_many([(f"{q}{i}",) for i in range(40)], _queue=q)
    workers.start("scheduling_tasks", "a", "b")  # strict order would run all of a first
    served = _served(ledger, 40)
    assert abs(served.count("a") - 30) <= 2, served
    # Interleaved, not in bursts: b's turn comes about every fourth task.
    assert max(len(list(run)) for q, run in groupby(served) if q == "a") <= 4, served
    assert "b" in served[:4], served


def test_weighted_shares_hold_when_async_tasks_are_taken_in_batches(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    rpqueue.set_scheduling("weighted")
    rpqueue.set_queue_weight("async_a", 3)
    st.awork_a.execute_many([(f"a{i}",) for i in range(40)])
    st.awork_b.execute_many([(f"b{i}",) for i in range(40)])
    workers.start("scheduling_tasks", "async_a", "async_b")
    served = _served(ledger, 40)
    # A batch takes only as many from one queue as its share gives in a row.
    assert abs(served.count("async_a") - 30) <= 2, served
    assert max(len(list(run)) for q, run in groupby(served) if q == "async_a") <= 4, served


def test_a_busy_worker_picks_up_a_new_mode(app: rpqueue.RPQueue, workers: Workers,
                                           ledger: Ledger) -> None:
    workers.start("scheduling_tasks", "a", "b")
    _gate_busy(ledger, "a")
    # While the worker runs a task, in strict order:
    rpqueue.set_scheduling("weighted")
    for q in ("a", "b"):
        st.work.execute_many([(f"{q}{i}",) for i in range(4)], _queue=q)
    ledger.release("busy")
    # Equal weights: turn about.
    assert _served(ledger, 8) == ["a", "b"] * 4


# -- aging ---------------------------------------------------------------------------


def _low_behind_a_busy_high(workers: Workers, ledger: Ledger, high_tasks: int) -> tuple[
        float, list[dict[str, Any]]]:
    """A low task queued while the worker is busy, then a backlog of 10 ms high
    tasks. Returns when the low task was queued and the ledger once it ran."""
    workers.start("scheduling_tasks", "high", "low")
    _gate_busy(ledger, "high")
    queued = time.time()
    st.work.execute("low", _queue="low")
    st.work.execute_many([(f"h{i}", 0.01) for i in range(high_tasks)], _queue="high")
    ledger.release("busy")
    ledger.wait_for(1, "ran", tag="low", timeout=high_tasks * 0.01 + 15)
    return queued, ledger.events("ran")


def test_aging_serves_a_task_that_waited_past_the_age(app: rpqueue.RPQueue,
                                                      workers: Workers,
                                                      ledger: Ledger) -> None:
    rpqueue.set_scheduling("aging", age=AGE)
    queued, ran = _low_behind_a_busy_high(workers, ledger, 400)
    low = next(i for i, e in enumerate(ran) if e["tag"] == "low")
    waited = ran[low]["at"] - queued
    # Strict order until it aged, then first, well before the high queue is empty.
    assert AGE <= waited <= AGE + AGE_TOLERANCE, waited
    assert 0 < low < 400, low
    assert app.queue_info("high")["waiting"] > 0  # type: ignore[attr-defined]


def test_strict_order_leaves_the_low_task_for_last(app: rpqueue.RPQueue, workers: Workers,
                                                   ledger: Ledger) -> None:
    """The same load without aging: the default is unchanged."""
    _, ran = _low_behind_a_busy_high(workers, ledger, 40)
    assert [e["tag"] for e in ran][-1] == "low" and len(ran) == 41


# -- settings ------------------------------------------------------------------------


def test_settings_round_trip_and_bump_the_queue_version(app: rpqueue.RPQueue,
                                                        rcli: Any) -> None:
    assert rpqueue.get_scheduling() == {"mode": "strict", "age": None}
    assert rpqueue.queue_weights() == {}
    version = int(rcli.get(app.keys.queues_version) or 0)
    rpqueue.set_scheduling("aging", age=2.5)
    assert rpqueue.get_scheduling() == {"mode": "aging", "age": 2.5}
    rpqueue.set_scheduling("weighted")
    assert rpqueue.get_scheduling() == {"mode": "weighted", "age": None}
    rpqueue.set_queue_weight("mail", 3)
    rpqueue.set_queue_weight(b"bytesq", 0.5)
    assert rpqueue.queue_weights() == {"mail": 3.0, "bytesq": 0.5}
    assert int(rcli.get(app.keys.queues_version)) >= version + 4
    # Listed like a queue with a priority, before anything used it.
    assert {"mail", "bytesq"} <= set(rpqueue.known_queues())


@pytest.mark.parametrize(("call", "named"), [
    (lambda: rpqueue.set_scheduling("fair"), "'fair'"),
    (lambda: rpqueue.set_scheduling("aging"), "age="),
    (lambda: rpqueue.set_scheduling("aging", age=0), "0"),
    (lambda: rpqueue.set_scheduling("aging", age=-3), "-3"),
    (lambda: rpqueue.set_scheduling("weighted", age=5), "age=5"),
    (lambda: rpqueue.set_queue_weight("mail", 0), "0"),
    (lambda: rpqueue.set_queue_weight("mail", -1), "-1"),
    (lambda: rpqueue.set_queue_weight("mail", "heavy"), "'heavy'"),
    (lambda: rpqueue.set_queue_weight("", 2), "empty"),
])
def test_bad_settings_are_refused_and_nothing_is_written(app: rpqueue.RPQueue, rcli: Any,
                                                         call: Any, named: str) -> None:
    rpqueue.set_scheduling("aging", age=4)
    rpqueue.set_queue_weight("mail", 2)
    before = {k: rcli.dump(k) for k in rcli.keys("*")}
    with pytest.raises(ValueError, match=named):
        call()
    assert {k: rcli.dump(k) for k in rcli.keys("*")} == before
    assert rpqueue.get_scheduling() == {"mode": "aging", "age": 4.0}


def test_cli_round_trip(app: rpqueue.RPQueue, redis_url: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    def run(*argv: str) -> tuple[int, str]:
        code = cli.main([*argv, "--url", redis_url])
        out = capsys.readouterr()
        return code, out.out + out.err

    assert run("scheduling") == (0, "scheduling: strict\n")
    assert run("scheduling", "aging", "--age", "2") == (0, "scheduling: aging, age 2s\n")
    assert rpqueue.get_scheduling() == {"mode": "aging", "age": 2.0}
    assert run("weight", "mail", "3", "--create") == (0, "weight of 'mail': 3\n")
    assert run("weight", "mail") == (0, "weight of 'mail': 3\n")
    assert run("weight", "other", "--create") == (0, "weight of 'other': 1 (default)\n")
    assert run("scheduling", "weighted") == (
        0, "scheduling: weighted\nweights: 'mail' 3 (others 1)\n")
    assert rpqueue.get_scheduling() == {"mode": "weighted", "age": None}
    # Refused with the library's message; nothing changes.
    code, out = run("scheduling", "aging")
    assert code == 2 and "age" in out
    code, out = run("scheduling", "fair")
    assert code == 2 and "'fair'" in out
    code, out = run("weight", "mail", "0")
    assert code == 2 and "weight must be a number > 0" in out
    assert rpqueue.get_scheduling() == {"mode": "weighted", "age": None}
    assert rpqueue.queue_weights() == {"mail": 3.0}
