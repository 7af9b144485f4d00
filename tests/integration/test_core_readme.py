"""The seed README's examples, run unchanged (bar Python 2 print statements).

Sections: 'Getting started', 'Example uses', 'Retries' (manual), 'Waiting for
task execution' and 'Automatically storing results of tasks'. The task code
lives verbatim in taskmods/mytasks/ and taskmods/tasks/; the calling code is
verbatim below, inside the tests.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from harness import DelayProxy, Ledger, WorkerProcess, Workers, wait_until

import rpqueue

DB = 2  # not 0, so the positional db argument is exercised too


@pytest.fixture
def where(app: rpqueue.RPQueue, redis_url: str) -> tuple[str, int, int]:
    url = urlparse(redis_url)
    host, port, db = url.hostname, url.port, DB
    assert host is not None and port is not None
    # As in the README: rpqueue.set_redis_connection_settings(host, port, db)
    rpqueue.set_redis_connection_settings(host, port, db)
    return host, port, db


@pytest.fixture
def db_ledger(where: tuple[str, int, int]) -> Iterator[Ledger]:
    """The ledger in the README's db, where the workers write it."""
    host, port, db = where
    client = redis.Redis(host=host, port=port, db=db, decode_responses=True)
    yield Ledger(client)
    client.close()


def _cli_args(where: tuple[str, int, int]) -> list[str]:
    host, port, db = where
    return [f"--host={host}", f"--port={port}", f"--db={db}"]


# -- Getting started --------------------------------------------------------------


def test_getting_started_execute_tasks_daemon(where: tuple[str, int, int], workers: Workers,
                                              rcli: Any) -> None:
    host, port, db = where
    daemon = workers.python("readme_daemon.py", host, str(port), str(db))
    # Ready once it has published its tasks (in its db, under the default prefix).
    mine = redis.Redis(host=host, port=port, db=db, decode_responses=True)
    wait_until(lambda: mine.hexists("rpqueue:tasks", "mytasks.usertasks1.echo_to_stdout"),
               message=lambda: "daemon registered its tasks\n" + daemon.logs())

    from mytasks.usertasks1 import echo_to_stdout

    echo_to_stdout.execute("hello from the README")
    daemon.wait_log("hello from the README", stream="stdout")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    # Everything went to the db the README's call named.
    assert rcli.keys("rpqueue:*") == []
    mine.close()


def test_getting_started_command_line(where: tuple[str, int, int], workers: Workers,
                                      db_ledger: Ledger) -> None:
    """python -m rpqueue.run --module=tasks --host=... --port=... --db=..."""
    worker = workers.start("tasks", url=None, args=_cli_args(where))
    from tasks import accounting, cleanup

    accounting.book.execute(12)
    cleanup.sweep.execute("temp files")
    runs = db_ledger.wait_for(2, "ran")
    assert {(r["tag"], r["queue"]) for r in runs} == {("book", "default"),
                                                     ("sweep", "cleanup")}
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit() == 0


# -- Example uses -----------------------------------------------------------------


def test_example_uses_echo_to_stdout(where: tuple[str, int, int], workers: Workers) -> None:
    worker = workers.start("mytasks.usertasks1", url=None, args=_cli_args(where))
    from mytasks.usertasks1 import echo_to_stdout

    delay_in_seconds = 0.3
    echo_to_stdout.execute("first message")
    echo_to_stdout.execute("delayed message", delay=delay_in_seconds)
    out = worker.wait_log("delayed message", stream="stdout")
    assert out.splitlines() == ["first message", "delayed message"]


def test_example_uses_periodic_task_declaration() -> None:
    from mytasks.usertasks2 import function1

    assert function1.queue == "low"
    assert function1.name == "mytasks.usertasks2.function1"
    assert function1() is None


def test_example_uses_periodic_task_runs_in_low_queue(where: tuple[str, int, int],
                                                      workers: Workers) -> None:
    worker = workers.start("mytasks.usertasks2", url=None,
                           args=[*_cli_args(where), "--successlevel=INFO"])

    def ran() -> bool:
        # "Will be executed every 25 seconds": do not wait 25 s, force it.
        rpqueue.flush_tasks(force_delayed=True, complete=True, timeout=0.2)
        return "task mytasks.usertasks2.function1 (" in worker.stderr()

    wait_until(ran, timeout=5, interval=0.05, message=lambda: "function1 ran\n" + worker.logs())
    assert "low" in rpqueue.known_queues()


# -- Retries ------------------------------------------------------------------------


