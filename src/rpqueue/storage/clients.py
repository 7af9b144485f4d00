"""The Redis clients of one app: how to connect, and the clients made from it.

One sync client shared by every thread, a redis.asyncio client per event
loop, and a held connection per thread for the hot paths (``direct.py``).
Changing the settings drops every client made from the old ones.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import redis

from .connection import (
    CLUSTER_TLS_SETTINGS,
    client_from_url,
    is_cluster,
    no_retry,
    redact,
    tls_settings,
)
from .direct import Direct, DirectPerThread

ENV_URL = "RPQUEUE_URL"
DEFAULT_TIMEOUT = 30.0


class Clients:
    """Connection settings and the clients made from them."""

    def __init__(self) -> None:
        self._client: Any = None
        self._aclients: dict[Any, Any] = {}
        self._fixed_aclient: Any = None
        self._settings: dict[str, Any] | None = None
        self._url: str | None = None
        self._url_timeout: float | None = DEFAULT_TIMEOUT
        self._lock = threading.Lock()
        self._direct = DirectPerThread()
        # Bumped whenever the settings change: caches of what a server knows
        # (e.g. which queues it has registered) compare it to stay valid.
        self.generation = 0

    # -- settings ----------------------------------------------------------------

    def use_settings(self, settings: dict[str, Any]) -> None:
        with self._lock:
            self._settings, self._url, self._client = settings, None, None
            self._aclients, self._fixed_aclient = {}, None
            self.generation += 1

    def use_client(self, conn: Any) -> None:
        with self._lock:
            self._client, self._settings, self._url = conn, None, None
            self._aclients, self._fixed_aclient = {}, None
            self.generation += 1

    def use_url(self, url: str, socket_timeout: float | None = DEFAULT_TIMEOUT) -> None:
        client = client_from_url(url, socket_timeout)
        with self._lock:
            self._client, self._settings, self._url = client, None, url
            self._url_timeout = socket_timeout
            self._aclients, self._fixed_aclient = {}, None
            self.generation += 1

    def use_async_client(self, conn: Any) -> None:
        self._fixed_aclient = conn

    # -- clients -----------------------------------------------------------------

    @property
    def client(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def aclient(self) -> Any:
        """A redis.asyncio client for the running event loop, matching the sync settings.

        asyncio connections belong to the loop that opened them, so each loop
        gets its own client.
        """
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

    def direct(self) -> Direct | None:
        """This thread's own connection for hot-path calls (None on a cluster)."""
        local = self._direct
        if local.direct is None or local.direct.pool is not getattr(
                self.client, "connection_pool", None):
            local.direct = None if self.cluster else Direct(self.client)
        return local.direct

    @property
    def cluster(self) -> bool:
        return is_cluster(self.client)

    def describe(self) -> str:
        """Where this connects, for logs and errors: never the password."""
        if self._url:
            return redact(self._url)
        if self.cluster:
            return "redis+cluster://" + ",".join(f"{n.host}:{n.port}"
                                                for n in self.client.get_nodes())
        pool = getattr(self.client, "connection_pool", None)
        if pool is None:
            return repr(self.client)
        kwargs = pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
        return (f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
                f"/{kwargs.get('db', 0)}")

    # -- making clients ----------------------------------------------------------

    def _make_client(self) -> Any:
        if self._settings is not None:
            return redis.Redis(**self._settings, retry=no_retry())
        url = os.environ.get(ENV_URL)
        if url:
            self._url = url
            return client_from_url(url)
        return redis.Redis(socket_timeout=DEFAULT_TIMEOUT, socket_connect_timeout=DEFAULT_TIMEOUT,
                           retry=no_retry())

    def _make_aclient(self) -> Any:
        import redis.asyncio as aredis
        from redis.asyncio.retry import Retry as ARetry
        from redis.backoff import NoBackoff

        if self._url or (self._settings is None and self._client is None
                         and os.environ.get(ENV_URL)):
            return client_from_url(self._url or os.environ[ENV_URL], self._url_timeout,
                                   asyncio=True)
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
        return aredis.Redis(socket_timeout=DEFAULT_TIMEOUT, socket_connect_timeout=DEFAULT_TIMEOUT,
                            retry=ARetry(NoBackoff(), 0))


def connection_settings(
    host: str = "localhost",
    port: int = 6379,
    db: int = 0,
    password: str | None = None,
    socket_timeout: float | None = DEFAULT_TIMEOUT,
    unix_socket_path: str | None = None,
    ssl: bool = False,
    ssl_ca_certs: str | None = None,
    username: str | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> dict[str, Any]:
    """redis-py client arguments for one server (see RPQueue.set_redis_connection_settings)."""
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
    return settings
