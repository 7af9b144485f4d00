"""Prometheus metrics with real workers (issue #7): ``--metrics-port``, counters from
the lifecycle hooks, queue gauges read from Redis at scrape time, and
prometheus_client's multiprocess mode with ``--processes``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ops_support import (
    Ledger,
    OpsWorkers,
    free_port,
    samples,
    scrape,
    task_ref,
    wait_until,
)

import rpqueue

# The ledger fixture reads what the ops task modules noted (ops_ledger.py).
pytestmark = pytest.mark.ops_ledger

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _value(s: Samples, name: str, **labels: str) -> float:
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


def _total(s: Samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` that has these labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in s.items() if n == name and want <= set(ls))


def _wait_metric(port: int, name: str, value: float, **labels: str) -> Samples:
    def reached() -> Samples | None:
        s = samples(scrape(port))
        return s if _total(s, name, **labels) == value else None

    return wait_until(reached, message=lambda: f"{name}{labels} == {value} in:\n{scrape(port)}")


def test_counters_histogram_and_queue_gauges(app: rpqueue.RPQueue, ops: OpsWorkers,
                                             ledger: Ledger) -> None:
    port = free_port()
    worker = ops.start("ops_tasks", "ops", args=["--metrics-port", str(port),
                                                 "--metrics-addr", "127.0.0.1"])
    assert f"Prometheus metrics at http://127.0.0.1:{port}/metrics" in worker.stderr()
    record = task_ref(app, "ops_tasks.record")
    for i in range(3):
        record.execute(f"r{i}")
    task_ref(app, "ops_tasks.flaky_vis").execute("vis")  # fails 3 times: 2 retries, then dead
    task_ref(app, "ops_tasks.boom").execute("boom")
    s = _wait_metric(port, "rpqueue_tasks_dead_total", 1)
    ok = {"queue": "ops", "task": "ops_tasks.record"}
    flaky = {"queue": "ops", "task": "ops_tasks.flaky_vis"}
    s = _wait_metric(port, "rpqueue_tasks_failed_total", 1, task="ops_tasks.boom")
    assert _value(s, "rpqueue_tasks_started_total", **ok) == 3
    assert _value(s, "rpqueue_tasks_succeeded_total", **ok) == 3
    assert _value(s, "rpqueue_tasks_failed_total", **ok) == 0
    assert _value(s, "rpqueue_tasks_started_total", **flaky) == 3
    assert _value(s, "rpqueue_tasks_failed_total", **flaky) == 3
    assert _value(s, "rpqueue_tasks_retried_total", **flaky) == 2
    assert _value(s, "rpqueue_tasks_dead_total", **flaky) == 1
    assert _value(s, "rpqueue_task_duration_seconds_count", **ok) == 3
    assert _value(s, "rpqueue_task_duration_seconds_bucket", le="+Inf", **ok) == 3
    assert 0 < _value(s, "rpqueue_task_duration_seconds_sum", **ok) < 3
    # From Redis: the queue's own stats, whoever enqueued.
    assert _value(s, "rpqueue_enqueued_total", queue="ops") == 5
    assert _value(s, "rpqueue_queue_dead_letters", queue="ops") == 1
    assert _value(s, "rpqueue_redis_up") == 1
    assert _value(s, "rpqueue_workers") == 1

    # Depth, delayed and in flight, on a queue the worker does not serve and one it does.
    for i in range(4):
        record.execute(f"parked{i}", _queue="parked")
    for i in range(2):
        record.execute(f"later{i}", _queue="parked", delay=600)
    task_ref(app, "ops_tasks.gate").execute("busy")
    ledger.wait_for(1, "gate", tag="busy")
    s = samples(scrape(port))
    assert _value(s, "rpqueue_queue_waiting", queue="parked") == 4
    assert _value(s, "rpqueue_queue_delayed", queue="parked") == 2
    assert _value(s, "rpqueue_queue_in_flight", queue="parked") == 0
    assert _value(s, "rpqueue_queue_in_flight", queue="ops") == 1
    assert _value(s, "rpqueue_queue_waiting", queue="ops") == 0
    assert _value(s, "rpqueue_enqueued_total", queue="parked") == 6
    ledger.release("busy")
    _wait_metric(port, "rpqueue_queue_in_flight", 0, queue="ops")
    # (One scrape is not a snapshot: families are read one after the other.)
    s = _wait_metric(port, "rpqueue_tasks_succeeded_total", 1, queue="ops",
                     task="ops_tasks.gate")
    # One process: its own process metrics are there too.
    assert _value(s, "process_cpu_seconds_total") > 0


def test_several_processes(app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger) -> None:
    port = free_port()
    worker = ops.start("ops_tasks", "ops", args=["--processes", "2", "--metrics-port", str(port),
                                                 "--metrics-addr", "127.0.0.1"], ready=2)
    pause = task_ref(app, "ops_tasks.pause")
    for i in range(12):
        pause.execute(f"p{i}", 0.1)
    ledger.wait_for(12, "pause")
    pids = {e["pid"] for e in ledger.events("pause")}
    assert len(pids) == 2, "both worker processes ran tasks"
    labels = {"queue": "ops", "task": "ops_tasks.pause"}
    s = _wait_metric(port, "rpqueue_tasks_succeeded_total", 12, **labels)
    assert _value(s, "rpqueue_tasks_started_total", **labels) == 12
    assert _value(s, "rpqueue_task_duration_seconds_count", **labels) == 12
    assert _value(s, "rpqueue_enqueued_total", queue="ops") == 12
    assert _value(s, "rpqueue_workers") == 2

    # A worker process killed and replaced: what it counted stays counted.
    os.kill(pids.pop(), signal.SIGKILL)
    worker.wait_log("starting another")
    worker.wait_log("serving", count=3)
    for i in range(4):
        pause.execute(f"q{i}", 0.0)
    s = _wait_metric(port, "rpqueue_tasks_succeeded_total", 16, **labels)
    assert _value(s, "rpqueue_tasks_started_total", **labels) == 16
    # The supervisor serves; the children do not hold its socket.
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(15) == 0
    with pytest.raises(OSError):
        scrape(port)


def test_single_process_with_a_hard_limit_task_uses_multiprocess_mode(
        app: rpqueue.RPQueue, ops: OpsWorkers, ledger: Ledger) -> None:
    port = free_port()
    worker = ops.start("ops_limits", "limits", args=["--metrics-port", str(port),
                                                     "--metrics-addr", "127.0.0.1"])
    assert "multiprocess mode" in worker.stderr()
    task_ref(app, "ops_limits.whoami").execute("w")
    task_ref(app, "ops_limits.spin_hard").execute("spin")
    s = _wait_metric(port, "rpqueue_tasks_dead_total", 1, task="ops_limits.spin_hard")
    assert _value(s, "rpqueue_tasks_succeeded_total", queue="limits",
                  task="ops_limits.whoami") == 1
    assert _value(s, "rpqueue_tasks_failed_total", queue="limits",
                  task="ops_limits.spin_hard") == 1


def test_redis_down_still_answers(app: rpqueue.RPQueue, ops: OpsWorkers, tmp_path: Path) -> None:
    """The gauges come from Redis; when it cannot be read, the scrape says so."""
    import redis

    from rpqueue.metrics import QueueCollector
    from rpqueue.storage.connection import no_retry

    dead = rpqueue.new_rpqueue("ops-metrics-unreachable")
    dead.set_redis_connection(redis.Redis(port=free_port(), socket_connect_timeout=1,
                                          retry=no_retry()))
    families = list(QueueCollector(dead).collect())
    assert [(f.name, f.samples[0].value) for f in families] == [("rpqueue_redis_up", 0)]


def test_start_and_close_in_process(app: rpqueue.RPQueue) -> None:
    from rpqueue.metrics import start_metrics

    app.store.note_queue("ops")
    server = start_metrics(app, 0, "127.0.0.1")  # port 0: any free port
    try:
        assert server.hook in app.hooks
        s = samples(scrape(server.port))
        assert _value(s, "rpqueue_redis_up") == 1
        assert _value(s, "rpqueue_queue_waiting", queue="ops") == 0
    finally:
        server.close()
    assert server.hook not in app.hooks
    with pytest.raises(OSError):
        scrape(server.port)


def test_missing_prometheus_client_is_a_clear_error(redis_url: str, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['prometheus_client'] = None; "
            "from rpqueue.run import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "--module=ops_tasks", "--url", redis_url,
                           "--metrics-port", str(free_port())],
                          cwd=Path(__file__).resolve().parent / "opsmods",
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "pip install 'rpqueue[metrics]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_port_in_use_is_a_clear_error(redis_url: str, ops: OpsWorkers) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = ops.start("ops_tasks", "ops", ready=0,
                           args=["--metrics-port", str(port), "--metrics-addr", "127.0.0.1"])
        assert worker.proc.wait(30) == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in worker.stderr()


def test_metrics_names_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "OPERATIONS.md").read_text()
    names: list[Any] = [
        "rpqueue_tasks_started_total", "rpqueue_tasks_succeeded_total",
        "rpqueue_tasks_failed_total", "rpqueue_tasks_retried_total",
        "rpqueue_tasks_dead_total", "rpqueue_task_duration_seconds",
        "rpqueue_queue_waiting", "rpqueue_queue_delayed", "rpqueue_queue_in_flight",
        "rpqueue_queue_dead_letters", "rpqueue_enqueued_total", "rpqueue_workers",
        "rpqueue_redis_up",
    ]
    assert [n for n in names if f"`{n}`" not in doc] == []
