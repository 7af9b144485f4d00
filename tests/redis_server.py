"""Real redis-server processes for the test suite.

The tests deliberately run against the real server (never a fake): rpqueue's
guarantees live in Lua scripts, AOF persistence and connection failures,
none of which a fake reproduces faithfully. Each process gets its own
directory and a free loopback port, so it never touches a Redis that the
developer runs on 6379.

Importable from any test module as ``from redis_server import ...`` because
pytest puts ``tests/`` on sys.path when it loads ``tests/conftest.py``.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Lets a developer point the suite at another build (e.g. valkey-server).
BINARY_ENV = "RPQUEUE_TEST_REDIS_SERVER"

OptionValue = str | int | bool

MISSING_BINARY_MESSAGE = (
    "redis-server is required to run the rpqueue test suite and was not found "
    f"on PATH (or in ${BINARY_ENV}).\n"
    "Install it with:  apt-get install redis-server   (Debian/Ubuntu; "
    "'.ci/run' does this for you)\n"
    f"or set {BINARY_ENV}=/path/to/redis-server. The tests never fall back to a fake "
    "Redis and are not skipped."
)


def redis_server_binary() -> str | None:
    """Path of the redis-server the tests use, or None if there is none."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return shutil.which(configured)
    return shutil.which("redis-server")


@cache
def redis_server_version(binary: str) -> tuple[int, ...]:
    """Version of the server binary, e.g. (7, 0, 15)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    match = re.search(r"v=(\d+(?:\.\d+)*)", out)
    if match is None:
        raise RuntimeError(f"cannot parse the version of {binary}: {out!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _default_options(binary: str) -> dict[str, OptionValue]:
    options: dict[str, OptionValue] = {
        "bind": "127.0.0.1",
        "protected-mode": "yes",
        "daemonize": "no",
        # No RDB snapshots: they fork, which makes timing-sensitive tests
        # flaky, and each test states the persistence it relies on.
        "save": "",
        "appendonly": "no",
    }
    if redis_server_version(binary) >= (7,):
        # Fault tests use DEBUG SLEEP / DEBUG SEGFAULT; 7.0 disables DEBUG by
        # default and the option does not exist before it.
        options["enable-debug-command"] = "local"
    return options


def _format_option(value: OptionValue) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class RedisServerProcess:
    """One redis-server child process on a loopback port with its own directory.

    ``options`` are extra server settings (``{"appendonly": "yes",
    "maxmemory": "10mb"}``); they override the defaults and are given on the
    command line. The port is picked at the first start() and kept by
    restart(), so URLs held by the code under test stay valid.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        options: Mapping[str, OptionValue] | None = None,
        *,
        port: int | None = None,
        binary: str | None = None,
    ) -> None:
        found = binary or redis_server_binary()
        if found is None:
            raise RuntimeError(MISSING_BINARY_MESSAGE)
        self.binary = found
        self._owns_dir = data_dir is None
        self.data_dir = Path(
            tempfile.mkdtemp(prefix="rpqueue-redis-") if data_dir is None else data_dir
        ).absolute()
        self.options: dict[str, OptionValue] = _default_options(found)
        self.options.update(options or {})
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._log_offset = 0

    # -- addresses and clients -----------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the port is chosen by start(); call it first")
        return self._port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def paused(self) -> bool:
        return self._paused

    def client(self, **kwargs: Any) -> "redis.Redis":
        """A new redis-py client; kwargs (e.g. decode_responses=True) pass through."""
        kwargs.setdefault("socket_timeout", 10.0)
        kwargs.setdefault("socket_connect_timeout", 5.0)
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle -----------------------------------------------------

    def start(self, timeout: float = 10.0) -> "RedisServerProcess":
        if self.is_running():
            raise RuntimeError(f"redis-server already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Only a port we picked ourselves may be re-picked when someone else
        # took it between our probe and the server's bind().
        attempts = 3 if self._port is None else 1
        for attempt in range(attempts):
            if self._port is None:
                self._port = free_port()
            try:
                self._spawn(timeout)
                return self
            except _AddressInUse:
                if attempt == attempts - 1:
                    raise
                self._port = None
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown (SIGTERM, which flushes the AOF); SIGKILL if it hangs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._continue_if_paused()
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._proc = None

    def restart(self, timeout: float = 10.0) -> "RedisServerProcess":
        """Stop if still running, then start again on the same port and directory."""
        self.stop(timeout)
        return self.start(timeout)

    def kill(self, sig: int = signal.SIGKILL, *, wait: bool = True, timeout: float = 10.0) -> None:
        """Send ``sig``; with ``wait`` block until the process has exited.

        Default SIGKILL simulates a crash: nothing is flushed beyond what the
        server already wrote.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("redis-server is not running")
        proc.send_signal(sig)
        if sig != signal.SIGKILL:
            # A stopped process leaves every signal but SIGKILL pending.
            self._continue_if_paused()
        else:
            self._paused = False
        if wait:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"redis-server did not exit within {timeout}s after signal {sig}"
                ) from None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        proc = self._require_running()
        proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo pause() (SIGCONT)."""
        self._require_running()
        self._continue_if_paused(force=True)

    def cleanup(self) -> None:
        """stop() and remove the directory if this object created it."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "RedisServerProcess":
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "paused" if self._paused else ("running" if self.is_running() else "stopped")
        return f"<RedisServerProcess port={self._port} pid={self.pid} {state} dir={self.data_dir}>"

    # -- internals -----------------------------------------------------

    def _command(self) -> list[str]:
        args = [self.binary, "--port", str(self.port)]
        settings = dict(self.options)
        # dir and logfile are not overridable: restart() relies on them.
        settings["dir"] = str(self.data_dir)
        settings["logfile"] = str(self.log_path)
        for name, value in settings.items():
            args += [f"--{name}", _format_option(value)]
        return args

    def _spawn(self, timeout: float) -> None:
        command = self._command()
        with open(self.log_path, "ab") as log:
            log.write(f"--- test harness: {' '.join(command)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            # stderr catches option errors printed before the logfile opens.
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.data_dir
            )
        self._proc = proc
        self._paused = False
        deadline = time.monotonic() + timeout
        # No retries: redis-py's default backoff would stretch every refused
        # connection during startup into seconds.
        probe = redis.Redis(
            host=self.host,
            port=self.port,
            socket_connect_timeout=0.5,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while True:
                code = proc.poll()
                if code is not None:
                    self._proc = None
                    tail = self.log_tail()
                    error = _AddressInUse if "Address already in use" in tail else RuntimeError
                    raise error(f"redis-server exited with code {code} at startup:\n{tail}")
                try:
                    # Checking the pid rules out another server answering on
                    # a port we believed free.
                    if probe.info("server").get("process_id") == proc.pid:
                        return
                except (redis.RedisError, OSError):
                    pass
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    self._proc = None
                    raise RuntimeError(f"redis-server did not answer within {timeout}s:\n{self.log_tail()}")
                time.sleep(0.02)
        finally:
            probe.close()

    def _require_running(self) -> "subprocess.Popen[bytes]":
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError("redis-server is not running")
        return proc

    def _continue_if_paused(self, force: bool = False) -> None:
        if (self._paused or force) and self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
        self._paused = False


class _AddressInUse(RuntimeError):
    pass
