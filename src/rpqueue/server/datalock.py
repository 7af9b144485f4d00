"""The lock that keeps two servers off one data directory.

Two servers appending to the same AOF would corrupt it, so EmbeddedServer
holds an flock() on a file in the directory while its server runs (the
server process inherits the descriptor, so the lock outlives a parent that
died without stopping it).
"""

from __future__ import annotations

import os
from pathlib import Path

from .binaries import ServerStartError


def lock_data_dir(path: Path) -> int | None:
    """Take the lock file ``path``; return its descriptor (None where flock()
    does not exist). Raises ServerStartError when another server holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock() on this platform
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ServerStartError(
            f"data directory {path.parent} is in use by another running server "
            f"(lock {path} is held); stop it or use another directory"
        ) from None
    return fd
