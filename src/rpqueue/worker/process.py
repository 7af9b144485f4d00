"""Processes x threads, signals, and the worker's own upkeep.

Signal handlers only set a flag. On SIGTERM, SIGINT or SIGUSR1 a worker
stops taking tasks, lets running ones finish for up to ``wait_per_thread``
seconds, and exits 0. A supervisor process restarts children that die; a
worker process replaces worker threads that die.

Processes a task forks (multiprocessing) get the default signal handlers
back: with the worker's, they would only set a flag nobody reads, and
``Process.terminate()`` would not stop them.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from ..periodic import start_scheduler
from ..registry import HEARTBEAT, WorkerInfo
from ..storage.worker_io import RETRYABLE_ERRORS, ResponseError, WorkerIO
from .aio import AsyncLane
from .limits import SUPERVISED_ENV, start_monitor
from .loop import MAX_IDLE, QueueList, Waker, Worker, nap
from .recycle import RECYCLE_EXIT, Recycler, check_limits
from .runner import Runner
from .state import Lane
from .unknown import UnknownTasks

if TYPE_CHECKING:
    from ..context import Context

log = logging.getLogger("rpqueue.worker")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
# The worker's own stop handlers, which children forked from it must not keep.
_handlers: set[Callable[[int, FrameType | None], None]] = set()
_fork_hook = [False]


def _defaults_in_child() -> None:
    """After a fork: the default handler for each stop signal still handled by ours."""
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) in _handlers:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT
                          else signal.SIG_DFL)


def _on_stop(stop: threading.Event) -> None:
    """Stop signals set ``stop``, through a relay thread.

    The handler only flips a flag: Event.set() takes a lock, and a second
    signal arriving while the first handler is inside it would deadlock.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    requested = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        requested[0] = True

    def relay() -> None:
        while not stop.is_set():
            if requested[0]:
                stop.set()
                return
            stop.wait(0.05)

    threading.Thread(target=relay, name="rpqueue-signals", daemon=True).start()
    _handlers.add(handler)
    if not _fork_hook[0]:
        # Once per process: hooks registered at fork cannot be removed.
        os.register_at_fork(after_in_child=_defaults_in_child)
        _fork_hook[0] = True
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


def _wait_for_redis(app: Context, stop: threading.Event) -> bool:
    backoff = 0.1
    while not stop.is_set():
        try:
            app.publish_registry()
            return True
        except RETRYABLE_ERRORS as exc:
            log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
            stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)
        except ResponseError as exc:
            # A full Redis (maxmemory) refuses the registry write; the worker
            # can still drain queues, which is what frees memory.
            log.warning("could not publish the task registry: %s", exc)
            return True
    return False


def _upkeep(app: Context, runner: Runner, queues: QueueList, stop: threading.Event,
            info: WorkerInfo) -> None:
    """Heartbeat, renew leases of running 0/1 tasks, mark served queues as seen."""
    every = max(1.0, min(60.0, app.store.running_lease / 3))
    io = WorkerIO(app.store)
    last_seen = 0.0
    while True:
        try:
            info.beat(runner, queues.get(), queues.quarantine.report())
        except RETRYABLE_ERRORS:
            pass
        except Exception:
            log.exception("worker heartbeat failed")
        if stop.wait(HEARTBEAT):
            return
        try:
            now = time.monotonic()
            if now - last_seen >= every:
                runner.renew_leases()
                io.mark_served(queues.get())
                last_seen = now
        except RETRYABLE_ERRORS:
            pass
        except Exception:
            log.exception("worker upkeep failed")


def run_threads(
    app: Context,
    queues: list[str] | None = None,
    threads: int = 1,
    wait: float = 1,
    stop: threading.Event | None = None,
    success_level: int = logging.DEBUG,
    async_concurrency: int = 100,
    max_tasks: int = 0,
    max_memory_mib: float = 0,
) -> int:
    """Run worker threads in this process until stopped; returns an exit code.

    With ``max_tasks`` or ``max_memory_mib`` (0: off) the process stops
    taking tasks once it ran that many or grew past that size, lets every
    running task finish however long it takes, and returns RECYCLE_EXIT.
    """
    stop = stop or threading.Event()
    _on_stop(stop)
    recycler = Recycler(stop, max_tasks, max_memory_mib)
    if not _wait_for_redis(app, stop):
        return 0
    queue_list = QueueList(app, queues)

    def make_lane(concurrency: int) -> Lane:
        # The lane's batched takes follow the process's queue policy.
        return AsyncLane(concurrency, queue_list.policy, queue_list.get)

    runner = Runner(app, success_level, async_concurrency, make_lane)
    runner.unknown = UnknownTasks(app, queue_list.quarantine).give_back
    waker = Waker(app, queue_list, stop)

    def worker_thread(i: int) -> threading.Thread:
        return threading.Thread(target=Worker(app, queue_list, runner, stop, waker).run,
                                name=f"rpqueue-worker-{i}", daemon=True)

    workers = [worker_thread(i) for i in range(threads)]
    info = WorkerInfo(app, threads)
    keeper = threading.Thread(target=_upkeep, args=(app, runner, queue_list, stop, info),
                              name="rpqueue-upkeep", daemon=True)
    if recycler.active:
        # Before any thread starts: every task must count.
        app.hooks.add(recycler)
    for t in [*workers, keeper]:
        t.start()
    start_scheduler(app, stop)
    start_monitor(app, runner, stop)
    log.info("worker pid %d serving %s with %d thread(s) on %s", os.getpid(),
             ", ".join(queues) if queues else "all queues", threads, app.store.clients.describe())
    while not stop.wait(0.5):
        for i, t in enumerate(workers):
            if not t.is_alive() and not stop.is_set():
                # Whatever ended it (Worker.run only returns on stop), the
                # process must not go on looking alive with a thread fewer.
                log.error("worker thread %s ended unexpectedly; starting another", t.name)
                workers[i] = worker_thread(i)
                workers[i].start()
    # Idle threads may sit in a blocking pop for up to a second; only the
    # tasks actually running are worth waiting for.
    # Retiring is not a shutdown: tasks that are running finish, whatever
    # ``wait`` says, or they would be lost with the process.
    deadline = float("inf") if recycler.triggered else time.monotonic() + wait
    while runner.in_flight and time.monotonic() < deadline:
        nap(0.01)
    busy = runner.in_flight
    if not busy:
        # Each thread writes the outcome of its last task as it leaves; an
        # idle one needs at most one blocking pop (MAX_IDLE) to notice.
        # A retiring process waits for them all (no deadline): a last
        # outcome left unwritten would have its task run again.
        for t in workers:
            t.join(None if recycler.triggered
                   else max(0.0, deadline - time.monotonic()) + MAX_IDLE + 0.5)
    with contextlib.suppress(*RETRYABLE_ERRORS):
        info.leave()
    if busy:
        log.warning("stopping with %d task(s) still running after %.1fs", busy, wait)
    runner.stop()
    app.hooks.remove(recycler)
    log.info("worker pid %d stopped (%d done, %d failed)", os.getpid(),
             runner.counts["done"], runner.counts["failed"])
    return RECYCLE_EXIT if recycler.triggered else 0


