"""EmbeddedServer: one redis-server (or valkey-server) child process.

Redis itself is only spoken to through rpqueue.storage.ping; this module
deals with processes, files and ports.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from ..storage import ping
from .binaries import INSTALL_HINT, ServerNotFound, ServerStartError, _is_executable, find_server_binary
from .datalock import lock_data_dir

DEFAULT_PORT = 6379
LOG_FILE_NAME = "server.log"
LOCK_FILE_NAME = "server.lock"
_LOG_TAIL_LINES = 25
# sun_path in struct sockaddr_un holds 108 bytes on Linux and 104 on the BSDs,
# including the terminating NUL.
_MAX_UNIX_PATH = 103 if sys.platform == "darwin" else 107


class _AddressInUse(ServerStartError):
    pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


# Servers that are running, so that they are shut down cleanly when the
# interpreter exits even if the caller forgot to stop() them. Strong
# references on purpose: a server must not be orphaned by garbage collection.
_running: set[EmbeddedServer] = set()
_running_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    with _running_lock:
        servers = list(_running)
    for server in servers:
        if server._owner_pid != os.getpid():
            # A forked child exiting must not shut down its parent's server.
            continue
        try:
            server.stop(timeout=5.0)
        except Exception:
            # Best effort: the interpreter is going away and must not hang.
            pass


atexit.register(_stop_all_at_exit)


class EmbeddedServer:
    """A redis-server (or valkey-server) child process with AOF persistence.

    Configuration is given on the command line, never in a config file, so
    nothing outside ``data_dir`` (and the unix socket, if any) is written. ``port=None`` picks a free port
    at start(); with ``unix_socket`` the server does not listen on TCP at all.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        unix_socket: str | None = None,
        host: str = "127.0.0.1",
        binary: str | None = None,
    ) -> None:
        if not _is_loopback(host):
            # The server runs without a password, so it must not be reachable
            # from other machines.
            raise ValueError(f"host must be a loopback address, got {host!r}")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535 or None, got {port!r}")
        self._data_dir = Path(os.path.abspath(data_dir))
        self._requested_port = port
        self._host = host
        self._binary = binary
        self._unix_socket: str | None = None
        if unix_socket is not None:
            # The server chdirs into data_dir, so a relative path would
            # silently land there instead of where the caller meant.
            absolute = os.path.abspath(unix_socket)
            if len(os.fsencode(absolute)) > _MAX_UNIX_PATH:
                raise ValueError(
                    f"unix socket path is too long for the OS ({len(os.fsencode(absolute))} "
                    f"bytes, at most {_MAX_UNIX_PATH}): {absolute}"
                )
            self._unix_socket = absolute
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._log_offset = 0
        self._owner_pid = os.getpid()

    # -- introspection -------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self._data_dir / LOG_FILE_NAME

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int | None:
        """TCP port; None before start() when it is picked then, or in socket mode."""
        if self._unix_socket is not None:
            return None
        return self._port if self._port is not None else self._requested_port

    @property
    def unix_socket(self) -> str | None:
        return self._unix_socket

    @property
    def url(self) -> str:
        """Connection URL for redis.Redis.from_url() and rpqueue (database 0)."""
        if self._unix_socket is not None:
            return f"unix://{quote(self._unix_socket)}?db=0"
        port = self.port
        if port is None:
            raise RuntimeError("the port is only chosen by start(); call it first")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"redis://{host}:{port}/0"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, None when it is not running."""
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def client(self, **kwargs: Any) -> Any:
        """A new redis-py client for this server; extra kwargs go to redis.Redis."""
        return ping.server_client(**self._address(), **kwargs)

    def _address(self) -> dict[str, Any]:
        if self._unix_socket is not None:
            return {"unix_socket": self._unix_socket}
        return {"host": self._host, "port": self.port or DEFAULT_PORT}

    # -- lifecycle -----------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Spawn the server and return once it answers PING.

        Raises ServerNotFound when there is no binary and ServerStartError
        (with the end of the server log) when it does not come up in time.
        """
        if self.is_running():
            raise RuntimeError(f"server already running (pid {self.pid})")
        binary = self._resolve_binary()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if self._unix_socket is not None and ping.answers_ping(unix_socket=self._unix_socket):
            # The server unlinks an existing socket path before binding, which
            # would silently cut another server off from its clients.
            raise ServerStartError(f"another server is already listening on unix socket {self._unix_socket}")
        self._acquire_lock()
        try:
            # A port picked by us can be grabbed by someone else between our
            # probe and the server's bind(); only then is retrying sound.
            attempts = 3 if self._requested_port is None and self._unix_socket is None else 1
            for attempt in range(attempts):
                if self._unix_socket is not None:
                    port = 0
                elif self._requested_port is not None:
                    port = self._requested_port
                elif attempt == 0 and self._port is not None:
                    # Restarting keeps the URL that clients already hold.
                    port = self._port
                else:
                    port = _free_port(self._host)
                # Set before spawning: the readiness probe connects to it.
                self._port = port if self._unix_socket is None else None
                try:
                    self._spawn(binary, port, timeout)
                except _AddressInUse:
                    if attempt == attempts - 1:
                        raise
                    continue
                break
        except BaseException:
            self._release_lock()
            raise
        self._owner_pid = os.getpid()
        with _running_lock:
            _running.add(self)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down, flushing the AOF, and wait for it to exit.

        SHUTDOWN first, because it fsyncs the append-only file before exiting;
        SIGTERM (which the server also treats as a clean shutdown) if the
        command cannot be delivered; SIGKILL as the last resort. Safe to call
        when the server is not running.
        """
        proc = self._proc
        try:
            if proc is not None and proc.poll() is None:
                if not ping.shutdown(**self._address(), timeout=timeout):
                    proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(5.0)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        finally:
            self._proc = None
            self._release_lock()
            with _running_lock:
                _running.discard(self)

    def __enter__(self) -> EmbeddedServer:
        if not self.is_running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._unix_socket or f"{self._host}:{self.port}"
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"<EmbeddedServer {where} data_dir={str(self._data_dir)!r} {state}>"

    # -- internals -----------------------------------------------------

    def _resolve_binary(self) -> str:
        if self._binary is None:
            return find_server_binary()
        candidate = self._binary
        if os.sep not in candidate:
            candidate = shutil.which(candidate) or candidate
        if not _is_executable(Path(candidate)):
            raise ServerNotFound(
                f"server binary {self._binary!r} does not exist or is not executable.\n" + INSTALL_HINT
            )
        return candidate

    def _command(self, binary: str, port: int) -> list[str]:
        args = [
            binary,
            "--port", str(port),
            "--bind", self._host,
            "--protected-mode", "yes",
            "--dir", str(self._data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            # AOF is the only persistence: RDB snapshots would double the disk
            # writes and a stale dump.rdb next to the AOF only confuses people.
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        if self._unix_socket is not None:
            args += ["--unixsocket", self._unix_socket, "--unixsocketperm", "700"]
        return args

    def _spawn(self, binary: str, port: int, timeout: float) -> None:
        command = self._command(binary, port)
        with open(self.log_path, "ab") as log:
            log.write(f"--- rpqueue: starting {' '.join(command)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            # Output before the server opens its own logfile (e.g. a bad
            # option) goes to stderr, so it is appended to the same file.
            try:
                proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self._data_dir,
                    # Own session: a Ctrl+C meant for the parent must not
                    # reach the server before the parent has stopped its
                    # workers.
                    start_new_session=True,
                    # The server inherits the data-dir lock, so the directory
                    # stays locked for as long as this process lives, even if
                    # the parent dies without stopping it.
                    pass_fds=(self._lock_fd,) if self._lock_fd is not None else (),
                )
            except OSError as exc:
                raise ServerStartError(f"could not run {binary}: {exc}") from exc
        self._proc = proc
        try:
            self._wait_until_ready(proc, timeout)
        except BaseException:
            self._kill(proc)
            self._proc = None
            raise

    def _wait_until_ready(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = ping.Probe(**self._address())
        try:
            while True:
                code = proc.poll()
                if code is not None:
                    tail = self.log_tail()
                    error = _AddressInUse if "Address already in use" in tail else ServerStartError
                    raise error(
                        f"server exited with code {code} during startup; end of {self.log_path}:\n{tail}"
                    )
                # Someone else's server may answer on a port we only thought
                # was free; ours will fail to bind and exit.
                if probe.server_pid(default=proc.pid) == proc.pid:
                    return
                if time.monotonic() >= deadline:
                    raise ServerStartError(
                        f"server did not answer PING within {timeout:g}s; "
                        f"end of {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            probe.close()

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the server logged since the latest start()."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(could not read log: {exc})"
        kept = text.rstrip("\n").splitlines()[-lines:]
        return "\n".join(kept) if kept else "(log is empty)"

    def _acquire_lock(self) -> None:
        self._lock_fd = lock_data_dir(self._data_dir / LOCK_FILE_NAME)

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
