"""The app object: settings, the Redis connection and the task registry.

Everything that the original kept in module globals lives on an RPQueue
instance; the module-level API in ``rpqueue`` delegates to a default one,
and ``new_rpqueue`` makes more that share nothing with it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import redis

from .broker import Broker, text
from .connection import (
    CLUSTER_TLS_SETTINGS,
    client_from_url,
    is_cluster,
    no_retry,
    redact,
    tls_settings,
)
from .direct import Direct, DirectPerThread
from .errors import translate
from .keys import DEFAULT_PREFIX, Keys, normalize_queue
from .message import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from .broker import Call
    from .durable import Durability
    from .task import Task

log = logging.getLogger("rpqueue")

DEFAULT_QUEUE = "default"
DEADLETTER_QUEUE = "DEADLETTER_QUEUE"
MINIMUM_DELAY = 1
ENV_URL = "RPQUEUE_URL"


class RPQueue:
    """One independent rpqueue: its own key prefix, connection and tasks."""

    def __init__(self, name: str = "default", prefix: str = DEFAULT_PREFIX) -> None:
        self.name = name
        self.keys = Keys(prefix)
        self.registry: dict[str, Task] = {}
        self.hooks: list[Any] = []
        self._direct = DirectPerThread()
        self.max_message_bytes = MAX_MESSAGE_BYTES
        # A task without a visibility timeout holds a lease this long; the
        # worker renews it while the task runs, so it only bounds how long a
        # crashed worker's task still shows as started.
        self.running_lease = 300.0
        self._client: Any = None
        self._aclients: dict[Any, Any] = {}
        self._fixed_aclient: Any = None
        self._settings: dict[str, Any] | None = None
        self._url: str | None = None
        self._url_timeout: float | None = 30
        self._lock = threading.Lock()
        self._seen_queues: set[str] = set()
        self.broker = Broker(self)
        # Durable enqueue (set_durable): None, or how many replicas must
        # confirm each enqueue and how long to wait for them.
        self.durable: Durability | None = None

    # -- configuration -------------------------------------------------------

    @property
    def prefix(self) -> str:
        return self.keys.prefix

    def set_key_prefix(self, prefix: str | bytes) -> None:
        if isinstance(prefix, bytes):
            prefix = prefix.decode("utf-8")
        self.keys = Keys(prefix)
        self._seen_queues.clear()

    def set_redis_connection_settings(
        self,
        host: str = "localhost",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        socket_timeout: float | None = 30,
        unix_socket_path: str | None = None,
        ssl: bool = False,
        ssl_ca_certs: str | None = None,
        username: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        """Connect to one server. ``username`` (with ``password``) logs in as an
        ACL user; ``ssl`` turns on TLS with the server's certificate verified
        (against ``ssl_ca_certs``, else the system's CAs); ``ssl_certfile`` and
        ``ssl_keyfile`` are this client's certificate, for servers that ask
        for one (``tls-auth-clients``). See docs/SECURITY.md."""
        settings: dict[str, Any] = {
            "host": host, "port": int(port), "db": int(db), "password": password,
            "socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout,
        }
        if username:
            settings["username"] = username
        if unix_socket_path:
            settings["unix_socket_path"] = unix_socket_path
        if ssl:
            settings["ssl"] = True
            for name, value in (("ssl_ca_certs", ssl_ca_certs), ("ssl_certfile", ssl_certfile),
                                ("ssl_keyfile", ssl_keyfile)):
                if value:
                    settings[name] = value
        with self._lock:
            self._settings, self._url, self._client = settings, None, None
            self._aclients, self._fixed_aclient = {}, None
            # Another Redis does not know our queues yet.
            self._seen_queues.clear()

    def set_redis_connection(self, conn: Any) -> None:
        with self._lock:
            self._client, self._settings, self._url = conn, None, None
            self._aclients, self._fixed_aclient = {}, None
            # Another Redis does not know our queues yet.
            self._seen_queues.clear()

    def set_redis_url(self, url: str, socket_timeout: float | None = 30) -> None:
        client = client_from_url(url, socket_timeout)
        with self._lock:
            self._client, self._settings, self._url = client, None, url
            self._url_timeout = socket_timeout
            self._aclients, self._fixed_aclient = {}, None
            # Another Redis does not know our queues yet.
            self._seen_queues.clear()

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def set_redis_async_connection(self, conn: Any) -> None:
        """Use this redis.asyncio client for the async API (else one is made to match)."""
        self._fixed_aclient = conn

    def aclient(self) -> Any:
        """A redis.asyncio client for the running event loop, matching the sync settings.

        asyncio connections belong to the loop that opened them, so each loop
        gets its own client.
        """
        import asyncio

        if self._fixed_aclient is not None:
            return self._fixed_aclient
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            # A closed loop's client can never be used again: dropping it lets
            # its connections close (each asyncio.run() makes a new loop).
            for old in [lp for lp in self._aclients if lp.is_closed()]:
                del self._aclients[old]
            client = self._make_aclient()
            self._aclients[loop] = client
        return client

    def _make_aclient(self) -> Any:
        import redis.asyncio as aredis

        if self._url or (self._settings is None and self._client is None
                         and os.environ.get(ENV_URL)):
            return client_from_url(self._url or os.environ[ENV_URL], self._url_timeout,
                                   asyncio=True)
        from redis.asyncio.retry import Retry as ARetry
        from redis.backoff import NoBackoff

        if self._settings is not None:
            return aredis.Redis(**self._settings, retry=ARetry(NoBackoff(), 0))
        if self._client is not None and is_cluster(self._client):
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            nodes = [ClusterNode(n.host, n.port) for n in self._client.get_nodes()]
            # The same credentials, TLS settings and timeouts as the given client.
            given = self._client.nodes_manager.connection_kwargs
            same = ("username", "password", "socket_timeout", "socket_connect_timeout")
            return RedisCluster(startup_nodes=nodes,
                                **{k: given[k] for k in same if given.get(k) is not None},
                                **tls_settings(given, keep=CLUSTER_TLS_SETTINGS))
        if self._client is not None:
            # A client given by the caller: open the async one to the same server,
            # over TLS if it uses TLS (its pool's connection class says so).
            pool = self._client.connection_pool
            kwargs = dict(pool.connection_kwargs)
            keep = ("host", "port", "db", "username", "password", "socket_timeout",
                    "socket_connect_timeout", "path")
            tls = tls_settings(kwargs, pool.connection_class)
            kwargs = {k: v for k, v in kwargs.items() if k in keep}
            if "path" in kwargs:
                kwargs["unix_socket_path"] = kwargs.pop("path")
            return aredis.Redis(**kwargs, **tls, retry=ARetry(NoBackoff(), 0))
        return aredis.Redis(socket_timeout=30, socket_connect_timeout=30,
                            retry=ARetry(NoBackoff(), 0))

    def _make_client(self) -> Any:
        if self._settings is not None:
            return redis.Redis(**self._settings, retry=no_retry())
        url = os.environ.get(ENV_URL)
        if url:
            self._url = url
            return client_from_url(url)
        return redis.Redis(socket_timeout=30, socket_connect_timeout=30, retry=no_retry())

    @property
    def cluster(self) -> bool:
        return is_cluster(self.client)

    def describe_connection(self) -> str:
        if self._url:
            return redact(self._url)  # logged by workers: never the password
        if self.cluster:
            return "redis+cluster://" + ",".join(f"{n.host}:{n.port}"
                                                for n in self.client.get_nodes())
        pool = getattr(self.client, "connection_pool", None)
        if pool is None:
            return repr(self.client)
        kwargs = pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
        return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    def set_durable(self, replicas: int, timeout: float = 1.0) -> None:
        """Make ``execute()`` wait until ``replicas`` replicas hold each task.

        Each enqueue is followed by ``WAIT replicas timeout`` in the same round
        trip; if fewer replicas confirm within ``timeout`` seconds, it raises
        ``rpqueue.errors.NotDurable`` (the task may still be queued). 0 turns
        it off. See docs/SCALING.md.
        """
        from .durable import durability

        self.durable = durability(replicas, timeout)

    def direct(self) -> Direct | None:
        """This thread's own connection for hot-path calls (None on a cluster)."""
        local = self._direct
        if local.direct is None or local.direct.pool is not getattr(
                self.client, "connection_pool", None):
            local.direct = None if self.cluster else Direct(self.client)
        return local.direct

    def run_enqueue(self, call: Call[Any]) -> Any:
        """Run an enqueue call: durably when set_durable() asked for it."""
        if self.durable is None:
            return self.broker.run(call, self.direct())
        from .durable import run_durable

        return run_durable(self, call)

    async def arun_enqueue(self, call: Call[Any]) -> Any:
        if self.durable is None:
            return await self.broker.arun(call)
        from .durable import arun_durable

        return await arun_durable(self, call)

    # -- lifecycle hooks -------------------------------------------------------

    def add_hook(self, hook: Any) -> None:
        """Register an object with any of before_task(running),
        after_task(running, result, error), on_retry(task, taskid, delay),
        on_dead(task, taskid, reason, error). See rpqueue.hooks."""
        self.hooks.append(hook)

    def emit(self, event: str, *args: Any) -> None:
        for hook in self.hooks:
            method = getattr(hook, event, None)
            if method is None:
                continue
            try:
                method(*args)
            except Exception:
                # A broken hook (tracing, metrics) must never fail the task.
                log.exception("hook %r failed in %s", hook, event)

    # -- queues --------------------------------------------------------------

    def note_queue(self, queue: str) -> None:
        """Remember a queue in the known-queues index, once per process."""
        if queue not in self._seen_queues:
            try:
                added = self.client.zadd(self.keys.queues, {queue: self.redis_time()})
            except redis.exceptions.ResponseError as exc:
                raise translate(exc, f"a task for queue {queue!r}") from exc
            if added:
                pipe = self.client.pipeline(transaction=False)
                pipe.rpush(self.keys.queues_wake, "1")
                pipe.ltrim(self.keys.queues_wake, -1, -1)
                pipe.incr(self.keys.queues_version)
                pipe.execute()
            self._seen_queues.add(queue)

    async def anote_queue(self, queue: str) -> None:
        if queue not in self._seen_queues:
            client = self.aclient()
            secs, micros = await client.time()
            if await client.zadd(self.keys.queues, {queue: int(secs) + int(micros) / 1e6}):
                await client.rpush(self.keys.queues_wake, "1")
                await client.ltrim(self.keys.queues_wake, -1, -1)
            self._seen_queues.add(queue)

    def redis_time(self) -> float:
        secs, micros = self.client.time()
        return int(secs) + int(micros) / 1e6

    def set_priority(self, queue: str | bytes, qpri: float) -> None:
        name = normalize_queue(queue)
        self.client.hset(self.keys.priorities, name, qpri)
        self.client.incr(self.keys.queues_version)
        self.note_queue(name)

    def set_scheduling(self, mode: str, age: float | None = None) -> None:
        """How workers share out their queues: "strict" priority order (the
        default), "weighted" (set_queue_weight) or "aging" (a queue whose next
        task waited over ``age`` seconds goes first). See docs/OPERATIONS.md."""
        from .worker.scheduling import check_mode

        mode, age = check_mode(mode, age)
        pipe = self.client.pipeline(transaction=False)
        if age is None:
            pipe.hset(self.keys.scheduling, "mode", mode)
            pipe.hdel(self.keys.scheduling, "age")
        else:
            pipe.hset(self.keys.scheduling, mapping={"mode": mode, "age": repr(age)})
        pipe.incr(self.keys.queues_version)
        pipe.execute()

    def get_scheduling(self) -> dict[str, Any]:
        """{"mode": ..., "age": seconds or None}, as workers read it."""
        from .worker.scheduling import parse_settings

        settings = parse_settings(self.client.hgetall(self.keys.scheduling), {})
        return {"mode": settings.mode, "age": settings.age}

    def set_queue_weight(self, queue: str | bytes, weight: float) -> None:
        """The share of ``queue`` in the weighted mode (default 1)."""
        from .worker.scheduling import check_weight

        name = normalize_queue(queue)
        value = check_weight(weight)
        self.client.hset(self.keys.weights, name, repr(value))
        self.client.incr(self.keys.queues_version)
        self.note_queue(name)

    def queue_weights(self) -> dict[str, float]:
        """The weights set with set_queue_weight (queues not listed weigh 1)."""
        from .worker.scheduling import parse_settings

        return dict(parse_settings({}, self.client.hgetall(self.keys.weights)).weights)

    def priorities(self) -> dict[str, float]:
        raw = self.client.hgetall(self.keys.priorities)
        out: dict[str, float] = {}
        for k, v in raw.items():
            try:
                out[text(k)] = float(text(v))
            except ValueError:
                continue
        return out

    def known_queues(self) -> list[str]:
        return sorted(text(q) for q in self.client.zrange(self.keys.queues, 0, -1))

    def ordered_queues(self, queues: list[str] | None = None) -> list[str]:
        """Queues in the order a worker serves them.

        Named queues keep the order given. Otherwise every known queue:
        those with a priority first, lowest value first, then the rest by name.
        """
        if queues:
            return [normalize_queue(q) for q in queues]
        pri = self.priorities()
        names = set(self.known_queues()) | set(pri)
        return sorted(names, key=lambda q: (q not in pri, pri.get(q, 0.0), q))

    # -- task registry -------------------------------------------------------

    def register(self, task: Task) -> None:
        old = self.registry.get(task.name)
        if old is not None and old.function is not task.function:
            log.warning("task %s defined twice; the later definition wins", task.name)
        self.registry[task.name] = task

    def publish_registry(self) -> None:
        """Write this process's task settings to Redis, for call_task and known_tasks."""
        if not self.registry:
            return
        self.client.hset(
            self.keys.tasks,
            mapping={name: json.dumps(t.settings()) for name, t in self.registry.items()},
        )

    def read_registry(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for k, v in self.client.hgetall(self.keys.tasks).items():
            try:
                settings = json.loads(v)
            except ValueError:
                continue
            if isinstance(settings, dict):
                out[text(k)] = settings
        return out


_instances: dict[str, RPQueue] = {}
_instances_lock = threading.Lock()


def new_rpqueue(name: str, pfix: str | None = None) -> RPQueue:
    """An independent instance; the same name and prefix give the same one."""
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
        return app


def _bind_api() -> None:
    """Give RPQueue the public API as methods, delegating to the modules that hold it.

    Done here, after the class exists, because those modules import app.
    """
    from . import admin, decorators
    from .worker import execute_tasks

    def method(fn: Any) -> Any:
        def bound(self: RPQueue, *args: Any, **kwargs: Any) -> Any:
            return fn(self, *args, **kwargs)

        bound.__name__ = fn.__name__
        bound.__doc__ = fn.__doc__
        return bound

    for fn in (decorators.task, decorators.periodic_task, decorators.cron_task,
               admin.queue_sizes, admin.queue_info, admin.clear_queue, admin.get_page,
               admin.delete_item, admin.read_deadletter, admin.results, admin.get_task,
               admin.call_task, admin.flush_tasks, admin.set_queue_limit, admin.queue_limit,
               execute_tasks):
        setattr(RPQueue, fn.__name__, method(fn))

    RPQueue.known_tasks = property(lambda self: admin.KnownTasks(self))  # type: ignore[attr-defined]
    RPQueue.result = lambda self, taskid: admin.results(self, [taskid])[0]  # type: ignore[attr-defined]
