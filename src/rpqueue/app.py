"""The app object: one independent rpqueue, on top of every other layer.

``RPQueue`` owns a ``Context`` (store, task registry, hooks) and offers the
whole public API as real methods; the module-level functions of ``rpqueue``
are the default app's bound methods. ``new_rpqueue`` makes more apps that
share nothing with the default one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, overload

from . import admin, decorators
from .context import CONTEXTS, DEADLETTER_QUEUE, DEFAULT_QUEUE, MINIMUM_DELAY, Context
from .manage import QueueMethods
from .storage.clients import DEFAULT_TIMEOUT, ENV_URL, connection_settings
from .storage.durable import durability
from .storage.keys import DEFAULT_PREFIX, Keys
from .task import AsyncTask, EnqueuedTask, Task, TaskRef
from .typevars import P, R

__all__ = ["DEADLETTER_QUEUE", "DEFAULT_QUEUE", "ENV_URL", "MINIMUM_DELAY", "RPQueue",
           "new_rpqueue"]


class RPQueue(QueueMethods):
    """One independent rpqueue: its own key prefix, connection and tasks.

    Made with ``rpqueue.new_rpqueue(name, prefix)``; the module-level API of
    ``rpqueue`` acts on the app named "default".
    """

    def __init__(self, name: str = "default", prefix: str = DEFAULT_PREFIX) -> None:
        self.ctx = Context(name, prefix)
        self.store = self.ctx.store

    def __repr__(self) -> str:
        return f"<RPQueue {self.name!r} prefix={self.prefix!r}>"

    # -- what the app holds ----------------------------------------------------------

    @property
    def name(self) -> str:
        """The app's name (``new_rpqueue(name)``; "default" for the module-level API)."""
        return self.ctx.name

    @property
    def prefix(self) -> str:
        """The key prefix every key of this app starts with."""
        return self.store.prefix

    @property
    def keys(self) -> Keys:
        """The key layout under this app's prefix (see docs/PROTOCOL.md)."""
        return self.store.keys

    @property
    def client(self) -> Any:
        """The redis-py client this app uses (made on first use)."""
        return self.store.client

    def aclient(self) -> Any:
        """The redis.asyncio client of the running event loop for this app."""
        return self.store.aclient()

    @property
    def cluster(self) -> bool:
        """True when connected to a Redis Cluster."""
        return self.store.cluster

    @property
    def registry(self) -> dict[str, Task]:
        """The tasks defined in this process, by name."""
        return self.ctx.registry

    @property
    def hooks(self) -> Any:
        """The lifecycle hooks added with ``add_hook``."""
        return self.ctx.hooks

    @property
    def max_message_bytes(self) -> int:
        """The largest encoded call ``execute`` accepts (bytes; 0: no limit)."""
        return self.store.max_message_bytes

    @max_message_bytes.setter
    def max_message_bytes(self, limit: int) -> None:
        self.store.max_message_bytes = limit

    @property
    def running_lease(self) -> float:
        """Seconds a running task without a visibility timeout is leased for
        (renewed while it runs; bounds how long a crashed worker's task shows
        as started)."""
        return self.store.running_lease

    @running_lease.setter
    def running_lease(self, seconds: float) -> None:
        self.store.running_lease = seconds

    @property
    def durable(self) -> Any:
        """The durable-enqueue setting (``set_durable``), or None."""
        return self.store.executor.durable

    # -- connection ------------------------------------------------------------------

    def set_key_prefix(self, prefix: str | bytes) -> None:
        """Put every key of this app under ``prefix`` (default ``rpqueue:``).

        Workers and producers must use the same prefix (workers: ``--prefix``);
        several apps with different prefixes can share one Redis.
        """
        if isinstance(prefix, bytes):
            prefix = prefix.decode("utf-8")
        self.store.set_prefix(prefix)

    # Deliberate copy: the parameter list of storage.clients.connection_settings,
    # spelled out so that help() and mypy show it on the public method.
    def set_redis_connection_settings(
        self,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        socket_timeout: float | None = DEFAULT_TIMEOUT,
        unix_socket_path: str | None = None,
        *,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        username: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        """Connect to one server (no connection is made until first use).

        ``host``, ``port``, ``db`` and ``password`` name the server, or
        ``unix_socket_path`` its unix socket. ``username`` (with
        ``password``) logs in as an ACL user; ``ssl`` turns on TLS with the
        server's certificate verified (against ``ssl_ca_certs``, else the
        system's CAs); ``ssl_certfile`` and
        ``ssl_keyfile`` are this client's certificate, for servers that ask
        for one (``tls-auth-clients``). ``socket_timeout`` (seconds) bounds
        every read and the connect (None: wait for ever). The options after
        ``unix_socket_path`` are keyword-only. See docs/SECURITY.md.
        """
        self.store.clients.use_settings(connection_settings(
            host, port, db, password, socket_timeout, unix_socket_path, ssl, ssl_ca_certs,
            username, ssl_certfile, ssl_keyfile))

    def set_redis_connection(self, conn: Any) -> None:
        """Use this redis-py client (``redis.Redis``, ``RedisCluster`` or a
        Sentinel's ``master_for``) for everything."""
        self.store.clients.use_client(conn)

    def set_redis_url(self, url: str, socket_timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Connect by URL (no connection is made until first use).

        ``url``: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://``
        (TLS), ``unix:///path?db=N``, ``redis+cluster://host:port,...`` or
        ``redis+sentinel://host:port/service`` (see docs/SCALING.md).
        ``socket_timeout``: seconds for every read and the connect.

        Without any connection call, an app connects to the URL in the
        ``RPQUEUE_URL`` environment variable, else to ``localhost:6379`` db 0.
        Raises ValueError for a URL it cannot read (no scheme, an unknown one).
        """
        self.store.clients.use_url(url, socket_timeout)

    def set_redis_async_connection(self, conn: Any) -> None:
        """Use this redis.asyncio client for the async API (else one is made to match)."""
        self.store.clients.use_async_client(conn)

    def describe_connection(self) -> str:
        """Where this app connects, as a URL without the password."""
        return self.store.clients.describe()

    def set_durable(self, replicas: int, timeout: float = 1.0) -> None:
        """Make ``execute()`` wait until ``replicas`` replicas hold each task.

        Each enqueue is followed by ``WAIT replicas timeout`` in the same round
        trip; if fewer replicas confirm within ``timeout`` seconds, it raises
        ``rpqueue.NotDurable`` (the task may still be queued). 0 turns it off.
        See docs/SCALING.md.
        """
        self.store.executor.durable = durability(replicas, timeout)

    def redis_time(self) -> float:
        """Redis's clock, in seconds."""
        return self.store.redis_time()

    # -- declaring tasks -------------------------------------------------------------

    @overload
    def task(self, func: Callable[P, Coroutine[Any, Any, R]]) -> AsyncTask[P, R]: ...

    @overload
    def task(self, func: Callable[P, R]) -> Task[P, R]: ...

    @overload
    def task(self, func: str | bytes | None = None, **options: Any
             ) -> decorators.TaskDecorator: ...

    def task(self, func: Any = None, **options: Any) -> Any:
        return decorators.task(self.ctx, func, **options)

    # The options are documented (and listed, for help()) once, in decorators.
    task.__doc__ = decorators.task.__doc__
    task.__signature__ = decorators.method_signature(decorators.task)  # type: ignore[attr-defined]

    # Bound from decorators: the parameters, types and docstring are spelled once, there.
    periodic_task = decorators.on_context(decorators.periodic_task)
    cron_task = decorators.on_context(decorators.cron_task)

    def add_hook(self, hook: Any) -> None:
        """Register an object with any of before_task(running),
        after_task(running, result, error), on_retry(task, taskid, delay),
        on_dead(task, taskid, reason, error); a hook that raises is logged and
        never fails the task."""
        self.ctx.hooks.add(hook)

    # -- tasks known elsewhere ---------------------------------------------------------

    @property
    def known_tasks(self) -> admin.KnownTasks:
        """Every task name known here or published by a worker: name -> Task or TaskRef."""
        return admin.KnownTasks(self.ctx)

    def get_task(self, name: str) -> Task | TaskRef | None:
        """The task with this name (a Task here, or a TaskRef from the registry), or None."""
        return admin.get_task(self.ctx, name)  # type: ignore[no-any-return]

    def call_task(self, name: str, queue: str | bytes | None = None, *args: Any,
                  _verify_call: bool = False, **kwargs: Any) -> EnqueuedTask:
        """Queue a call to the task called ``name`` without importing it.

        ``queue``: the queue to use (None: the task's own); ``args`` and
        ``kwargs``: the call's arguments (``delay=`` and the other options of
        ``execute`` too). The task's settings are those defined in this
        process, else those its workers published (``read_registry``).
        Returns the ``EnqueuedTask`` handle. With ``_verify_call=True`` an
        unknown name raises ValueError; otherwise the call is queued as is
        (workers dead-letter a name none of them knows).
        """
        return admin.call_task(self.ctx, name, queue, *args, _verify_call=_verify_call, **kwargs)

    def publish_registry(self) -> None:
        """Write this process's task settings to Redis (workers do it at start),
        so that ``call_task`` and ``known_tasks`` elsewhere can use them."""
        self.ctx.publish_registry()

    def read_registry(self) -> dict[str, dict[str, Any]]:
        """The task settings published by workers: name -> settings."""
        return self.ctx.read_registry()

    # -- results ------------------------------------------------------------------------

    def result(self, taskid: str) -> Any:
        """The saved return value of the task with id ``taskid``.

        None when the task has not finished, saved nothing (its task has no
        ``save_results``), returned None, or its result expired. A task's
        handle has the same as ``EnqueuedTask.result``.
        """
        return admin.results(self.ctx, [taskid])[0]

    def results(self, taskids: Iterable[str]) -> list[Any]:
        """The saved results of these tasks, in their order, in one round trip
        (None where there is none; see ``result``)."""
        return admin.results(self.ctx, taskids)

    # -- running workers ---------------------------------------------------------------

    def execute_tasks(self, queues: Iterable[str | bytes] | None = None,
                      threads_per_process: int = 1, processes: int = 1,
                      wait_per_thread: float = 1, module: str | None = None,
                      **options: Any) -> int:
        """Run workers in this process until stopped; returns an exit status.

        ``queues``: the queues to serve, highest priority first (default:
        every known queue, by ``set_priority``). ``threads_per_process``
        threads in each of ``processes`` processes (more than 1: child
        processes under this one, which supervises them).
        ``wait_per_thread``: seconds running tasks may take to finish once a
        stop is asked (SIGTERM, SIGINT, SIGUSR1). ``module``: imported in
        each worker process first (the tasks must be defined there).
        ``options``: the other options of ``python -m rpqueue.run`` by name
        (``async_concurrency``, ``success_level``, ``metrics_port`` ...).
        Returns 0 after a clean stop.
        """
        from .worker import execute_tasks

        names = ([q if isinstance(q, str) else q.decode("utf-8") for q in queues]
                 if queues else None)
        return execute_tasks(self.ctx, names, threads_per_process, processes, wait_per_thread,
                             module, **options)

    def flush_tasks(self, *, complete: bool = False, force_delayed: bool = False,
                    wait_on_hidden: bool = False, timeout: float | None = None,
                    log_every: float = 0) -> tuple[list[str], list[str], list[str]]:
        """Wait until the tasks queued now have started (or, with ``complete``,
        finished); handy in tests and before a deploy.

        ``force_delayed``: make delayed and periodic tasks due now.
        ``wait_on_hidden``: also wait for tasks already running.
        ``timeout``: give up after that many seconds (None: wait as long as
        it takes). ``log_every``: log the count still pending every that many
        seconds (0: never). Returns the task ids as ``(done, started,
        still_waiting)``; ``still_waiting`` is empty unless it gave up.
        Needs running workers (``execute_tasks``), or it waits in vain.
        """
        return admin.flush_tasks(self.ctx, complete, force_delayed, wait_on_hidden, timeout,
                                 log_every)


_instances: dict[str, RPQueue] = {}
_instances_lock = threading.Lock()


def new_rpqueue(name: str, pfix: str | None = None) -> RPQueue:
    """An independent app; the same name (and prefix) give the same one.

    Raises ValueError when an app of that name exists with another prefix.
    """
    prefix = DEFAULT_PREFIX if pfix is None else pfix
    with _instances_lock:
        existing = _instances.get(name)
        if existing is not None:
            if pfix is not None and existing.prefix != prefix:
                raise ValueError(
                    f"rpqueue instance {name!r} exists with prefix {existing.prefix!r}, "
                    f"not {prefix!r}"
                )
            return existing
        app = RPQueue(name, prefix)
        _instances[name] = app
        CONTEXTS[name] = app.ctx
        return app
