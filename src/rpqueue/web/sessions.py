"""Login sessions and the throttle on token guesses.

A login makes a random session id (256 bits), kept in this process's
memory with an expiry: the cookie reveals nothing about the token, dies
with the server, at logout or when it expires, and a dashboard on another
port (browsers send cookies to every port of a host) does not know it.

The throttle counts wrong tokens, per client address and for the whole
server, in token buckets: a client may get ``burst`` wrong in a row, then
one more per ``per_client_interval`` seconds; all clients together
``overall_burst``, then one per ``overall_interval``. Once a bucket is empty
every token attempt is answered 429 without comparing the token at all, so
sending guesses in parallel buys nothing. A right token costs nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

MIN_TOKEN_LENGTH = 16
SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 10_000
# Client buckets kept in memory; beyond this the full ones are forgotten first.
MAX_CLIENTS = 10_000


def check_token(token: str | None) -> None:
    """ValueError unless ``token`` is None or long enough to resist guessing."""
    if token is None:
        return
    if not token:
        raise ValueError("the dashboard token must not be empty")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the dashboard token is {len(token)} characters; use at least {MIN_TOKEN_LENGTH} "
            f"(for example the output of: python -c \"import secrets; "
            f"print(secrets.token_urlsafe(32))\"): it is the only thing between the network "
            f"and the power to requeue or delete dead letters, and a short one can be guessed")


class Sessions:
    """Random session ids with an expiry, in memory."""

    def __init__(self, ttl: float = SESSION_TTL, limit: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.limit = limit
        self.clock = clock
        # Keyed by a hash of the id: the ids themselves are never kept.
        self._expiry: dict[bytes, float] = {}

    @staticmethod
    def _key(sid: str) -> bytes:
        return hashlib.sha256(sid.encode("utf-8", "replace")).digest()

    def start(self) -> str:
        """A new session id, valid for ``ttl`` seconds."""
        now = self.clock()
        if len(self._expiry) >= self.limit:
            for key in [k for k, t in self._expiry.items() if t <= now]:
                del self._expiry[key]
            while len(self._expiry) >= self.limit:
                # Dicts keep insertion order: the oldest login goes first.
                del self._expiry[next(iter(self._expiry))]
        sid = secrets.token_urlsafe(32)
        self._expiry[self._key(sid)] = now + self.ttl
        return sid

    def valid(self, sid: str | None) -> bool:
        """Whether ``sid`` is a live session of this process."""
        if not sid or len(sid) > 100:
            return False
        key = self._key(sid)
        expiry = self._expiry.get(key)
        if expiry is None:
            return False
        if expiry <= self.clock():
            del self._expiry[key]
            return False
        return True

    def end(self, sid: str | None) -> None:
        """Log out: the session stops working at once."""
        if sid:
            self._expiry.pop(self._key(sid), None)


@dataclass
class _Bucket:
    left: float
    at: float


class Throttle:
    """Token buckets of wrong guesses, per client and overall (module docstring)."""

    def __init__(self, burst: int = 10, per_client_interval: float = 1.0,
                 overall_burst: int = 100, overall_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.interval = burst, per_client_interval
        self.overall_burst, self.overall_interval = overall_burst, overall_interval
        self.clock = clock
        self._clients: dict[str, _Bucket] = {}
        self._overall = _Bucket(float(overall_burst), clock())

    @staticmethod
    def _refill(bucket: _Bucket, now: float, cap: int, interval: float) -> None:
        bucket.left = min(float(cap), bucket.left + (now - bucket.at) / interval)
        bucket.at = now

    def _client(self, client: str, now: float) -> _Bucket:
        bucket = self._clients.get(client)
        if bucket is None:
            if len(self._clients) >= MAX_CLIENTS:
                for name, b in list(self._clients.items()):
                    self._refill(b, now, self.burst, self.interval)
                    if b.left >= self.burst:
                        del self._clients[name]
                while len(self._clients) >= MAX_CLIENTS:
                    del self._clients[next(iter(self._clients))]
            bucket = self._clients[client] = _Bucket(float(self.burst), now)
        return bucket

    def allowed(self, client: str) -> bool:
        """Whether ``client`` may try a token now."""
        now = self.clock()
        self._refill(self._overall, now, self.overall_burst, self.overall_interval)
        bucket = self._client(client, now)
        self._refill(bucket, now, self.burst, self.interval)
        return bucket.left >= 1 and self._overall.left >= 1

    def failed(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        now = self.clock()
        bucket = self._client(client, now)
        bucket.left = max(0.0, bucket.left - 1)
        self._overall.left = max(0.0, self._overall.left - 1)

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again."""
        bucket = self._clients.get(client)
        wait = 0.0
        if bucket is not None and bucket.left < 1:
            wait = (1 - bucket.left) * self.interval
        if self._overall.left < 1:
            wait = max(wait, (1 - self._overall.left) * self.overall_interval)
        return max(1, int(wait + 0.999))