NAME = "mytasks.retries.fail_until_zero"


def _drive_retries(worker: WorkerProcess) -> list[str]:
    """Run the retry chain without waiting retry_delay (30 s) between attempts.

    Returns the worker's output (prints and log lines, in order) reduced to
    'done' (a run of fail_until_zero finished) and 'succeeded'.
    """

    def events() -> list[str]:
        out = []
        for line in worker.stdout().splitlines():
            if f"task {NAME} (" in line and " done in " in line:
                out.append("done")
            elif line == "succeeded":
                out.append("succeeded")
        return out

    def settled() -> bool:
        # "Every 30 s" retries: do not wait, make them due now.
        rpqueue.flush_tasks(force_delayed=True, complete=True, timeout=0.05)
        info = rpqueue.default_app().queue_info("default")
        return (events().count("done") >= 3
                and info["waiting"] + info["delayed"] + info["running"] == 0)

    wait_until(settled, interval=0.01, message=lambda: f"3 runs\n{worker.logs()}")
    return events()


def _retry_worker(workers: Workers, where: tuple[str, int, int]) -> WorkerProcess:
    return workers.start("mytasks.retries", url=None, merge_output=True,
                         args=[*_cli_args(where), "--successlevel=INFO"])


def test_retries_value_3_never_prints_succeeded(where: tuple[str, int, int],
                                                workers: Workers) -> None:
    worker = _retry_worker(workers, where)
    from mytasks.retries import fail_until_zero

    fail_until_zero.execute(3)
    assert _drive_retries(worker) == ["done", "done", "done"]


def test_retries_value_2_prints_succeeded_on_third_run(where: tuple[str, int, int],
                                                       workers: Workers) -> None:
    worker = _retry_worker(workers, where)
    from mytasks.retries import fail_until_zero

    fail_until_zero.execute(2)
    assert _drive_retries(worker) == ["done", "done", "succeeded", "done"]


# -- Waiting for task execution ------------------------------------------------------


def test_waiting_for_task_execution_with_a_worker(where: tuple[str, int, int],
                                                  workers: Workers) -> None:
    worker = workers.start("mytasks.waiting", url=None, args=_cli_args(where))
    from mytasks.waiting import my_task

    outcome = None
    # The README calls my_task(args) without its argument: that is refused
    # here now (TypeError, nothing queued) instead of failing in the worker,
    # so the README's code runs with one.
    with pytest.raises(TypeError, match="missing a required argument: 'args'"):
        my_task.execute()
    executing_task = my_task.execute(1)
    if executing_task.wait(5):
        # task is either being executed, or it is done
        outcome = "started"
    else:
        # task has not started execution yet
        executing_task.cancel()
        outcome = "cancelled"
    assert outcome == "started"
    assert worker.alive()


def test_waiting_for_task_execution_deadline_cancels(where: tuple[str, int, int]) -> None:
    """No worker: the README's else branch, with the cancel() deadline it suggests."""
    from mytasks.waiting import my_task

    executing_task = my_task.execute(1)  # with the argument the README leaves out
    if executing_task.wait(5):
        # task is either being executed, or it is done
        outcome: Any = "started"
    else:
        # task has not started execution yet
        outcome = executing_task.cancel()
    assert outcome is True
    assert executing_task.status == "done"
    assert rpqueue.queue_sizes()[0][:2] == ("default", 0)


# -- Automatically storing results of tasks -------------------------------------------


def test_storing_results_prints_5(where: tuple[str, int, int], workers: Workers,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    workers.start("mytasks.waiting", url=None, args=_cli_args(where))
    from mytasks.waiting import task_with_results

    etask = task_with_results.execute()
    if etask.wait(5):
        print(etask.result) # should print 5
    printed = capsys.readouterr().out
    # wait() is True as soon as the task *started*; give it the moment it
    # needs to finish, then the saved result is there.
    wait_until(lambda: etask.status == "done", message="done")
    assert etask.result == 5
    assert printed in ("5\n", "None\n")


def test_storing_results_prints_5_with_network_latency(
        where: tuple[str, int, int], slow_link: DelayProxy, workers: Workers,
        capsys: pytest.CaptureFixture[str]) -> None:
    db = where[2]
    workers.start("mytasks.waiting", url=slow_link.url.rsplit("/", 1)[0] + f"/{db}")
    from mytasks.waiting import task_with_results

    tries = 3
    for _ in range(tries):
        etask = task_with_results.execute()
        if etask.wait(5):
            print(etask.result) # should print 5
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["5"] * tries
