"""A local Redis-compatible server run as a child process.

This backs ``rpqueue server`` and ``rpqueue demo``: people who just want to
try rpqueue should not have to configure Redis first. The server only ever
listens on loopback (or a unix socket), keeps its data in an append-only file
under one directory, and is shut down with SHUTDOWN so the last writes reach
the disk.

The package: ``binaries`` finds the executable, ``embedded`` runs one
server process (``datalock`` keeps two off one data directory), and this
module is the ``rpqueue server`` command (serve_forever).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

# Module attributes (not just imports): serve_forever looks _answers_ping up
# here at call time, so tests may replace it to fake a busy port 6379.
from ..storage.ping import answers_ping as _answers_ping
from .binaries import (
    INSTALL_HINT,
    ServerNotFound,
    ServerStartError,
    find_server_binary,
)
from .embedded import DEFAULT_PORT, LOCK_FILE_NAME, LOG_FILE_NAME, EmbeddedServer
from .embedded import _free_port as _free_port  # kept importable from the old module

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "INSTALL_HINT",
    "LOCK_FILE_NAME",
    "LOG_FILE_NAME",
    "EmbeddedServer",
    "ServerNotFound",
    "ServerStartError",
    "find_server_binary",
    "serve_forever",
]

DEFAULT_DATA_DIR = ".rpqueue-data"


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
