"""Fixtures for the security suite (issue #11): certificates, a TLS-only
server, a server with the documented ACL user, real workers, and the
default app restored after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sec_helpers import (
    Certs,
    TLSRedisServer,
    Worker,
    documented_acl_line,
    make_certs,
)

import rpqueue

ACL_USER = "myapp"
ACL_PASSWORD = "change-me-9f1c"
ACL_PREFIX = "myapp:"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_server(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRedisServer]:
    """A redis-server that speaks TLS only (``port 0``), no client certificate needed."""
    server = TLSRedisServer(tmp_path_factory.mktemp("redis-tls"), certs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mtls_server(certs: Certs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRedisServer]:
    """TLS only, and a client certificate signed by the CA is required (Redis's default)."""
    server = TLSRedisServer(tmp_path_factory.mktemp("redis-mtls"), certs, auth_clients="yes")
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ACLServer:
    """A server with the documented ACL user; ``admin`` is the unrestricted default user."""

    def __init__(self, url: str, admin: redis.Redis) -> None:
        self.admin = admin
        self.host_port = url.split("//", 1)[1].split("/", 1)[0]
        self.user, self.password, self.prefix = ACL_USER, ACL_PASSWORD, ACL_PREFIX

    def url(self, user: str | None = None, password: str | None = None) -> str:
        return (f"redis://{user or self.user}:{password or self.password}@"
                f"{self.host_port}/0")

    def client(self, **kwargs: Any) -> redis.Redis:
        host, port = self.host_port.split(":")
        return redis.Redis(host=host, port=int(port), username=self.user,
                           password=self.password, socket_timeout=10, **kwargs)

    def acl_log(self) -> list[dict[str, Any]]:
        return [{(k.decode() if isinstance(k, bytes) else k):
                 (v.decode() if isinstance(v, bytes) else v) for k, v in e.items()}
                for e in self.admin.execute_command("ACL", "LOG")]

    def reset_acl_log(self) -> None:
        self.admin.execute_command("ACL", "LOG", "RESET")


@pytest.fixture
def acl_server(redis_url: str) -> Iterator[ACLServer]:
    """The session server with the ACL user of docs/SECURITY.md (removed afterwards)."""
    admin = redis.Redis.from_url(redis_url, socket_timeout=10)
    admin.execute_command("ACL", "SETUSER", *documented_acl_line(ACL_USER, ACL_PASSWORD,
                                                                 ACL_PREFIX))
    admin.execute_command("ACL", "LOG", "RESET")
    try:
        yield ACLServer(redis_url, admin)
    finally:
        admin.execute_command("ACL", "DELUSER", ACL_USER)
        admin.execute_command("ACL", "LOG", "RESET")
        admin.close()


@pytest.fixture
def default_app() -> Iterator[rpqueue.RPQueue]:
    """The module-level app; whatever a test points it at is undone afterwards."""
    app = rpqueue.default_app()
    limit = app.max_message_bytes
    yield app
    app.max_message_bytes = limit
    app.set_key_prefix("rpqueue:")
    app.set_redis_connection(None)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """``start_worker(argv, env=None)``: a real worker process, stopped at teardown."""
    started: list[Worker] = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> Worker:
        worker = Worker(argv, tmp_path / "workers", env)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