def _child(app: Context, queues: list[str] | None, threads: int, wait: float,
           success_level: int, async_concurrency: int, max_tasks: int = 0,
           max_memory_mib: float = 0) -> None:
    os.environ[SUPERVISED_ENV] = "1"
    os._exit(run_threads(app, queues, threads, wait, success_level=success_level,
                         async_concurrency=async_concurrency, max_tasks=max_tasks,
                         max_memory_mib=max_memory_mib))


def supervise(
    app: Context, queues: list[str] | None, processes: int, threads: int, wait: float,
    success_level: int = logging.DEBUG, async_concurrency: int = 100,
    on_exit: Callable[[int], None] | None = None, max_tasks: int = 0,
    max_memory_mib: float = 0,
) -> int:
    """Run ``processes`` worker processes, restarting any that die, until stopped.

    ``on_exit(pid)`` is called for each worker process that ended (metrics).
    """
    stop = threading.Event()
    _on_stop(stop)
    ctx = multiprocessing.get_context("fork")

    def spawn() -> multiprocessing.process.BaseProcess:
        p = ctx.Process(target=_child,
                        args=(app, queues, threads, wait, success_level, async_concurrency,
                              max_tasks, max_memory_mib),
                        name="rpqueue-worker")
        p.start()
        return p

    children = [spawn() for _ in range(processes)]
    while not stop.wait(0.2):
        for i, p in enumerate(children):
            if not p.is_alive():
                if p.exitcode == RECYCLE_EXIT:
                    log.info("worker process %s retired (recycled); starting another", p.pid)
                else:
                    log.warning("worker process %s exited with %s; starting another",
                                p.pid, p.exitcode)
                if on_exit is not None and p.pid is not None:
                    on_exit(p.pid)
                children[i] = spawn()
    for p in children:
        if p.pid is not None and p.is_alive():
            os.kill(p.pid, signal.SIGTERM)
    for p in children:
        p.join(wait + 5)
        if p.is_alive():
            p.kill()
        if on_exit is not None and p.pid is not None:
            on_exit(p.pid)
    return 0


def execute_tasks(
    app: Context,
    queues: list[str] | None = None,
    threads_per_process: int = 1,
    processes: int = 1,
    wait_per_thread: float = 1,
    module: str | None = None,
    success_level: int = logging.DEBUG,
    async_concurrency: int = 100,
    metrics_port: int | None = None,
    metrics_addr: str = "0.0.0.0",
    max_tasks_per_child: int = 0,
    max_memory_per_child: float = 0,
) -> int:
    """Run worker processes x threads until stopped; see ``python -m rpqueue.run --help``.

    ``max_tasks_per_child`` (tasks) and ``max_memory_per_child`` (MiB of
    resident memory; 0: off) recycle worker processes: a process that ran
    that many tasks (with several threads, up to threads-1 more, those
    already running) or grew past that size stops taking tasks, finishes
    the running ones and exits, and the supervisor starts a fresh one.
    """
    if module:
        importlib.import_module(module)
    if threads_per_process < 1 or processes < 1:
        raise ValueError("threads_per_process and processes must be >= 1")
    check_limits(max_tasks_per_child, max_memory_per_child)
    # A hard time limit may need to replace a process whose task will not
    # stop, and a recycled process needs one to start its successor: only a
    # supervisor can do that.
    hard_limits = any(getattr(t, "timeout", 0) for t in app.registry.values())
    supervised = processes > 1 or hard_limits or bool(max_tasks_per_child or max_memory_per_child)
    metrics = None
    if metrics_port is not None:
        from ..metrics import start_metrics

        # Started before any fork: the children inherit the hook.
        metrics = start_metrics(app, metrics_port, metrics_addr, multiprocess=supervised)
    try:
        if not supervised:
            return run_threads(app, queues, threads_per_process, wait_per_thread,
                               success_level=success_level, async_concurrency=async_concurrency)
        return supervise(app, queues, processes, threads_per_process, wait_per_thread,
                         success_level, async_concurrency,
                         on_exit=metrics.process_exited if metrics is not None else None,
                         max_tasks=max_tasks_per_child, max_memory_mib=max_memory_per_child)
    finally:
        if metrics is not None:
            metrics.close()
