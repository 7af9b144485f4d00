"""Safe by default: Host check, CSRF on every POST, optional token (issue #8)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dashboard_support import TestClient, add_dead, csrf_headers, make_client, wait_until

from rpqueue.app import RPQueue
from rpqueue.web import ENV_TOKEN, create_app, serve
from rpqueue.web.security import AUTH_COOKIE, SESSION_COOKIE
from rpqueue.web.serve import _allowed_hosts

TOKEN = "correct horse battery staple"


@pytest.fixture
def dead_one(rpq: RPQueue) -> str:
    return add_dead(rpq, "q", "t.x", [1])


def dead_count(rpq: RPQueue) -> int:
    return int(rpq.client.zcard(rpq.keys.queue("q").dead))


# -- CSRF --------------------------------------------------------------------------------


def test_post_without_a_csrf_token_is_refused_and_changes_nothing(
        rpq: RPQueue, client: TestClient, dead_one: str) -> None:
    client.get("/api/session")  # has a session cookie, sends no token
    for body in ({"all": True}, {"items": [{"queue": "q", "id": dead_one}]}):
        for action in ("requeue", "delete"):
            r = client.post(f"/api/dead/{action}", json=body)
            assert r.status_code == 403
            assert r.json() == {"error": "missing or invalid CSRF token", "code": "csrf"}
    assert dead_count(rpq) == 1


def test_a_forged_or_foreign_csrf_token_is_refused(rpq: RPQueue, dead_one: str) -> None:
    with make_client(rpq) as victim, make_client(rpq) as attacker:
        victim.get("/api/session")
        # The attacker's own valid token does not fit the victim's session.
        theirs = csrf_headers(attacker)
        assert victim.post("/api/dead/delete", json={"all": True}, headers=theirs).status_code == 403
        assert victim.post("/api/dead/delete", json={"all": True},
                           headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    # Tokens are tied to the server's secret: another app instance's are worthless.
    with make_client(rpq) as first:
        headers = csrf_headers(first)
        session = first.cookies[SESSION_COOKIE]
    with make_client(rpq) as restarted:
        restarted.cookies.set(SESSION_COOKIE, session)
        assert restarted.post("/api/dead/delete", json={"all": True},
                              headers=headers).status_code == 403
    assert dead_count(rpq) == 1


def test_a_cross_origin_post_is_refused_even_with_a_valid_token(
        rpq: RPQueue, client: TestClient, dead_one: str) -> None:
    headers = csrf_headers(client)
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        r = client.post("/api/dead/delete", json={"all": True},
                        headers={**headers, "Origin": origin})
        assert r.status_code == 403 and r.json()["code"] == "origin", origin
    assert dead_count(rpq) == 1
    r = client.post("/api/dead/delete", json={"all": True},
                    headers={**headers, "Origin": "http://127.0.0.1:8765"})
    assert r.status_code == 200 and dead_count(rpq) == 0


def test_mutations_need_post_and_a_json_body(rpq: RPQueue, client: TestClient, dead_one: str) -> None:
    assert client.get("/api/dead/delete").status_code == 405
    assert client.get("/api/dead/requeue").status_code == 405
    # What a plain cross-site HTML form could send.
    r = client.post("/api/dead/delete", content=b'{"all": true}',
                    headers={**csrf_headers(client), "Content-Type": "text/plain"})
    assert r.status_code == 415
    assert dead_count(rpq) == 1


def test_session_cookie_is_http_only_and_same_site_strict(client: TestClient) -> None:
    r = client.get("/api/session")
    cookie = r.headers["set-cookie"].lower()
    assert cookie.startswith(SESSION_COOKIE) and "httponly" in cookie and "samesite=strict" in cookie
    # Kept: the same session keeps the same token.
    assert client.get("/api/session").json()["csrf_token"] == r.json()["csrf_token"]
    assert "set-cookie" not in client.get("/api/session").headers


# -- Host header (DNS rebinding) --------------------------------------------------------------


@pytest.mark.parametrize("host,allowed", [
    ("127.0.0.1:8765", True), ("localhost:8765", True), ("[::1]:8765", True), ("LOCALHOST", True),
    ("evil.example:8765", False), ("127.0.0.1.evil.example", False), ("", False),
])
def test_only_loopback_host_names_are_answered_by_default(
        client: TestClient, host: str, allowed: bool) -> None:
    r = client.get("/api/queues", headers={"Host": host})
    assert (r.status_code == 200) is allowed
    if not allowed:
        assert r.status_code == 400 and r.json()["code"] == "host"


def test_allowed_hosts_can_be_widened(rpq: RPQueue) -> None:
    with TestClient(create_app(rpq, allowed_hosts=["*"]), base_url="http://dash.internal") as c:
        assert c.get("/api/queues").status_code == 200
    assert _allowed_hosts("127.0.0.1") == ["127.0.0.1", "::1", "localhost"]
    assert _allowed_hosts("::1") == ["127.0.0.1", "::1", "localhost"]
    assert _allowed_hosts("0.0.0.0") is None
    assert _allowed_hosts("10.1.2.3") == ["127.0.0.1", "::1", "localhost", "10.1.2.3"]


# -- token ------------------------------------------------------------------------------------


@pytest.fixture
def locked(rpq: RPQueue) -> Iterator[TestClient]:
    with make_client(rpq, TOKEN) as c:
        yield c


def test_with_a_token_every_request_needs_it(locked: TestClient) -> None:
    for path in ("/api/queues", "/api/items?queue=q", "/api/dead", "/api/schedule",
                 "/api/workers", "/api/session"):
        r = locked.get(path)
        assert r.status_code == 401 and r.json()["code"] == "auth", path
    for path in ("/", "/static/app.js", "/anything"):
        r = locked.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login", path
    r = locked.post("/api/dead/delete", json={"all": True})
    assert r.status_code == 401
    # Only the form to log in and its stylesheet are public.
    assert locked.get("/login").status_code == 200
    assert locked.get("/static/style.css").status_code == 200


def test_bearer_header_authenticates_api_clients(rpq: RPQueue, locked: TestClient, dead_one: str) -> None:
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert locked.get("/api/queues", headers=good).status_code == 200
    assert locked.get("/", headers=good).status_code == 200
    for bad in (f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer", TOKEN):
        assert locked.get("/api/queues", headers={"Authorization": bad}).status_code == 401, bad
    # No CSRF token needed: a browser never adds this header by itself.
    r = locked.post("/api/dead/requeue", json={"all": True}, headers=good)
    assert r.status_code == 200 and r.json()["requeued"] == 1


def test_login_form_sets_a_cookie_that_opens_the_page(rpq: RPQueue, locked: TestClient,
                                                      dead_one: str) -> None:
    wrong = locked.post("/login", data={"token": "guess"}, follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong token." in wrong.text
    assert AUTH_COOKIE not in locked.cookies
    ok = locked.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert TOKEN not in ok.headers["set-cookie"]
    assert locked.get("/").status_code == 200
    session = locked.get("/api/session").json()
    assert session["auth_required"] is True
    # Cookie-authenticated POSTs are what CSRF is about: they need the token.
    assert locked.post("/api/dead/delete", json={"all": True}).status_code == 403
    r = locked.post("/api/dead/delete", json={"all": True},
                    headers={"X-CSRF-Token": session["csrf_token"]})
    assert r.status_code == 200 and dead_count(rpq) == 0
    out = locked.post("/api/logout", json={}, headers={"X-CSRF-Token": session["csrf_token"]})
    assert out.status_code == 200
    assert locked.get("/api/queues").status_code == 401


def test_login_from_another_origin_is_refused(locked: TestClient) -> None:
    r = locked.post("/login", data={"token": TOKEN}, headers={"Origin": "http://evil.example"},
                    follow_redirects=False)
    assert r.status_code == 403


def test_login_cookie_is_a_session_of_this_server_only(rpq: RPQueue, locked: TestClient) -> None:
    locked.post("/login", data={"token": TOKEN})
    cookie = locked.cookies[AUTH_COOKIE]
    # A random session id, not derived from the token: it tells nothing
    # about the token and works only where it was made (test_dashboard_hardening.py).
    assert len(cookie) >= 43
    with make_client(rpq, TOKEN) as restarted:
        restarted.cookies.set(AUTH_COOKIE, cookie)
        assert restarted.get("/api/queues").status_code == 401
    assert locked.get("/api/queues").status_code == 200


def test_without_a_token_the_login_page_is_not_needed(client: TestClient) -> None:
    assert client.get("/login", follow_redirects=False).status_code == 303
    assert client.get("/api/session").json()["auth_required"] is False


def test_an_empty_token_is_refused(rpq: RPQueue) -> None:
    with pytest.raises(ValueError):
        make_client(rpq, "")
    assert serve(url="redis://127.0.0.1:1/0", token="") == 2


# -- serve(): the CLI entry point, in its own process -------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_binds_loopback_and_takes_the_token_from_the_environment(
        redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, **{ENV_TOKEN: TOKEN})
    env.pop("RPQUEUE_URL", None)
    code = ("import sys; from rpqueue.web import serve; "
            f"sys.exit(serve({redis_url!r}, '127.0.0.1', {port}, None, 'rpqueue:'))")
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(base + "/api/queues", timeout=1)
            except httpx.TransportError:
                return False
            return True

        wait_until(up, what="serve() to listen")
        assert httpx.get(base + "/api/queues").status_code == 401
        r = httpx.get(base + "/api/queues", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["queues"] == []
        assert "token required" in log.read_text()
    finally:
        # Ctrl-C is how a user stops it: a clean exit, no traceback.
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(10) == 0, log.read_text()
            assert "Traceback" not in log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_serve_reports_a_port_in_use(redis_url: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        started = time.monotonic()
        assert serve(redis_url, "127.0.0.1", s.getsockname()[1]) != 0
        assert time.monotonic() - started < 10
