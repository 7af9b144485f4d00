"""Issue #25, items 2, 3, 4 and 7: bounded bodies, throttled tokens, real sessions,
and security headers on errors."""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Iterator

import httpx
import pytest
from dashboard_support import LiveServer, TestClient, make_client

from rpqueue.app import RPQueue
from rpqueue.web import model
from rpqueue.web.security import AUTH_COOKIE, MAX_BODY, MAX_LOGIN_BODY, SECURITY_HEADERS
from rpqueue.web.sessions import MIN_TOKEN_LENGTH, Sessions, Throttle

TOKEN = "correct horse battery staple"


def slow_refill() -> Throttle:
    # The default budgets, refilled so slowly that a loaded test machine
    # cannot earn a guess back while a test runs.
    return Throttle(per_client_interval=3600, overall_interval=3600)


@pytest.fixture
def locked(rpq: RPQueue) -> Iterator[TestClient]:
    with make_client(rpq, TOKEN, throttle=slow_refill()) as c:
        yield c


@pytest.fixture
def locked_server(rpq: RPQueue) -> Iterator[LiveServer]:
    server = LiveServer(rpq, token=TOKEN, throttle=slow_refill()).start()
    try:
        yield server
    finally:
        server.stop()


# -- item 2: bodies ----------------------------------------------------------------------


def _raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode() + b"\r\n" + body)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


@pytest.mark.parametrize("path", ["/login", "/api/dead/delete", "/api/queues"])
def test_a_declared_length_over_the_cap_is_refused_before_authentication(
        locked_server: LiveServer, path: str) -> None:
    # 600 MB announced, a few bytes sent: the answer comes without waiting for the rest.
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 600000000\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n")
    reply = _raw_request(locked_server.port, head, b"token=")
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"x-frame-options: DENY" in reply


def _stream_until_answered(port: int, path: str, headers: str = "",
                           total: int = 64 * 1024 * 1024) -> tuple[bytes, int]:
    """Send a chunked body of up to ``total`` bytes, stopping when the server
    answers; (the answer's first bytes, how many body bytes were sent)."""
    chunk = b"0" * (64 * 1024)
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                  f"Content-Type: application/x-www-form-urlencoded\r\n{headers}\r\n".encode())
        while sent < total:
            readable, _, _ = select.select([s], [], [], 0)
            if readable:
                break
            try:
                s.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        s.settimeout(10)
        return s.recv(65536), sent


@pytest.mark.parametrize(("path", "cap"), [("/login", MAX_LOGIN_BODY),
                                           ("/api/dead/delete", MAX_BODY)])
def test_a_streamed_body_is_cut_at_the_cap_logged_in_or_not(
        locked_server: LiveServer, path: str, cap: int) -> None:
    for headers in ("", f"Authorization: Bearer {TOKEN}\r\n"):
        reply, sent = _stream_until_answered(locked_server.port, path, headers)
        assert reply.startswith(b"HTTP/1.1 413"), (path, headers, reply[:200])
        # Answered long before the 64 MiB were sent (socket buffers hold a few MiB).
        assert sent <= cap + 16 * 1024 * 1024, sent


def test_a_login_body_just_under_the_cap_still_works(locked: TestClient) -> None:
    pad = "&x=" + "a" * (MAX_LOGIN_BODY - 200)
    r = locked.post("/login", content=f"token={TOKEN.replace(' ', '+')}{pad}",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                    follow_redirects=False)
    assert r.status_code == 303


# -- item 3: throttling and short tokens -------------------------------------------------


def test_wrong_bearer_tokens_are_throttled_and_a_throttled_client_is_not_even_checked(
        locked: TestClient) -> None:
    codes = [locked.get("/api/queues", headers={"Authorization": f"Bearer guess-{i}"}).status_code
             for i in range(40)]
    assert codes.count(401) == 10 and codes.count(429) == 30, codes
    r = locked.get("/api/queues", headers={"Authorization": f"Bearer {TOKEN}"})
    # Even the right token waits: otherwise a throttled guesser would learn
    # from the difference between 429 and 200.
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.headers["x-frame-options"] == "DENY"


