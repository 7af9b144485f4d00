"""The one harness for real worker processes in every suite.

Workers are started exactly the way users start them (``python -m
rpqueue.run --module=M ...``). Their task modules are found through
PYTHONPATH (the folders in support.paths), never through sys.path hacks in
the child. Each worker runs in a session of its own, so cleanup reaches the
children of ``--processes N`` and nothing this suite did not start.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import Any, Literal, TypeVar

from .paths import MODULE_DIRS

T = TypeVar("T")

# Generous: it bounds how long a test waits for something that should take
# milliseconds; a slow CI box must not turn it into a failure.
DEADLINE = 15.0


class Timeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = DEADLINE,
    interval: float = 0.01,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise Timeout(f"timed out after {timeout:g}s waiting for: {text}")
        time.sleep(interval)


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: this one, minus settings that would leak
    into it, plus PYTHONPATH with every task-module folder."""
    env = dict(os.environ)
    # A URL or metrics directory set for the developer's shell must not
    # redirect the worker; tests that want them pass them in ``extra``.
    env.pop("RPQUEUE_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["PYTHONUNBUFFERED"] = "1"
    extra = dict(extra or {})
    # A test's own PYTHONPATH comes first; the task folders stay reachable.
    paths = [extra.pop("PYTHONPATH", ""), *map(str, MODULE_DIRS), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


def rpqueue_argv(module: str | None, *queues: str, url: str | None = None,
                 loglevel: str | None = "INFO", args: Iterable[str] = ()) -> list[str]:
    """``python -m rpqueue.run [--module=M] [--url U] [--loglevel L] args... queues...``."""
    argv = [sys.executable, "-m", "rpqueue.run"]
    if module is not None:
        argv.append(f"--module={module}")
    if url is not None:
        argv += ["--url", url]
    if loglevel is not None:
        argv += ["--loglevel", loglevel]
    return [*argv, *args, *queues]


Stream = Literal["stdout", "stderr", "all"]


class WorkerProcess:
    """One child process (usually ``python -m rpqueue.run``) with its output in files.

    ``merge_output`` sends stderr into the stdout file, so prints and log
    lines keep their order; log() is then that one file.
    """

    def __init__(self, argv: Sequence[str], logdir: Path, name: str | None = None,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 stdin: Any = subprocess.DEVNULL, merge_output: bool = False,
                 grace: float = 10.0) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.argv = list(argv)
        self.name = name or f"worker-{time.monotonic_ns()}"
        self.merged = merge_output
        # Seconds stop() gives SIGTERM before it kills the whole group.
        self.grace = grace
        # Set by kill(SIGKILL): the test, not a bug, ended this process.
        self.killed = False
        self.out_path = logdir / f"{self.name}.stdout"
        self.err_path = self.out_path if merge_output else logdir / f"{self.name}.stderr"
        with open(self.out_path, "wb") as out, open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=cwd or logdir, env=worker_env(env), stdin=stdin, stdout=out,
                stderr=subprocess.STDOUT if merge_output else err, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        """The file with the worker's log lines (its stderr, or everything if merged)."""
        return self.err_path

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stderr_bytes(self) -> bytes:
        return self.err_path.read_bytes()

    def log(self) -> str:
        """Everything the process wrote (its log lines go to stderr)."""
        if self.merged:
            return self.stdout()
        return self.stdout() + self.stderr()

    def logs(self) -> str:
        if self.merged:
            return f"--- output\n{self.stdout()}"
        return f"--- stdout\n{self.stdout()}\n--- stderr\n{self.stderr()}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, timeout: float = DEADLINE, count: int = 1,
                 stream: Stream | None = None) -> str:
        """Wait until ``text`` was written ``count`` times; fail early if the
        process exits first. ``stream`` defaults to the log lines (stderr)."""
        read = {"stdout": self.stdout, "stderr": self.stderr, "all": self.log}[stream or "stderr"]

        def seen() -> str | None:
            exited = self.proc.poll() is not None
            out = read()
            if out.count(text) >= count:
                return out
            if exited:
                raise AssertionError(f"worker exited with {self.proc.returncode} before "
                                     f"logging {text!r} x{count}:\n{self.logs()}")
            return None

        return wait_until(seen, timeout,
                          message=lambda: f"{text!r} x{count} in worker log:\n{self.logs()}")

    def wait_ready(self, timeout: float = DEADLINE, count: int = 1) -> None:
        """Wait for the start-up line of ``count`` processes (needs --loglevel INFO)."""
        self.wait_log("serving", timeout, count)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(SIGTERM)

    def kill(self, sig: int = SIGKILL) -> None:
        """Send ``sig``; a SIGKILL (a crash) is awaited and remembered."""
        self.killed = sig == SIGKILL
        self.proc.send_signal(sig)
        if self.killed:
            self.proc.wait(10)

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"worker still running {timeout:g}s later:\n{self.logs()}") from None

    def stop(self) -> int | None:
        """Guaranteed cleanup: SIGTERM, then SIGKILL of the worker's own group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            # The group is this worker's session: it and its --processes children.
            os.killpg(self.proc.pid, SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)
        return self.proc.returncode


class Workers:
    """Starts ``python -m rpqueue.run`` workers against one URL; stop_all() at teardown."""

    def __init__(self, redis_url: str, logdir: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None, grace: float = 10.0) -> None:
        self.redis_url = redis_url
        self.url = redis_url
        self.logdir = logdir
        self.env = dict(env or {})
        self.cwd = cwd
        self.grace = grace
        self.started: list[WorkerProcess] = []

    def start(self, module: str | None, *queues: str, url: str | None = "default",
              args: Iterable[str] = (), env: Mapping[str, str] | None = None,
              ready: bool | int = True, loglevel: str | None = "INFO",
              stdin: Any = subprocess.DEVNULL, merge_output: bool = False) -> WorkerProcess:
        """``ready``: wait for the start-up line of that many processes (True: one)."""
        argv = rpqueue_argv(module, *queues, url=self.redis_url if url == "default" else url,
                            loglevel=loglevel, args=args)
        return self.add(argv, env, int(ready), stdin, merge_output)

    def python(self, *argv: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        """Any python program (e.g. a script calling rpqueue.execute_tasks())."""
        return self.add([sys.executable, *argv], env, ready=0)

    def add(self, argv: Sequence[str], env: Mapping[str, str] | None = None, ready: int = 1,
            stdin: Any = subprocess.DEVNULL, merge_output: bool = False) -> WorkerProcess:
        worker = WorkerProcess(argv, self.logdir, f"worker{len(self.started)}",
                               {**self.env, **(env or {})}, self.cwd, stdin, merge_output,
                               self.grace)
        self.started.append(worker)
        if ready:
            worker.wait_log("serving", count=ready, stream="stdout" if merge_output else None)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- worker {w.pid}\n{w.log()[-4000:]}" for w in self.started)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()
