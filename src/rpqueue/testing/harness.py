"""A real worker in this process, for tests: ``InProcessWorker`` and ``drain``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from types import TracebackType

from ..admin import flush_tasks
from ..app import RPQueue
from ..worker.process import run_threads


def bind(app: RPQueue, url: str, prefix: str | None = None) -> RPQueue:
    """Point ``app`` at the Redis at ``url`` (and key ``prefix``, if given); returns it."""
    app.set_redis_url(url)
    if prefix is not None:
        app.set_key_prefix(prefix)
    return app


class InProcessWorker:
    """Worker threads of ``app`` in this process, as ``rpqueue worker`` runs
    them (the same loop, scheduler and limits), for tests.

    ``start()`` and ``stop()``, or ``with InProcessWorker(app) as worker:``.
    ``queues`` (default: all) and ``threads`` are as for a worker process.
    Signals are left alone: a test run's Ctrl-C stays the test runner's. A
    task past its hard ``timeout`` gets TimeLimitExceeded as in any worker
    thread, but one stuck where Python cannot interrupt it stays stuck: only
    a supervised worker process is replaced then (test that with one).
    """

    def __init__(self, app: RPQueue, queues: Iterable[str] | None = None,
                 threads: int = 2, stop_wait: float = 5.0) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.app = app
        self.queues = None if queues is None else [str(q) for q in queues]
        self.threads = threads
        self.stop_wait = stop_wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<InProcessWorker {self.app.name} threads={self.threads} {state}>"

    @property
    def running(self) -> bool:
        """Whether the worker threads are running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> InProcessWorker:
        """Start the worker threads; returns self. Starting twice is a RuntimeError."""
        if self.running:
            raise RuntimeError("this InProcessWorker is already running")
        self._stop = threading.Event()
        # run_threads installs no signal handlers off the main thread.
        self._thread = threading.Thread(
            target=run_threads, name="rpqueue-test-worker",
            args=(self.app.ctx, self.queues, self.threads, self.stop_wait),
            kwargs={"stop": self._stop}, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker, letting running tasks finish (up to ``stop_wait``)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"the in-process worker did not stop within {timeout}s")

    def drain(self, timeout: float = 10.0, run_delayed: bool = False) -> None:
        """Wait until the queues are empty and no task is running.

        Tasks queued while waiting (by tasks, or retries) are waited for too,
        and so are delayed ones; ``run_delayed=True`` makes delayed (and
        periodic) tasks due now instead of waiting for their time. Raises
        TimeoutError, naming the tasks left, when ``timeout`` seconds pass
        first, and RuntimeError when the worker is not running.
        """
        if not self.running:
            raise RuntimeError("drain() needs a running worker: call start() first")
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            done, started, waiting = flush_tasks(
                self.app.ctx, complete=True, force_delayed=run_delayed, wait_on_hidden=True,
                timeout=max(0.0, left))
            if not (done or started or waiting):
                return  # a pass that found nothing queued and nothing running
            if (started or waiting) and time.monotonic() >= deadline:
                raise TimeoutError(f"queues not drained after {timeout}s: "
                                   f"{len(started)} running {started[:5]}, "
                                   f"{len(waiting)} waiting {waiting[:5]}")

    def __enter__(self) -> InProcessWorker:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

