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
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "rpqueue_dashboard_session"
AUTH_COOKIE = "rpqueue_dashboard_auth"
CSRF_HEADER = "x-csrf-token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without the token: the form to present it, and the stylesheet
# that form uses (shipped code, no queue data).
PUBLIC_PATHS = frozenset({"/login", "/static/style.css"})

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

    def __init__(self, token: str | None, allowed_hosts: Collection[str] | None) -> None:
        if token is not None and not token:
            raise ValueError("the dashboard token must not be empty")
        self.token = token
        # Per process: CSRF tokens die with the server, and the page simply
        # fetches a fresh one (see app.js) when a POST is refused.
        self._secret = secrets.token_bytes(32)
        hosts = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}
        self.allowed_hosts = None if hosts is None or "*" in hosts else frozenset(hosts)

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

    def login_cookie(self) -> str:
        """The auth cookie's value: derived from the token, so it survives a
        restart and stops working as soon as the token changes."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"rpqueue-dashboard-login", hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def bearer_ok(self, conn: HTTPConnection) -> bool:
        scheme, _, value = conn.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def cookie_ok(self, conn: HTTPConnection) -> bool:
        value = conn.cookies.get(AUTH_COOKIE)
        return value is not None and hmac.compare_digest(value.encode(), self.login_cookie().encode())

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


def _deny(path: str, status: int, code: str, message: str) -> Response:
    if _api(path):
        return JSONResponse({"error": message, "code": code}, status_code=status)
    return PlainTextResponse(message, status_code=status)


class Guard:
    """ASGI middleware applying :class:`Security` to every HTTP request."""

    def __init__(self, app: ASGIApp, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        denial = self.check(HTTPConnection(scope), scope["method"])
        if denial is not None:
            await denial(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def check(self, conn: HTTPConnection, method: str) -> Response | None:
        sec, path = self.security, conn.url.path
        if not sec.host_allowed(conn.headers.get("host", "")):
            return _deny(path, 400, "host", "unexpected Host header: the dashboard only answers to "
                         "the names it was started for")
        bearer = sec.token is not None and sec.bearer_ok(conn)
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
