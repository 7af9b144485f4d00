"""Issue #11: TLS. A redis-server with ``port 0`` and ``tls-port`` (certificates
made by the test), reached by URL (``rediss://...?ssl_ca_certs=``) and by
``set_redis_connection_settings(ssl=True, ssl_ca_certs=...)``; certificate
and host name verification are on by default; real workers run tasks over
TLS; client certificates for servers that require them; an ACL user over TLS.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import sec_tasks
from conftest import ACL_PASSWORD, ACL_PREFIX, ACL_USER
from sec_helpers import Certs, TLSRedisServer, Worker, documented_acl_line, worker_argv

import rpqueue
from rpqueue.storage.connection import client_from_url

VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


def run_add(app: rpqueue.RPQueue, worker: Worker, a: int = 2, b: int = 3) -> Any:
    handle = sec_tasks.add.execute(a, b)
    assert handle.wait(20), worker.log()
    deadline_ok = _wait_done(handle)
    assert deadline_ok, worker.log()
    return handle.result


def _wait_done(handle: Any, timeout: float = 20) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if handle.status == "done":
            return True
        time.sleep(0.01)
    return False


async def _async_add(a: int, b: int) -> Any:
    handle = await sec_tasks.add.aexecute(a, b)
    return await handle.await_result(20)


def test_worker_and_producer_over_tls_by_url(tls_server: TLSRedisServer,
                                             default_app: rpqueue.RPQueue,
                                             start_worker: Callable[..., Worker]) -> None:
    url = tls_server.url
    assert url.startswith("rediss://") and "ssl_ca_certs=" in url
    worker = start_worker(worker_argv(url, "tls:"))
    worker.wait_log("serving")
    default_app.set_redis_url(url)
    default_app.set_key_prefix("tls:")
    assert run_add(default_app, worker) == 5
    # The asyncio client made from the URL is a TLS client too.
    assert asyncio.run(_async_add(4, 5)) == 9
    # The server has no plain-text port at all.
    admin = tls_server.client()
    assert admin.config_get("port") == {"port": "0"}
    assert admin.config_get("tls-port") == {"tls-port": str(tls_server.port)}
    admin.close()


def test_producer_over_tls_by_connection_settings(tls_server: TLSRedisServer,
                                                  default_app: rpqueue.RPQueue,
                                                  start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(worker_argv(tls_server.url, "tls:"))
    worker.wait_log("serving")
    default_app.set_redis_connection_settings("127.0.0.1", tls_server.port, ssl=True,
                                              ssl_ca_certs=str(tls_server.certs.ca))
    default_app.set_key_prefix("tls:")
    assert run_add(default_app, worker, 20, 22) == 42
    assert asyncio.run(_async_add(1, 1)) == 2


def test_async_client_made_from_a_given_tls_client_uses_tls(
        tls_server: TLSRedisServer, default_app: rpqueue.RPQueue) -> None:
    """set_redis_connection(<a TLS client>): the asyncio client rpqueue derives
    from it must use TLS too (it used to open a plain-text connection, which
    sends the password in clear and fails against a TLS port)."""
    given = redis.Redis(host="127.0.0.1", port=tls_server.port, ssl=True,
                        ssl_ca_certs=str(tls_server.certs.ca), socket_timeout=10)
    default_app.set_redis_connection(given)
    default_app.set_key_prefix("tls:")

    async def enqueue() -> str:
        handle = await sec_tasks.add.aexecute(1, 2)
        return await handle.astatus()

    assert asyncio.run(enqueue()) == "waiting"
    given.close()


@pytest.mark.parametrize("how", ["url", "settings"])
def test_certificate_verification_is_on_by_default(tls_server: TLSRedisServer,
                                                   default_app: rpqueue.RPQueue,
                                                   how: str) -> None:
    """No CA given: the test CA is not a system CA, so the handshake fails;
    nothing is ever sent to a server whose certificate was not verified."""
    app = default_app
    if how == "url":
        app.set_redis_url(f"rediss://127.0.0.1:{tls_server.port}/0", socket_timeout=5)
    else:
        app.set_redis_connection_settings("127.0.0.1", tls_server.port, ssl=True,
                                          socket_timeout=5)
    with pytest.raises(redis.ConnectionError, match=VERIFY_FAILED):
        sec_tasks.add.execute(1, 2)
    with pytest.raises(redis.ConnectionError, match=VERIFY_FAILED):
        asyncio.run(sec_tasks.add.aexecute(1, 2))


def test_a_certificate_from_another_ca_is_refused(tls_server: TLSRedisServer,
                                                  default_app: rpqueue.RPQueue) -> None:
    other = tls_server.certs.other_ca
    default_app.set_redis_url(f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={other}",
                              socket_timeout=5)
    with pytest.raises(redis.ConnectionError, match=VERIFY_FAILED):
        sec_tasks.add.execute(1, 2)
    default_app.set_redis_connection_settings("127.0.0.1", tls_server.port, ssl=True,
                                              ssl_ca_certs=str(other), socket_timeout=5)
    with pytest.raises(redis.ConnectionError, match=VERIFY_FAILED):
        sec_tasks.add.execute(1, 2)


def test_the_host_name_is_checked(certs: Certs, default_app: rpqueue.RPQueue,
                                  tmp_path: Path) -> None:
    """A certificate our CA signed, but for another host: refused by default."""
    server = TLSRedisServer(tmp_path / "wrongname", certs,
                            cert=(certs.wrong_name_cert, certs.wrong_name_key))
    server.start()
    try:
        default_app.set_redis_url(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={certs.ca}",
                                  socket_timeout=5)
        with pytest.raises(redis.ConnectionError, match=r"(?i)hostname|IP address mismatch"):
            sec_tasks.add.execute(1, 2)
    finally:
        server.stop()


def test_plain_text_is_not_served(tls_server: TLSRedisServer,
                                  default_app: rpqueue.RPQueue) -> None:
    default_app.set_redis_url(f"redis://127.0.0.1:{tls_server.port}/0", socket_timeout=2)
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        sec_tasks.add.execute(1, 2)
    # Redis answers plain text on its TLS port with nothing but a closed connection.
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=2) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        try:
            reply = sock.recv(100)
        except (ConnectionResetError, TimeoutError):
            reply = b""
        assert b"PONG" not in reply


def test_worker_without_the_ca_refuses_the_server(tls_server: TLSRedisServer,
                                                  start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(worker_argv(f"rediss://127.0.0.1:{tls_server.port}/0", "tls:"))
    worker.wait_log(VERIFY_FAILED)
    assert "serving" not in worker.log()


def test_client_certificates_when_the_server_requires_them(
        mtls_server: TLSRedisServer, default_app: rpqueue.RPQueue,
        start_worker: Callable[..., Worker]) -> None:
    certs = mtls_server.certs
    port = mtls_server.port
    # Trusting the server is not enough: it wants our certificate.
    default_app.set_redis_connection_settings("127.0.0.1", port, ssl=True,
                                              ssl_ca_certs=str(certs.ca), socket_timeout=5)
    with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
        sec_tasks.add.execute(1, 2)
    default_app.set_redis_connection_settings(
        "127.0.0.1", port, ssl=True, ssl_ca_certs=str(certs.ca),
        ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key))
    default_app.set_key_prefix("mtls:")
    url = (f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs.ca}"
           f"&ssl_certfile={certs.client_cert}&ssl_keyfile={certs.client_key}")
    worker = start_worker(worker_argv(url, "mtls:"))
    worker.wait_log("serving")
    assert run_add(default_app, worker, 3, 4) == 7
    assert asyncio.run(_async_add(5, 6)) == 11
    default_app.set_redis_url(url)
    assert run_add(default_app, worker, 1, 1) == 2


def test_acl_user_over_tls(tls_server: TLSRedisServer, default_app: rpqueue.RPQueue,
                           start_worker: Callable[..., Worker]) -> None:
    """Both at once, as production should run: TLS, and the documented ACL user."""
    admin = tls_server.client()
    admin.execute_command("ACL", "SETUSER", *documented_acl_line(ACL_USER, ACL_PASSWORD,
                                                                 ACL_PREFIX))
    certs = tls_server.certs
    default_app.set_redis_connection_settings(
        "127.0.0.1", tls_server.port, username=ACL_USER, password=ACL_PASSWORD, ssl=True,
        ssl_ca_certs=str(certs.ca))
    default_app.set_key_prefix(ACL_PREFIX)
    url = (f"rediss://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{tls_server.port}/0"
           f"?ssl_ca_certs={certs.ca}")
    worker = start_worker(worker_argv(url, ACL_PREFIX))
    worker.wait_log("serving")
    assert run_add(default_app, worker, 8, 9) == 17
    assert asyncio.run(_async_add(2, 2)) == 4
    # The connections rpqueue uses (scripts, blocking waits) are the ACL user's.
    users = {c["user"] for c in admin.client_list() if c["cmd"] in ("evalsha", "eval", "blpop")}
    assert users == {ACL_USER}
    assert json.loads(json.dumps(admin.execute_command("ACL", "LOG"), default=str)) == []
    # The worker logs where it connected, never the password.
    assert ACL_PASSWORD not in worker.log()
    assert f"{ACL_USER}:***@" in worker.log()
    admin.close()


def test_cluster_and_sentinel_urls_carry_tls_settings(tls_server: TLSRedisServer) -> None:
    """``rediss+cluster://`` and ``rediss+sentinel://`` take the CA (and client
    certificate) from the query as ``rediss://`` does."""
    ca = tls_server.certs.ca
    base = f"rediss+cluster://127.0.0.1:{tls_server.port}"
    # This server is no cluster: with the CA, the handshake succeeds and the
    # cluster discovery is what fails; without it, the certificate check does.
    with pytest.raises(redis.RedisClusterException, match="Cluster mode is not enabled"):
        client_from_url(f"{base}?ssl_ca_certs={ca}", socket_timeout=5)
    with pytest.raises(redis.RedisClusterException, match=VERIFY_FAILED):
        client_from_url(base, socket_timeout=5)
    sentinel = client_from_url(
        f"rediss+sentinel://127.0.0.1:1/svc?ssl_ca_certs={ca}&ssl_certfile=/c.pem"
        "&ssl_keyfile=/k.pem")
    kwargs = sentinel.connection_pool.connection_kwargs
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (
        str(ca), "/c.pem", "/k.pem")
    assert kwargs.get("ssl_cert_reqs", "required") == "required"
