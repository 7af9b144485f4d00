"""One connection per thread for the hot paths: execute(), take, finish-and-take.

Holding a connection skips the pool checkout and redis-py's per-command
wrappers, a large share of what a small script call costs. Only for a
single server or Sentinel: a cluster client routes each call itself.
"""

from __future__ import annotations

import os
import select
import ssl
import threading
from typing import Any

from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from .scripts import LuaScript


class Direct:
    def __init__(self, client: Any) -> None:
        self.pool = client.connection_pool
        self.conn: Any = None
        self.pid = os.getpid()
        self._sock: Any = None
        self._poller: Any = None

    def call(self, script: LuaScript, keys: list[str], args: list[Any]) -> Any:
        if self.pid != os.getpid():
            # A forked child must not talk on its parent's socket.
            self.conn, self.pid = None, os.getpid()
        if self.conn is None:
            self.conn = self.pool.get_connection()
        else:
            # Checked before every call, however recent the last: a server
            # restarted a moment ago must not fail the next execute().
            self._check()
        try:
            return script.call_on(self.conn, keys, args)
        except BaseException as exc:
            if not isinstance(exc, ResponseError):
                # The stream is in an unknown state: use a fresh connection next.
                self.conn.disconnect()
                self.pool.release(self.conn)
                self.conn = None
            raise


    def _check(self) -> None:
        """As the pool does at checkout: a connection with something to read
        between calls was closed by the server (a restart); open a new one
        rather than fail the next call.

        A poll() of the plain socket costs a third of redis-py's can_read()
        (which switches the socket to non-blocking and back); TLS sockets,
        which may hold decrypted bytes poll() cannot see, use can_read().
        """
        sock = getattr(self.conn, "_sock", None)
        try:
            if sock is None or isinstance(sock, ssl.SSLSocket) or not hasattr(select, "poll"):
                stale = self.conn.can_read()
            else:
                if sock is not self._sock:
                    self._sock, self._poller = sock, select.poll()
                    self._poller.register(sock, select.POLLIN | select.POLLPRI)
                stale = bool(self._poller.poll(0))
            if stale:
                raise ConnectionError("connection has unread data")
        except (ConnectionError, TimeoutError, OSError):
            self.conn.disconnect()
            self.conn.connect()


class DirectPerThread(threading.local):
    direct: Direct | None = None
