"""Who may use the dashboard, and how a page proves a POST is its own.

Three independent checks, all in one ASGI middleware so no route can forget
them:

- Host header: by default only loopback names. A page on another site can
  point its own DNS name at 127.0.0.1 (DNS rebinding) and then talk to the
  dashboard as "same origin"; the Host header it sends still names that
  site, so refusing unknown hosts closes that hole.
- Token (optional): ``Authorization: Bearer <token>`` or the cookie the
  login form sets.
- CSRF on every unsafe method: the ``X-CSRF-Token`` header must be the
  HMAC of this browser's session cookie under a per-process secret, and an
  ``Origin`` header, when sent, must be this server. Requests authenticated
  by a Bearer header are exempt: a browser never adds that header on its
  own, so another site cannot make a victim's browser send it.

Before any of them, the request body is checked: a Content-Length over the
cap is refused at once, and the body is read here, up to the cap and no
further, so no request (logged in or not) makes the server hold more than
``MAX_BODY`` bytes. Token attempts are throttled (sessions.py), and an
error inside the app still answers with the security headers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import traceback
from collections.abc import Collection
from typing import Literal
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .sessions import Sessions, Throttle, check_token

log = logging.getLogger("rpqueue.dashboard")

SESSION_COOKIE = "rpqueue_dashboard_session"
AUTH_COOKIE = "rpqueue_dashboard_auth"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without the token: the form to present it, and the stylesheet
# that form uses (shipped code, no queue data).
PUBLIC_PATHS = frozenset({"/login", "/static/style.css"})
# The largest body any request may carry (the API's JSON), and the login
# form's (a token field); both enforced before authentication.
MAX_BODY = 1024 * 1024
MAX_LOGIN_BODY = 4096

# No inline script or style at all: even if some data slipped into markup,
# the browser would refuse to run it. The page's own code is app.js.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # Not no-referrer: with that, browsers send "Origin: null" on the login
    # form's POST, which the Origin check must refuse.
    "referrer-policy": "same-origin",
    # API replies hold live queue data and the page changes with the
    # package version: nothing here should be served from a cache.
    "cache-control": "no-store",
}


class Security:
    """The secrets and the checks; one per app."""

    def __init__(self, token: str | None, allowed_hosts: Collection[str] | None,
                 throttle: Throttle | None = None, sessions: Sessions | None = None) -> None:
        check_token(token)
        self.token = token
        # Per process: CSRF tokens die with the server, and the page simply
        # fetches a fresh one (see app.js) when a POST is refused.
        self._secret = secrets.token_bytes(32)
        hosts = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}
        self.allowed_hosts = None if hosts is None or "*" in hosts else frozenset(hosts)
        self.throttle = throttle or Throttle()
        self.sessions = sessions or Sessions()

    # -- host --

    def host_allowed(self, host_header: str) -> bool:
        if self.allowed_hosts is None:
            return True
        host = host_header.lower()
        if host.startswith("["):
            host = host[1:host.find("]")] if "]" in host else host[1:]
        else:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return host in self.allowed_hosts

    # -- token --

    def attempt(self, client: str, given: str) -> Literal["ok", "wrong", "throttled"]:
        """Check a token ``client`` presented, under the throttle.

        No await between the throttle's check and its count: concurrent
        guesses are counted one by one by the event loop.
        """
        if not self.throttle.allowed(client):
            return "throttled"
        if self.token is not None and hmac.compare_digest(given.encode("utf-8", "replace"),
                                                          self.token.encode()):
            return "ok"
        self.throttle.failed(client)
        return "wrong"

    def bearer(self, conn: HTTPConnection) -> str | None:
        """The token of an ``Authorization: Bearer`` header, if one was sent."""
        scheme, _, value = conn.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None

    def cookie_ok(self, conn: HTTPConnection) -> bool:
        # Not throttled: a session id is 256 random bits, not worth guessing,
        # and a tab left open across a restart must not lock its user out.
        return self.sessions.valid(conn.cookies.get(AUTH_COOKIE))

    # -- CSRF --

    def csrf_token(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, conn: HTTPConnection) -> bool:
        session = conn.cookies.get(SESSION_COOKIE)
        given = conn.headers.get(CSRF_HEADER)
        if not session or not given:
            return False
        return hmac.compare_digest(given.encode(), self.csrf_token(session).encode())

    @staticmethod
    def same_origin(conn: HTTPConnection) -> bool:
        """False only when the browser says the request comes from another origin."""
        origin = conn.headers.get("origin")
        if origin is None:
            return True
        if origin == "null":
            return False
        return urlsplit(origin).netloc.lower() == conn.headers.get("host", "").lower()


def _api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _deny(path: str, status: int, code: str, message: str,
          headers: dict[str, str] | None = None) -> Response:
    if _api(path):
        return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)
    return PlainTextResponse(message, status_code=status, headers=headers)


def client_of(scope: Scope) -> str:
    """The client's address: what the throttle counts guesses by."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _escaped(text: str, limit: int = 2000) -> str:
    out = text.encode("unicode_escape").decode("ascii")
    return out if len(out) <= limit else out[:limit] + "..."


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None if the client went away; _TooLarge past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class Guard:
    """ASGI middleware applying :class:`Security` to every HTTP request."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        conn = HTTPConnection(scope)
        path = conn.url.path
        denial = self.check_size(conn, path)
        body: bytes | None = b""
        if denial is None:
            try:
                body = await _read_body(receive, MAX_LOGIN_BODY if path == "/login" else MAX_BODY)
            except _TooLarge:
                denial = _deny(path, 413, "size", "request body too large")
            if body is None:
                return  # the client is gone: nobody to answer
        if denial is None:
            denial = self.check(conn, scope["method"], client_of(scope))
        if denial is not None:
            await denial(scope, receive, send_with_headers)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send_with_headers)
        except Exception as exc:
            # Inside the guard, unlike Starlette's own error page: the 500
            # carries the security headers. Logged escaped (record text may
            # be in the message), with the traceback's frames.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("dashboard: %s %s failed: %s\n%s", scope["method"], _escaped(path, 200),
                      _escaped(repr(exc)), frames.rstrip("\n"))
            if not started:
                await _deny(path, 500, "internal", "internal error (see the dashboard's log)")(
                    scope, replay, send_with_headers)

    def check_size(self, conn: HTTPConnection, path: str) -> Response | None:
        length = conn.headers.get("content-length")
        if length is None:
            return None
        if not length.isascii() or not length.isdigit():
            return _deny(path, 400, "size", "Content-Length is not a number")
        if int(length) > (MAX_LOGIN_BODY if path == "/login" else MAX_BODY):
            return _deny(path, 413, "size", "request body too large")
        return None

    def check(self, conn: HTTPConnection, method: str, client: str) -> Response | None:
        sec, path = self.security, conn.url.path
        if not sec.host_allowed(conn.headers.get("host", "")):
            return _deny(path, 400, "host", "unexpected Host header: the dashboard only answers to "
                         "the names it was started for")
        bearer = False
        if sec.token is not None:
            given = sec.bearer(conn)
            if given is not None:
                outcome = sec.attempt(client, given)
                if outcome == "throttled":
                    return _deny(path, 429, "throttled", "too many wrong tokens; try again later",
                                 {"retry-after": str(sec.throttle.retry_after(client))})
                bearer = outcome == "ok"
        if sec.token is not None and not bearer and path not in PUBLIC_PATHS and not sec.cookie_ok(conn):
            if _api(path) or method not in SAFE_METHODS:
                return _deny(path, 401, "auth", "authentication required")
            return RedirectResponse("/login", status_code=303)
        if method in SAFE_METHODS or bearer:
            return None
        if not sec.same_origin(conn):
            return _deny(path, 403, "origin", "cross-origin request refused")
        # The login form has no session yet; a forged login could only log a
        # victim in with the one real token, so the Origin check is enough.
        if path != "/login" and not sec.csrf_ok(conn):
            return _deny(path, 403, "csrf", "missing or invalid CSRF token")
        return None
