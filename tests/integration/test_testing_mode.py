"""rpqueue.testing as users meet it: the pytest plugin run on a small project
(examples/testing_project, the one docs/TESTING.md shows) in a pytest of its
own, and the in-process worker and eager mode against a real Redis."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import rpqueue
from rpqueue.testing import InProcessWorker, eager

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "testing_project"


@rpqueue.task(name="testing_mode.double", save_results=60)
def double(x: int) -> int:
    return 2 * x


@rpqueue.task(name="testing_mode.boom")
def boom(message: str) -> None:
    raise RuntimeError(message)


def test_the_plugin_in_a_user_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(project)],
        cwd=project, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"\b7 passed\b", out), out


def test_drain_names_what_is_left_when_time_runs_out(app: rpqueue.RPQueue) -> None:
    with InProcessWorker(app, threads=1) as worker:
        handle = double.options(delay=3600).execute(4)
        with pytest.raises(TimeoutError, match=handle.taskid):
            worker.drain(timeout=0.2)
        worker.drain(timeout=10, run_delayed=True)
        assert handle.result == 8


def test_drain_needs_a_running_worker(app: rpqueue.RPQueue) -> None:
    worker = InProcessWorker(app)
    with pytest.raises(RuntimeError, match="start"):
        worker.drain()
    with pytest.raises(ValueError, match="threads"):
        InProcessWorker(app, threads=0)


def test_a_failure_in_the_worker_shows_on_the_handle(app: rpqueue.RPQueue) -> None:
    with InProcessWorker(app) as worker:
        handle = boom.execute("no luck")
        worker.drain(timeout=10)
    assert handle.state == "failed"
    assert handle.error is not None and "no luck" in str(handle.error)
    with pytest.raises(rpqueue.TaskFailed):
        handle.get(timeout=1)


def test_eager_calls_leave_nothing_in_redis(app: rpqueue.RPQueue) -> None:
    with eager(app):
        assert double.execute(21).result == 42
        assert boom.execute("x").state == "failed"
    assert app.queue_sizes() == []


def test_arguments_that_do_not_bind_queue_nothing(app: rpqueue.RPQueue) -> None:
    with pytest.raises(TypeError, match=re.escape("testing_mode.double")):
        double.execute(1, 2)
    with pytest.raises(TypeError, match="missing a required argument"):
        double.options(priority=2).execute()  # type: ignore[call-arg]
    assert app.queue_sizes() == []
    assert double.execute(1).outcome == "queued"
    assert [q for q, n, _ in app.queue_sizes() if n] == ["default"]


def test_the_docs_show_the_example_project_verbatim() -> None:
    doc = (ROOT / "docs" / "TESTING.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- file: (\S+) -->\n```python\n(.*?)```", doc, re.S)
    assert len(blocks) >= 6
    for path, code in blocks:
        assert code in (ROOT / path).read_text(encoding="utf-8"), f"TESTING.md differs from {path}"
