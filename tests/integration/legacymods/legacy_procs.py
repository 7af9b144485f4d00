"""Helpers for the migration and pause tests: the real rpqueue 0.33.7, and
our worker processes started the way users start them.

The original runs from its own virtualenv (it needs Python <= 3.11 and its
own redis-py). Found, in order: ``$RPQUEUE_LEGACY_PYTHON``; the benchmark
venv ``benchmarks/.venvs/rpqueue_orig``; a venv built once in the temp dir
with ``pip install rpqueue==0.33.7``. If none can be had (no network), the
tests that need it are skipped, saying why.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
T = TypeVar("T")


def legacy_env() -> dict[str, str]:
    """The environment for the original's python: nothing pointing at our package."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def _is_legacy(python: Path) -> bool:
    if not python.exists():
        return False
    try:
        out = subprocess.run([str(python), "-c", "import rpqueue; print(rpqueue.VERSION)"],
                             capture_output=True, text=True, timeout=60, env=legacy_env())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "0.33.7"


@functools.cache
def legacy_python() -> str | None:
    """A python that imports the real rpqueue 0.33.7, or None."""
    env = os.environ.get("RPQUEUE_LEGACY_PYTHON")
    candidates = [Path(env)] if env else []
    candidates.append(REPO / "benchmarks" / ".venvs" / "rpqueue_orig" / "bin" / "python")
    built = Path(tempfile.gettempdir()) / "rpqueue-0.33.7-venv"
    candidates.append(built / "bin" / "python")
    for python in candidates:
        if _is_legacy(python):
            return str(python)
    if sys.version_info >= (3, 12):
        return None  # 0.33.7 imports the `imp` module, gone in 3.12
    try:
        subprocess.run([sys.executable, "-m", "venv", str(built)], check=True,
                       capture_output=True, timeout=120)
        # 0.33.7 declares no dependencies: it needs redis-py beside it.
        subprocess.run([str(built / "bin" / "pip"), "install", "-q", "rpqueue==0.33.7",
                        "redis==8.1.0"],
                       check=True, capture_output=True, timeout=300, env=legacy_env())
    except (OSError, subprocess.SubprocessError):
        return None
    python = built / "bin" / "python"
    return str(python) if _is_legacy(python) else None


def run_legacy(port: int, prefix: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run steps with rpqueue 0.33.7 (see legacy_producer.py); its JSON replies."""
    python = legacy_python()
    assert python is not None
    plan = json.dumps({"port": port, "prefix": prefix, "steps": steps})
    out = subprocess.run([python, str(HERE / "legacy_producer.py")], input=plan,
                         capture_output=True, text=True, timeout=60, env=legacy_env())
    assert out.returncode == 0, out.stdout + out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def start_legacy(script: str, *args: str) -> subprocess.Popen[str]:
    """Start a legacymods script under rpqueue 0.33.7, in its own session."""
    python = legacy_python()
    assert python is not None
    return subprocess.Popen([python, str(HERE / script), *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=legacy_env())


def wait_until(predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition",
               interval: float = 0.01) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Worker:
    """``python -m rpqueue.run --module=M --url U [queues]`` in its own session."""

    def __init__(self, logdir: Path, module: str, url: str, queues: Sequence[str] = (),
                 extra: Sequence[str] = ()) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.log = logdir / f"worker-{module}-{time.monotonic_ns()}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("RPQUEUE_URL", None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rpqueue.run", f"--module={module}", "--url", url,
                 "--loglevel", "INFO", *extra, *queues],
                cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: "serving" in self.output() or self.proc.poll() is not None,
                   what="the worker to start")
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: it and its children
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)
