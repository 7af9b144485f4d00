"""Prometheus metrics for workers (``python -m rpqueue.run --metrics-port N``).

Two sources feed one endpoint:

* ``MetricsHook``, a lifecycle hook in every worker process, counts task
  runs started, succeeded, failed, retried and dead-lettered, and observes
  run times, by queue and task name.
* ``QueueCollector`` reads the queues at scrape time, through the read
  model (``rpqueue.views``), in a fixed few round trips: tasks
  waiting, delayed, in flight and dead-lettered, and each queue's enqueued
  counter (its ``stats`` hash), so those numbers are right whichever process
  changed them.

With one worker process the process serves its own metrics. With a
supervisor (``--processes N``, or any task with a hard ``timeout``) the
children only write their counters to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode) and the supervisor serves the sum
of them plus the Redis readings, and tells the library when a child died.

prometheus_client is an optional dependency (``pip install 'rpqueue[metrics]'``)
and is only imported when metrics are asked for.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .context import Context, context_of
from .views import queues
from .views import workers as worker_view

if TYPE_CHECKING:
    from .task import Task

# What the worker passes to hooks (worker.runner.Running): a task being run.
Running = Any

log = logging.getLogger("rpqueue.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LABELS = ("queue", "task")
# Task run times span milliseconds to many minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
           300.0, 600.0, 1800.0, float("inf"))
# Failed runs whose retry or dead-letter event has not come yet (see MetricsHook).
_PENDING_LIMIT = 10_000


class MetricsUnavailable(RuntimeError):
    """Metrics were asked for but cannot be served (library missing, port taken)."""


_MISSING = ("Prometheus metrics need the prometheus_client package: "
            "pip install 'rpqueue[metrics]'")


def check_available() -> None:
    """Raise MetricsUnavailable if prometheus_client is not installed, without importing it
    (it must be imported after PROMETHEUS_MULTIPROC_DIR is set)."""
    try:
        found = importlib.util.find_spec("prometheus_client")
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise MetricsUnavailable(_MISSING)


def prometheus() -> ModuleType:
    """prometheus_client, or a clear error saying how to install it."""
    try:
        import prometheus_client
        import prometheus_client.core
        import prometheus_client.multiprocess
    except ImportError as exc:
        raise MetricsUnavailable(_MISSING) from exc
    return prometheus_client


class MetricsHook:
    """Counters and a run-time histogram fed by the worker's lifecycle events.

    ``registry`` is where the metrics are registered (None in multiprocess
    mode: values then go to the process's files, which the supervisor reads).
    """

    def __init__(self, registry: Any = None) -> None:
        pc = prometheus()

        def counter(name: str, doc: str) -> Any:
            return pc.Counter(name, doc, LABELS, registry=registry)

        self.started = counter("rpqueue_tasks_started", "Task runs started")
        self.succeeded = counter("rpqueue_tasks_succeeded", "Task runs that returned")
        self.failed = counter("rpqueue_tasks_failed",
                              "Task runs that raised, hit a time limit or were aborted")
        self.retried = counter("rpqueue_tasks_retried",
                               "Failed runs queued for another attempt (retry_on, visibility "
                               "timeout)")
        self.dead = counter("rpqueue_tasks_dead", "Failed runs moved to the dead letters")
        self.duration = pc.Histogram("rpqueue_task_duration_seconds",
                                     "Run time of tasks, successful or not", LABELS,
                                     buckets=BUCKETS, registry=registry)
        # on_retry and on_dead name the task but not the queue of the run
        # (a call may go to another queue than its task's own): the failed
        # run's queue is remembered from after_task, which comes first.
        self._queues: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._lock = threading.Lock()

    def before_task(self, running: Running) -> None:
        self.started.labels(running.queue, running.task.name).inc()

    def after_task(self, running: Running, result: Any, error: BaseException | None) -> None:
        labels = (running.queue, running.task.name)
        self.duration.labels(*labels).observe(max(0.0, time.monotonic() - running.started))
        if error is None:
            self.succeeded.labels(*labels).inc()
            return
        self.failed.labels(*labels).inc()
        with self._lock:
            self._queues[running.taskid] = running.queue
            while len(self._queues) > _PENDING_LIMIT:
                self._queues.popitem(last=False)

    def on_retry(self, task: Task, taskid: str, delay: float) -> None:
        self.retried.labels(self._queue_of(task, taskid), task.name).inc()

    def on_dead(self, task: Task, taskid: str, reason: str, error: str) -> None:
        self.dead.labels(self._queue_of(task, taskid), task.name).inc()

    def _queue_of(self, task: Task, taskid: str) -> str:
        with self._lock:
            return self._queues.pop(taskid, task.queue)


class QueueCollector:
    """Reads the queues from Redis at each scrape.

    If Redis cannot be read, the scrape still answers, with
    ``rpqueue_redis_up 0`` and no queue series.
    """

    def __init__(self, app: Any) -> None:
        self.app: Context = context_of(app)

    def describe(self) -> Iterable[Any]:
        # Nothing to check at registration; a scrape is what reads Redis.
        return []

    def collect(self) -> Iterator[Any]:
        core = prometheus().core
        try:
            # Every queue in one pipelined read, however many there are.
            infos = queues.overview(self.app).queues
            workers = len(worker_view.live(self.app))
        except Exception as exc:
            log.warning("metrics: cannot read the queues from Redis: %s", exc)
            yield core.GaugeMetricFamily("rpqueue_redis_up",
                                         "1 if the last scrape could read Redis", value=0)
            return
        yield core.GaugeMetricFamily("rpqueue_redis_up", "1 if the last scrape could read Redis",
                                     value=1)
        yield core.GaugeMetricFamily("rpqueue_workers",
                                     "Worker processes in the registry (heartbeat within "
                                     "registry.STALE seconds)", value=workers)
        gauges = (
            ("rpqueue_queue_waiting", "Tasks ready to run (queue depth)", "waiting"),
            ("rpqueue_queue_delayed", "Tasks waiting for their due time", "delayed"),
            ("rpqueue_queue_in_flight", "Tasks taken by a worker and not yet reported",
             "running"),
            ("rpqueue_queue_dead_letters", "Tasks in the queue's dead letters", "dead"),
        )
        for name, doc, field in gauges:
            family = core.GaugeMetricFamily(name, doc, labels=["queue"])
            for info in infos:
                family.add_metric([info.name], getattr(info, field))
            yield family
        enqueued = core.CounterMetricFamily("rpqueue_enqueued",
                                            "Tasks enqueued (from the queue's stats in Redis)",
                                            labels=["queue"])
        for info in infos:
            enqueued.add_metric([info.name], info.stats.get("enqueued", 0))
        yield enqueued


class MetricsServer:
    """What start_metrics started; ``close()`` stops it and cleans up."""

    def __init__(self, app: Any, hook: MetricsHook, registry: Any, httpd: Any, port: int,
                 multiproc_dir: str | None, own_dir: bool) -> None:
        self.app = app
        self.hook = hook
        self.registry = registry
        self.httpd = httpd
        self.port = port
        self.multiproc_dir = multiproc_dir
        self._own_dir = own_dir
        self._pid = os.getpid()

    def process_exited(self, pid: int) -> None:
        """A worker process ended: drop its live-gauge files (multiprocess mode)."""
        if self.multiproc_dir is None:
            return
        try:
            prometheus().multiprocess.mark_process_dead(pid, self.multiproc_dir)
        except OSError as exc:
            log.warning("metrics: cannot clean up after process %d: %s", pid, exc)

    def after_fork_in_child(self) -> None:
        # A worker process must not hold the supervisor's listening socket:
        # if the supervisor died, connections would queue on it unanswered.
        if self.httpd is not None:
            self.httpd.socket.close()
            self.httpd = None

    def close(self) -> None:
        if os.getpid() != self._pid:
            return
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None
        if self.hook in self.app.hooks:
            self.app.hooks.remove(self.hook)
        if self._own_dir and self.multiproc_dir:
            shutil.rmtree(self.multiproc_dir, ignore_errors=True)
            if os.environ.get(MULTIPROC_ENV) == self.multiproc_dir:
                del os.environ[MULTIPROC_ENV]


def _multiprocess_dir() -> tuple[str, bool]:
    """The directory for the children's metric files: $PROMETHEUS_MULTIPROC_DIR if
    set (it must be empty at start), else a new temporary one removed at the end."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        return given, False
    path = tempfile.mkdtemp(prefix="rpqueue-metrics-")
    os.environ[MULTIPROC_ENV] = path
    return path, True


def start_metrics(app: Any, port: int, addr: str = "0.0.0.0",
                  multiprocess: bool = False) -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` and register the counting hook on ``app``
    (an app or its context).

    ``multiprocess``: this process is a supervisor that forks the worker
    processes after this call; they inherit the hook and write to files.
    """
    app = context_of(app)
    path: str | None = None
    own = False
    if multiprocess:
        path, own = _multiprocess_dir()
    pc = prometheus()
    if multiprocess:
        values: Any = pc.values
        # The library picks how values are stored when it is first imported;
        # the task module may have imported it before the directory was set.
        if values.ValueClass is values.MutexValue:
            values.ValueClass = values.get_value_class()
    registry = pc.CollectorRegistry()
    if multiprocess:
        pc.multiprocess.MultiProcessCollector(registry, path=path)
        hook = MetricsHook(registry=None)
    else:
        hook = MetricsHook(registry=registry)
        pc.ProcessCollector(registry=registry)
        pc.PlatformCollector(registry=registry)
    registry.register(QueueCollector(app))
    try:
        started = pc.start_http_server(port, addr, registry=registry)
    except OSError as exc:
        if own and path:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
        raise MetricsUnavailable(f"cannot serve metrics on {addr}:{port}: {exc}") from exc
    httpd = started[0] if isinstance(started, tuple) else None
    bound = int(httpd.server_port) if httpd is not None else port
    server = MetricsServer(app, hook, registry, httpd, bound, path, own)
    if multiprocess:
        os.register_at_fork(after_in_child=server.after_fork_in_child)
    app.hooks.add(hook)
    # Not "serving ...": tools wait for the worker's own "serving" line.
    log.info("Prometheus metrics at http://%s:%d/metrics%s", addr, bound,
             f" (multiprocess mode, {path})" if multiprocess else "")
    return server