def test_parallel_login_guesses_are_throttled(locked_server: LiveServer) -> None:
    async def guess_all() -> list[int]:
        async with httpx.AsyncClient(base_url=locked_server.url, timeout=30) as c:
            replies = await asyncio.gather(*[
                c.post("/login", data={"token": f"guess-{i}"}) for i in range(100)])
            return [r.status_code for r in replies]

    codes = asyncio.run(guess_all())
    assert codes.count(401) == 10 and codes.count(429) == 90, codes


def test_the_overall_budget_holds_across_clients() -> None:
    now = [0.0]
    throttle = Throttle(burst=5, per_client_interval=1.0, overall_burst=20,
                        overall_interval=0.5, clock=lambda: now[0])
    for i in range(20):
        assert throttle.allowed(f"10.0.0.{i}")
        throttle.failed(f"10.0.0.{i}")
    assert not throttle.allowed("10.0.0.99")  # a fresh client, but the server is out
    now[0] += 0.5
    assert throttle.allowed("10.0.0.99")
    # A client's own budget refills one guess per interval.
    for _ in range(5):
        throttle.failed("10.1.1.1")
    now[0] += 0.4
    assert not throttle.allowed("10.1.1.1")


@pytest.mark.parametrize("token", ["short", "x" * (MIN_TOKEN_LENGTH - 1)])
def test_a_short_token_is_refused_saying_which_length_and_why(rpq: RPQueue, token: str) -> None:
    with pytest.raises(ValueError, match=rf"is {len(token)} characters; use at least "
                                         rf"{MIN_TOKEN_LENGTH}.*guessed"):
        make_client(rpq, token)


# -- item 4: sessions --------------------------------------------------------------------


def test_login_sessions_are_random_and_end_at_logout(rpq: RPQueue) -> None:
    with make_client(rpq, TOKEN) as first, make_client(rpq, TOKEN) as second:
        first.post("/login", data={"token": TOKEN})
        second.post("/login", data={"token": TOKEN})
        cookie = first.cookies[AUTH_COOKIE]
        assert cookie != second.cookies[AUTH_COOKIE]
        csrf = first.get("/api/session").json()["csrf_token"]
        assert first.post("/api/logout", json={}, headers={"X-CSRF-Token": csrf}).status_code == 200
        # The old value, replayed by hand, no longer opens anything.
        first.cookies.set(AUTH_COOKIE, cookie)
        assert first.get("/api/queues").status_code == 401
        # The other session is untouched.
        assert second.get("/api/queues").status_code == 200


def test_a_session_does_not_outlive_its_server_or_open_another(rpq: RPQueue) -> None:
    with make_client(rpq, TOKEN) as one:
        one.post("/login", data={"token": TOKEN})
        cookie = one.cookies[AUTH_COOKIE]
        assert one.get("/api/queues").status_code == 200
    # Another dashboard process with the same token (a restart, or another
    # port of the same host, to which browsers send the same cookie).
    with make_client(rpq, TOKEN) as other:
        other.cookies.set(AUTH_COOKIE, cookie)
        assert other.get("/api/queues").status_code == 401


def test_sessions_expire() -> None:
    now = [0.0]
    sessions = Sessions(ttl=10, clock=lambda: now[0])
    sid = sessions.start()
    assert sessions.valid(sid) and not sessions.valid(sid + "x") and not sessions.valid(None)
    now[0] = 9.9
    assert sessions.valid(sid)
    now[0] = 10.0
    assert not sessions.valid(sid)


def test_the_login_cookie_carries_an_expiry(locked: TestClient) -> None:
    r = locked.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert "max-age=" in r.headers["set-cookie"].lower()


# -- item 7: errors ----------------------------------------------------------------------


def test_a_500_carries_the_security_headers_and_no_details(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(rpq: RPQueue) -> dict[str, object]:
        raise RuntimeError("secret detail\nforged log line")

    # Not a mock of Redis: a stand-in for a bug in a view, which is what a 500 is.
    monkeypatch.setattr(model, "workers", broken)
    r = client.get("/api/workers")
    assert r.status_code == 500
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value, name
    assert "secret detail" not in r.text
