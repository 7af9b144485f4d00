"""Redis clients from URLs: single server, Redis Cluster and Sentinel.

- ``redis://host:port/db``, ``rediss://`` (TLS), ``unix:///path?db=0``
- ``redis+cluster://host:port[,host:port...]`` (and ``rediss+cluster://``):
  any reachable nodes of a cluster; the client discovers the rest.
- ``redis+sentinel://host:port[,host:port...]/service[/db]``: the primary of
  ``service`` as the sentinels name it, followed across failovers.

Passwords go in the URL as usual (``redis://:pw@host``,
``redis://user:pw@host``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError
from redis.retry import Retry

# Errors after which the same command may simply be tried again later: the
# server is unreachable, or a Cluster failover is in progress (CLUSTERDOWN
# until a replica takes over, TRYAGAIN / uncovered slots while the slot map
# changes). Workers back off and retry on these instead of giving up.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, ClusterDownError,
    TryAgainError, SlotNotCoveredError)

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel",
           "rediss+sentinel")


def _scheme(url: str) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"not a Redis URL: {url!r} (expected one of "
                         + ", ".join(s + "://" for s in SCHEMES) + ")")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"unsupported Redis URL scheme {scheme!r} in {url!r}")
    return scheme


def _nodes(netloc: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """host:port pairs of a comma-separated netloc, and its user and password."""
    user = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, password = auth.partition(":")
        user, password = unquote(user) or None, unquote(password) or None
    nodes = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "6379")
        nodes.append((host.strip("[]") or "localhost", int(port or 6379)))
    return nodes, user, password


def no_retry() -> Retry:
    """No silent re-sends: redis-py's default retry sends a command again when
    a connection drops after Redis ran it but before the reply came, which
    would run a script (an enqueue, a take) twice. rpqueue retries where it
    is safe, itself."""
    return Retry(NoBackoff(), 0)


def is_cluster(client: Any) -> bool:
    return bool(getattr(client, "cluster_response_callbacks", None) is not None
                or type(client).__name__ == "RedisCluster")


def socket_timeout(client: Any) -> float | None:
    """The socket timeout a sync or asyncio client (plain, Sentinel or Cluster) reads with."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if kwargs is None:  # a cluster client: the settings every node connection gets
        kwargs = getattr(getattr(client, "nodes_manager", None), "connection_kwargs", None)
    timeout = (kwargs or {}).get("socket_timeout")
    return None if timeout is None else float(timeout)


def client_from_url(url: str, socket_timeout: float | None = 30, asyncio: bool = False) -> Any:
    """A redis-py client (sync, or redis.asyncio with ``asyncio=True``) for a URL."""
    scheme = _scheme(url)
    common: dict[str, Any] = {"socket_timeout": socket_timeout,
                              "socket_connect_timeout": socket_timeout}
    if scheme in ("redis", "rediss", "unix"):
        mod: Any = redis.asyncio if asyncio else redis
        return mod.Redis.from_url(url, **common)
    parts = urlsplit(url)
    nodes, user, password = _nodes(parts.netloc)
    tls = scheme.startswith("rediss")
    auth: dict[str, Any] = {"username": user, "password": password}
    if tls:
        auth["ssl"] = True
    if scheme.endswith("+cluster"):
        if asyncio:
            from redis.asyncio.cluster import ClusterNode as ANode
            from redis.asyncio.cluster import RedisCluster as ACluster

            return ACluster(startup_nodes=[ANode(h, p) for h, p in nodes], **auth, **common)
        from redis.cluster import ClusterNode, RedisCluster

        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **auth,
                            **common)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"{url!r}: a sentinel URL names the service: "
                         "redis+sentinel://host:port/service[/db]")
    service, db = path[0], int(path[1]) if len(path) > 1 else 0
    if asyncio:
        from redis.asyncio.sentinel import Sentinel as ASentinel

        asentinel: Any = ASentinel(nodes, sentinel_kwargs=common)
        return asentinel.master_for(service, db=db, **auth, **common)
    from redis.sentinel import Sentinel

    sentinel: Any = Sentinel(nodes, sentinel_kwargs=common)
    return sentinel.master_for(service, db=db, **auth, **common)
