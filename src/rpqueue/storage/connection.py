"""Redis clients from URLs: single server, Redis Cluster and Sentinel.

- ``redis://host:port/db``, ``rediss://`` (TLS), ``unix:///path?db=0``
- ``redis+cluster://host:port[,host:port...]`` (and ``rediss+cluster://``):
  any reachable nodes of a cluster; the client discovers the rest.
- ``redis+sentinel://host:port[,host:port...]/service[/db]``: the primary of
  ``service`` as the sentinels name it, followed across failovers.

Passwords go in the URL as usual (``redis://:pw@host``,
``redis://user:pw@host``). TLS settings go in the query of a ``rediss``
URL (``?ssl_ca_certs=/path/ca.pem&ssl_certfile=...&ssl_keyfile=...``), for
cluster and sentinel URLs too; certificates are verified unless
``ssl_cert_reqs=none`` says otherwise.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError

# Re-exported: Redis's refusal of a command, for layers above storage
# (which never import redis) to recognise in a pipeline's replies.
from redis.exceptions import ResponseError as ResponseError
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


# TLS settings of a client, carried over to the clients made to match it.
TLS_SETTINGS = ("ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
                "ssl_ca_path", "ssl_check_hostname", "ssl_password", "ssl_min_version",
                "ssl_ciphers", "ssl_include_verify_flags", "ssl_exclude_verify_flags")
# Those a cluster client accepts.
CLUSTER_TLS_SETTINGS = tuple(k for k in TLS_SETTINGS if k not in ("ssl_ca_path", "ssl_password"))
# Those a cluster or sentinel URL may set in its query (a plain rediss:// URL
# is parsed by redis-py itself).
_URL_TLS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname",
            "ssl_ca_path")


def tls_settings(kwargs: dict[str, Any], connection_class: Any = None,
                 keep: tuple[str, ...] = TLS_SETTINGS) -> dict[str, Any]:
    """The TLS settings of a client's connection kwargs, to give a client made
    to match it: empty for a plain connection. Without this, a client derived
    from a TLS one would speak plain text (sending the password in clear)."""
    cls = connection_class or kwargs.get("connection_class")
    if not (kwargs.get("ssl") or (isinstance(cls, type) and issubclass(cls, redis.SSLConnection))):
        return {}
    out: dict[str, Any] = {"ssl": True}
    out.update({k: kwargs[k] for k in keep if kwargs.get(k) is not None})
    return out


def _url_tls(query: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in parse_qs(query).items():
        if name in _URL_TLS and values:
            value: Any = values[-1]
            if name == "ssl_check_hostname":
                value = value.lower() not in ("0", "false", "no", "off")
            out[name] = value
    return out


_PASSWORD_PARAM = re.compile(r"([?&](?:ssl_)?password=)[^&#]*")


def redact(url: str) -> str:
    """A Redis URL with its passwords replaced by ``***``: for logs and pages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min([len(rest)] + [i for i in (rest.find(m) for m in "?#") if i != -1])
    head, tail = rest[:cut], _PASSWORD_PARAM.sub(r"\1***", rest[cut:])
    if "@" in head and not head.startswith("/"):
        # The last "@" before the query ends the credentials, even if the
        # password holds an unescaped "/" or "@".
        auth, host = head.rsplit("@", 1)
        user, colon, _ = auth.partition(":")
        head = f"{user}{':***' if colon else ''}@{host}"
    return f"{scheme}://{head}{tail}"


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
        auth.update(_url_tls(parts.query))
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
