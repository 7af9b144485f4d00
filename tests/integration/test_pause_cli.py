"""``rpqueue pause`` / ``resume``, the paused column, and the progress bars of
``--clear``, ``dead requeue`` and ``flush``: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# legacymods/ is importable: tests/conftest.py puts it on sys.path.
import pause_tasks
import pytest
from legacy_procs import Worker, wait_until

import rpqueue
from rpqueue import cli
from rpqueue.storage.wire import FailMode

BAR = "━"  # what rich draws bars with


@pytest.fixture
def started() -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    yield workers
    for w in workers:
        w.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The CLI in this process; stdout is captured, so not a terminal."""
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def tty_env() -> dict[str, str]:
    env = dict(os.environ, FORCE_COLOR="1", COLUMNS="120")
    env.pop("RPQUEUE_URL", None)
    return env


def unstyled(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def tty(url: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The CLI as a subprocess that rich treats as a terminal (FORCE_COLOR);
    stdout without colour codes."""
    done = subprocess.run([sys.executable, "-m", "rpqueue", *argv], env=tty_env(), text=True,
                          capture_output=True, timeout=timeout)
    done.stdout = unstyled(done.stdout)
    return done


def queue_row(output: str, queue: str) -> list[str]:
    for line in output.splitlines():
        # Plain ASCII when not a terminal, box characters on one.
        cells = [c.strip() for c in re.split("[|│]", line)[1:-1]]
        if cells and cells[0] == queue:
            return cells
    raise AssertionError(f"no row for {queue!r} in:\n{output}")


def test_pause_and_resume_commands_and_the_paused_column(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pause_tasks.held.execute(1)
    # "later" has never been used: a typo unless --create says otherwise.
    code, out = run(capsys, "pause", "held", "later", "--url", redis_url)
    assert code == 2 and "unknown queue 'later'" in out and "'held'" in out
    assert app.paused_queues() == []
    assert run(capsys, "pause", "held", "later", "--create", "--url", redis_url) == (
        0, "paused 'held'\npaused 'later'\n")
    assert run(capsys, "pause", "held", "--url", redis_url) == (0, "'held' was already paused\n")
    assert app.paused_queues() == ["held", "later"]

    code, table = run(capsys, "--url", redis_url)
    assert code == 0 and "paused" in table.splitlines()[1]  # the header
    # queue, priority, size, running, dead, paused, limit, seen
    assert queue_row(table, "held")[2] == "1" and queue_row(table, "held")[5] == "paused"
    # Paused before anything used it: listed all the same.
    assert queue_row(table, "later")[1:] == ["", "0", "0", "0", "paused", "", "-"]

    assert run(capsys, "resume", "held", "--url", redis_url) == (0, "resumed 'held'\n")
    assert run(capsys, "resume", "held", "--url", redis_url) == (0, "'held' was not paused\n")
    code, table = run(capsys, "--url", redis_url)
    assert queue_row(table, "held")[5] == "" and queue_row(table, "later")[5] == "paused"


def test_clear_shows_a_bar_on_a_terminal_and_plain_text_otherwise(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pause_tasks.free.execute_many([(n,) for n in range(3000)])
    pause_tasks.free.execute(0, delay=60)
    code, out = run(capsys, "--url", redis_url, "--queue", "free", "--clear")
    assert (code, out) == (0, "cleared 3001 item(s) from 'free'\n")

    pause_tasks.free.execute_many([(n,) for n in range(3000)])
    done = tty(redis_url, "--url", redis_url, "--queue", "free", "--clear")
    assert done.returncode == 0, done.stderr
    assert "clearing 'free'" in done.stdout and BAR in done.stdout
    assert "/3000" in done.stdout and "cleared 3000 item(s) from 'free'" in done.stdout
    assert app.queue_info("free")["waiting"] == 0  # type: ignore[attr-defined]


def _bury(app: rpqueue.RPQueue, n: int) -> None:
    """Dead-letter n tasks the way a worker does: take each, then fail it for good."""
    pause_tasks.held.execute_many([(i,) for i in range(n)])
    for _ in range(n):
        taken = app.store.run(app.store.calls.take("held", 300)).taken
        assert taken is not None
        app.store.run(app.store.calls.fail("held", taken.key, taken.token, "boom", FailMode.DEAD, "test"))


def test_dead_requeue_shows_progress(app: rpqueue.RPQueue, redis_url: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _bury(app, 250)
    done = tty(redis_url, "dead", "requeue", "--url", redis_url)
    assert done.returncode == 0, done.stderr
    assert "requeueing dead tasks" in done.stdout and BAR in done.stdout
    assert "requeued 250 dead task(s)" in done.stdout
    assert app.queue_info("held")["waiting"] == 250  # type: ignore[attr-defined]

    rpqueue.clear_queue("held")
    _bury(app, 3)
    assert run(capsys, "dead", "requeue", "--url", redis_url) == (0, "requeued 3 dead task(s)\n")


def test_flush_waits_for_tasks_with_progress(app: rpqueue.RPQueue, redis_url: str,
                                             capsys: pytest.CaptureFixture[str],
                                             started: list[Worker], tmp_path: Path) -> None:
    app.pause_queue("free")
    started.append(Worker(tmp_path, "pause_tasks", redis_url, ["free"]))
    for n in range(20):
        pause_tasks.free.execute(n)
    # Paused: nothing starts, so flush gives up after its timeout.
    code, out = run(capsys, "flush", "--give-up-after", "0.5", "--url", redis_url)
    assert (code, out) == (1, "0 done, 0 started, 20 still waiting\n")
    waited = tty(redis_url, "flush", "--give-up-after", "1", "--url", redis_url)
    assert waited.returncode == 1
    assert "tasks pending" in waited.stdout and "0/20" in waited.stdout
    assert "20 still waiting" in waited.stdout

    flush = subprocess.Popen([sys.executable, "-m", "rpqueue", "flush", "--complete",
                              "--give-up-after", "20", "--url", redis_url], env=tty_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.8)
        app.resume_queue("free")
        stdout, stderr = flush.communicate(timeout=30)
    finally:
        if flush.poll() is None:
            flush.kill()
            flush.wait()
    assert flush.returncode == 0, stdout + stderr
    stdout = unstyled(stdout)
    assert "tasks pending" in stdout and "20 done, 0 started, 0 still waiting" in stdout
    wait_until(lambda: app.queue_info("free")["stats"].get("done") == 20,  # type: ignore[attr-defined]
               what="every task done")


def test_flush_with_nothing_queued(app: rpqueue.RPQueue, redis_url: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "flush", "--url", redis_url) == (0, "0 done, 0 started, 0 still waiting\n")


def test_migrate_legacy_with_nothing_there(app: rpqueue.RPQueue, redis_url: str, rcli: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "migrate-legacy", "--url", redis_url, "--dry-run")
    assert code == 0 and "would move 0 task(s) from 0 queue(s)" in out
    assert rcli.dbsize() == 0
