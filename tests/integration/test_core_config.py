"""Configuration: connection settings, clients, URLs, RPQUEUE_URL, prefixes, instances."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import basic
import other_app
import pytest
import redis
from harness import Ledger, Workers, wait_until
from redis_server import RedisServerProcess, free_port

import rpqueue


def _hostport(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    assert parsed.hostname is not None and parsed.port is not None
    return parsed.hostname, parsed.port


def _db_client(url: str, db: int) -> redis.Redis:
    host, port = _hostport(url)
    return redis.Redis(host=host, port=port, db=db, decode_responses=True)


# -- set_redis_connection_settings -------------------------------------------------


def test_connection_settings_positional(app: rpqueue.RPQueue, redis_url: str,
                                        workers: Workers) -> None:
    host, port = _hostport(redis_url)
    rpqueue.set_redis_connection_settings(host, port, 3)
    et = basic.add.execute(1, 2)
    db3 = _db_client(redis_url, 3)
    try:
        assert db3.keys("rpqueue:*")
        assert _db_client(redis_url, 0).keys("*") == []
        workers.start("basic", "default", url=None,
                      args=["--host", host, "--port", str(port), "--db", "3"])
        wait_until(lambda: et.result == 3, message="ran in db 3")
    finally:
        db3.close()


def test_connection_settings_all_keywords_and_positional_order(
        app: rpqueue.RPQueue, redis_url: str, rcli: Any, workers: Workers) -> None:
    host, port = _hostport(redis_url)
    rcli.config_set("requirepass", "s3cret")
    try:
        rpqueue.set_redis_connection_settings(
            host=host, port=port, db=4, password="s3cret", socket_timeout=5,
            unix_socket_path=None, ssl=False, ssl_ca_certs=None)
        kw = basic.add.execute(2, 2)
        # The first six positionally, in the documented order; the TLS flags by name.
        rpqueue.set_redis_connection_settings(host, port, 4, "s3cret", 5, None, ssl=False,
                                              ssl_ca_certs=None)
        pos = basic.add.execute(3, 3)
        workers.start("basic", "default", url=None,
                      args=["--host", host, "--port", str(port), "--db", "4",
                            "--password", "s3cret", "--timeout", "5"])
        wait_until(lambda: (kw.result, pos.result) == (4, 6), message="both ran")
        rpqueue.set_redis_connection_settings(host, port, 4, "wrong", 5)
        with pytest.raises(redis.AuthenticationError):
            basic.add.execute(9, 9)
    finally:
        admin = redis.Redis(host=host, port=port, password="s3cret")
        admin.config_set("requirepass", "")
        admin.close()


def test_worker_pwprompt_reads_the_password(app: rpqueue.RPQueue, redis_url: str, rcli: Any,
                                            workers: Workers, ledger: Ledger) -> None:
    host, port = _hostport(redis_url)
    rcli.config_set("requirepass", "pr0mpt")
    try:
        # No controlling terminal in the worker's new session: getpass reads stdin.
        worker = workers.start("basic", "default", url=None, ready=False,
                               args=["--host", host, "--port", str(port), "--pwprompt"],
                               stdin=subprocess.PIPE)
        assert worker.proc.stdin is not None
        worker.proc.stdin.write(b"pr0mpt\n")
        worker.proc.stdin.close()
        worker.wait_ready()
        rpqueue.set_redis_connection_settings(host, port, 0, "pr0mpt")
        basic.record.execute("prompted")
        authed = Ledger(redis.Redis(host=host, port=port, password="pr0mpt",
                                    decode_responses=True))
        authed.wait_for(1, "ran", tag="prompted")
    finally:
        admin = redis.Redis(host=host, port=port, password="pr0mpt")
        admin.config_set("requirepass", "")
        admin.close()


@pytest.fixture
def unix_redis(redis_factory: Any) -> Iterator[tuple[RedisServerProcess, str]]:
    # Short path: unix socket paths are limited to ~107 bytes.
    sockdir = tempfile.mkdtemp(prefix="rpq-")
    path = os.path.join(sockdir, "redis.sock")
    server = redis_factory({"unixsocket": path, "unixsocketperm": 700})
    yield server, path
    server.stop()
    if os.path.exists(path):
        os.unlink(path)
    os.rmdir(sockdir)


def test_unix_socket_settings_and_url(app: rpqueue.RPQueue, unix_redis: Any,
                                      workers: Workers) -> None:
    _server, path = unix_redis
    rpqueue.set_redis_connection_settings(unix_socket_path=path, db=1)
    by_settings = basic.add.execute(1, 1)
    rpqueue.set_redis_url(f"unix://{path}?db=1")
    by_url = basic.add.execute(2, 2)
    direct = redis.Redis(unix_socket_path=path, db=1, decode_responses=True)
    try:
        assert direct.keys("rpqueue:*")
        workers.start("basic", "default", url=None, args=["--unixpath", path, "--db", "1"])
        wait_until(lambda: (by_settings.result, by_url.result) == (2, 4), message="both ran")
        # --url unix://... works for workers too.
        workers.start("basic", "viaurl", url=f"unix://{path}?db=1")
        via = basic.add.execute(5, 5, _queue="viaurl")
        wait_until(lambda: via.result == 10, message="ran via unix URL worker")
    finally:
        direct.close()


@pytest.fixture
def tls_redis(redis_factory: Any, tmp_path: Path) -> tuple[RedisServerProcess, int, str]:
    certs = tmp_path / "certs"
    certs.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=certs, check=True, capture_output=True,
                       timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.crt")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
        "server.key", "-out", "server.csr")
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "san.ext")
    tls_port = free_port()
    server = redis_factory({
        "tls-port": tls_port, "tls-cert-file": str(certs / "server.crt"),
        "tls-key-file": str(certs / "server.key"), "tls-ca-cert-file": str(certs / "ca.crt"),
        "tls-auth-clients": "no"})
    return server, tls_port, str(certs / "ca.crt")


def test_ssl_settings_and_rediss_url(app: rpqueue.RPQueue, tls_redis: Any,
                                     workers: Workers) -> None:
    server, tls_port, ca = tls_redis
    rpqueue.set_redis_connection_settings("127.0.0.1", tls_port, 0, None, 10, None, ssl=True,
                                          ssl_ca_certs=ca)
    et = basic.add.execute(20, 1)
    plain = server.client(decode_responses=True)
    try:
        assert plain.keys("rpqueue:*")
        workers.start("basic", "default",
                      url=f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}")
        wait_until(lambda: et.result == 21, message="ran over TLS")
        # Without the CA the certificate is refused.
        rpqueue.set_redis_connection_settings("127.0.0.1", tls_port, 0, None, 2, None, ssl=True)
        with pytest.raises(redis.ConnectionError):
            basic.add.execute(1, 1)
    finally:
        plain.close()


# -- set_redis_connection (a ready client) ----------------------------------------


@pytest.mark.parametrize("decode", [False, True], ids=["bytes-client", "str-client"])
def test_set_redis_connection_with_ready_client(app: rpqueue.RPQueue, redis_url: str,
                                                workers: Workers, decode: bool) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=decode)
    rpqueue.set_redis_connection(client)
    assert rpqueue.default_app().client is client
    gated = basic.gate_result.execute("c")
    later = basic.add.execute(1, 2, _queue=b"second")
    assert gated.status == "waiting"
    assert rpqueue.known_queues() == ["default", "second"]
    assert {(q, n) for q, n, _ in rpqueue.queue_sizes()} == {("default", 1), ("second", 1)}
    page = rpqueue.get_page(b"second", 0)
    assert page[0]["id"] == later.taskid and isinstance(page[0]["id"], str)
    workers.start("basic", "default", "second")
    wait_until(lambda: gated.status == "started", message="started")
    assert gated.cancel() is False
    Ledger(client).release("c")
    wait_until(lambda: gated.result == "gated" and later.result == 3, message="results")
    assert rpqueue.results([gated.taskid, later.taskid]) == ["gated", 3]
    assert gated.cancel() == -1
    client.close()


# -- URLs -------------------------------------------------------------------------


def test_set_redis_url_with_db(app: rpqueue.RPQueue, redis_url: str, workers: Workers) -> None:
    url5 = redis_url.rsplit("/", 1)[0] + "/5"
    rpqueue.set_redis_url(url5)
    et = basic.add.execute(4, 4)
    db5 = _db_client(redis_url, 5)
    try:
        assert db5.keys("rpqueue:*")
        assert _db_client(redis_url, 0).keys("*") == []
        workers.start("basic", "default", url=url5)
        wait_until(lambda: et.result == 8, message="ran")
    finally:
        db5.close()


def test_bad_url_is_refused(app: rpqueue.RPQueue) -> None:
    with pytest.raises(ValueError):
        rpqueue.set_redis_url("localhost:6379")
    with pytest.raises(ValueError):
        rpqueue.set_redis_url("http://localhost:6379/0")


def test_rpqueue_url_environment_variable(redis_url: str, workers: Workers,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url6 = redis_url.rsplit("/", 1)[0] + "/6"
    monkeypatch.setenv("RPQUEUE_URL", url6)
    fresh = rpqueue.new_rpqueue(f"env-{uuid.uuid4().hex}")  # nothing configured on it

    @fresh.task(name="envtask.add", save_results=30)
    def add(a: int, b: int) -> int:
        return a + b

    add.execute(1, 1)
    db6 = _db_client(redis_url, 6)
    try:
        assert db6.keys("rpqueue:*")
        # A worker with no connection options uses RPQUEUE_URL too.
        workers.start("basic", "default", url=None, env={"RPQUEUE_URL": url6})
        # The worker published its tasks (basic.*) into db 6, where `fresh` finds them.
        wait_until(lambda: "basic.add" in fresh.known_tasks, message="registry in db 6")
        done = fresh.call_task("basic.add", None, 20, 22)
        wait_until(lambda: done.result == 42, message="ran via RPQUEUE_URL worker")
    finally:
        db6.close()


# -- prefixes -----------------------------------------------------------------------


def test_key_prefix_applies_to_every_key(app: rpqueue.RPQueue, rcli: Any,
                                         workers: Workers) -> None:
    rpqueue.set_key_prefix("myapp:")
    et = basic.add.execute(1, 1)
    basic.record.execute("delayed", delay=60)
    rpqueue.set_priority("default", 1)
    workers.start("basic", "default", args=["--prefix", "myapp:"])
    wait_until(lambda: et.result == 2, message="ran under the prefix")
    keys = [k for k in rcli.keys("*") if not k.startswith("test:")]
    assert keys
    assert all(k.startswith("myapp:") for k in keys), keys


def test_key_prefix_as_bytes_and_invalid(app: rpqueue.RPQueue) -> None:
    rpqueue.set_key_prefix(b"bytes:")
    assert rpqueue.default_app().prefix == "bytes:"
    with pytest.raises(ValueError):
        rpqueue.set_key_prefix("bad{prefix")


def test_two_prefixes_on_one_redis_are_independent(app: rpqueue.RPQueue, workers: Workers,
                                                   ledger: Ledger) -> None:
    rpqueue.set_key_prefix("a:")
    for_a = basic.record.execute("for-a")
    rpqueue.set_key_prefix("b:")
    for_b = basic.record.execute("for-b")
    assert rpqueue.queue_sizes()[0][:2] == ("default", 1)
    workers.start("basic", args=["--prefix", "b:"])
    ledger.wait_for(1, "ran", tag="for-b")
    rpqueue.set_key_prefix("a:")
    assert for_a.status == "waiting"
    rpqueue.set_key_prefix("b:")
    wait_until(lambda: for_b.status == "done", message="b done")
    assert [e["tag"] for e in ledger.events("ran")] == ["for-b"]


# -- new_rpqueue ------------------------------------------------------------------


def test_new_rpqueue_same_name_same_instance_other_prefix_error() -> None:
    name = f"inst-{uuid.uuid4().hex}"
    first = rpqueue.new_rpqueue(name, "p1:")
    assert rpqueue.new_rpqueue(name, "p1:") is first
    assert rpqueue.new_rpqueue(name) is first
    with pytest.raises(ValueError):
        rpqueue.new_rpqueue(name, "p2:")
    assert first is not rpqueue.default_app()
    assert first.prefix == "p1:"


def test_new_rpqueue_is_independent(app: rpqueue.RPQueue, redis_url: str, workers: Workers,
                                    ledger: Ledger, rcli: Any) -> None:
    other = other_app.APP
    other.set_redis_url(redis_url)
    other.set_key_prefix("other:")
    # Own registry: the same task name means different functions.
    assert other.registry["shared.name"] is other_app.shared_other
    assert rpqueue.default_app().registry["shared.name"] is other_app.shared_default
    assert "other_app.only_in_other" not in rpqueue.default_app().registry
    assert rpqueue.get_task("other_app.only_in_other") is None

    other_app.shared_other.execute("to-other")
    other_app.only_in_other.execute("only-other")
    other_app.shared_default.execute("to-default")
    # Own keys and own view of queues.
    assert other.known_queues() == ["default", "other-only"]
    assert rpqueue.known_queues() == ["default"]

    workers.python("other_worker.py", redis_url)
    runs = ledger.wait_for(2, "ran")
    assert sorted((r["tag"], r["owner"]) for r in runs) == [
        ("only-other", "other"), ("to-other", "other")]
    # The default app's task is untouched by the other instance's worker.
    assert rpqueue.queue_sizes()[0][:2] == ("default", 1)
    assert {k.split(":")[0] for k in rcli.keys("*")} >= {"other", "rpqueue"}
    workers.start("other_app")
    ledger.wait_for(3, "ran")
    assert ledger.events("ran", tag="to-default")[0]["owner"] == "default"


def test_new_rpqueue_own_connection(app: rpqueue.RPQueue, redis_url: str) -> None:
    other = rpqueue.new_rpqueue(f"conn-{uuid.uuid4().hex}", "conn:")
    other.set_redis_url(redis_url.rsplit("/", 1)[0] + "/7")

    @other.task(name="conn.t")
    def t() -> None:
        pass

    t.execute()
    basic.record.execute("default-db")
    db7 = _db_client(redis_url, 7)
    try:
        assert db7.keys("rpqueue:*") == []
        assert db7.keys("conn:*")
        assert other.known_queues() == ["default"]
        assert rpqueue.queue_sizes()[0][:2] == ("default", 1)
    finally:
        db7.close()


# -- switching the connection of an app ------------------------------------------------


def test_switching_connection_registers_queue_in_new_redis(app: rpqueue.RPQueue,
                                                           redis_url: str) -> None:
    basic.record.execute("first redis")
    rpqueue.set_redis_url(redis_url.rsplit("/", 1)[0] + "/8")
    basic.record.execute("second redis")
    assert rpqueue.known_queues() == ["default"]


# -- unreachable Redis -------------------------------------------------------------


def test_execute_fails_fast_when_connection_refused(app: rpqueue.RPQueue) -> None:
    port = free_port()  # nothing listens there
    rpqueue.set_redis_connection_settings("127.0.0.1", port, 0, None, 1)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        basic.record.execute("nowhere")
    took = time.monotonic() - started
    assert took < 1.5, f"took {took:.1f}s with socket_timeout=1"


def test_execute_raises_connection_error_when_refused(app: rpqueue.RPQueue) -> None:
    port = free_port()
    rpqueue.set_redis_connection_settings("127.0.0.1", port, 0, None, 1)
    with pytest.raises(redis.ConnectionError):
        basic.record.execute("nowhere")


def test_execute_times_out_within_socket_timeout_when_redis_hangs(
        app: rpqueue.RPQueue, fresh_redis: RedisServerProcess) -> None:
    rpqueue.set_redis_connection_settings(fresh_redis.host, fresh_redis.port, 0, None, 0.3)
    basic.record.execute("warm")  # connected, queue known
    fresh_redis.pause()
    try:
        started = time.monotonic()
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            basic.record.execute("hung")
        took = time.monotonic() - started
    finally:
        fresh_redis.resume()
    assert took < 0.3 + 0.5, f"took {took:.1f}s with socket_timeout=0.3"
