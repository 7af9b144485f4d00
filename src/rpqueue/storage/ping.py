"""Probing a local Redis-compatible server: the few calls rpqueue.server needs.

rpqueue.server launches and stops a redis-server child process; only the
storage layer talks to Redis, so the launcher asks here whether a server
answers, which process it is, and to shut it down.
"""

from __future__ import annotations

from typing import Any

import redis

from .connection import no_retry


def server_client(
    *, host: str = "127.0.0.1", port: int | None = None, unix_socket: str | None = None, **kwargs: Any
) -> redis.Redis:
    """A redis-py client for a server on ``host:port`` or on a unix socket."""
    if unix_socket is not None:
        return redis.Redis(unix_socket_path=unix_socket, **kwargs)
    return redis.Redis(host=host, port=6379 if port is None else port, **kwargs)


def answers_ping(
    *, host: str = "127.0.0.1", port: int | None = None, unix_socket: str | None = None,
    timeout: float = 1.0,
) -> bool:
    """True if a Redis-compatible server is listening there."""
    client = server_client(host=host, port=port, unix_socket=unix_socket,
                           socket_connect_timeout=timeout, socket_timeout=timeout,
                           retry=no_retry())
    try:
        client.ping()
        return True
    except (redis.AuthenticationError, redis.ResponseError):
        # A password-protected or otherwise picky Redis is still a Redis.
        return True
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class Probe:
    """One connection reused while waiting for a starting server to answer.

    ``server_pid()`` tells which process answers, so a caller can tell its
    own server from someone else's that holds the same port.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None,
                 unix_socket: str | None = None) -> None:
        # No retries: a refused connection during startup must fail at once,
        # not after redis-py's backoff.
        self._client = server_client(host=host, port=port, unix_socket=unix_socket,
                                     socket_connect_timeout=0.5, socket_timeout=1.0,
                                     retry=no_retry())

    def server_pid(self, default: int) -> int | None:
        """The answering server's process id (``default`` if it does not say);
        None when nothing answers yet."""
        try:
            if not self._client.ping():
                return None
            pid: int = self._client.info("server").get("process_id", default)
            return pid
        except (redis.RedisError, OSError):
            return None

    def close(self) -> None:
        self._client.close()


def shutdown(*, host: str = "127.0.0.1", port: int | None = None, unix_socket: str | None = None,
             timeout: float = 10.0) -> bool:
    """Send SHUTDOWN (the server fsyncs its AOF first); False if it could not be sent."""
    client = server_client(host=host, port=port, unix_socket=unix_socket,
                           socket_connect_timeout=min(timeout, 2.0), socket_timeout=timeout,
                           retry=no_retry())
    try:
        client.shutdown()
        return True
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
