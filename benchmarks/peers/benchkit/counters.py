"""The producer's view of the drain count, one class per --drain-counter."""

from __future__ import annotations

import os
import struct
import tempfile
from typing import Any

from .keys import _TIME, ENV_COUNTER, K_DONE, K_FINISHED, K_FIRST, K_LAST


class RedisCounter:
    """The drain count as the task keeps it with --drain-counter redis."""

    name = "redis"
    description = "one INCR round trip per task"

    def __init__(self, r: Any) -> None:
        self.r = r

    def env(self) -> dict[str, str]:
        return {}

    def reset(self) -> None:
        self.r.delete(K_DONE, K_FIRST, K_LAST, K_FINISHED)

    def done(self) -> int:
        return int(self.r.get(K_DONE) or 0)

    def _time(self, key: str) -> float | None:
        v = self.r.get(key)
        return None if v is None else float(v)

    def first(self) -> float | None:
        return self._time(K_FIRST)

    def last(self) -> float | None:
        return self._time(K_LAST)

    def close(self) -> None:
        pass


class LocalCounter:
    """The drain count as the task keeps it with --drain-counter local: the
    size of <path>.count, and the two times in <path>.times (0.0: not yet)."""

    name = "local"
    description = ("no Redis command per task: one byte appended to a tmpfs file "
                   "(O_APPEND write + lseek)")

    def __init__(self, r: Any, workdir: str) -> None:
        self.r = r
        shm = "/dev/shm"
        where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else workdir
        fd, self.path = tempfile.mkstemp(prefix="bench-counter-", dir=where)
        os.close(fd)
        os.unlink(self.path)  # only the two files below are used

    def env(self) -> dict[str, str]:
        return {ENV_COUNTER: self.path}

    def reset(self) -> None:
        """Only while no worker runs: a worker keeps its descriptors open."""
        self.r.delete(K_FINISHED)
        with open(self.path + ".count", "wb"):
            pass
        with open(self.path + ".times", "wb") as f:
            f.write(bytes(16))

    def done(self) -> int:
        try:
            return os.stat(self.path + ".count").st_size
        except FileNotFoundError:
            return 0

    def _time(self, offset: int) -> float | None:
        try:
            with open(self.path + ".times", "rb") as f:
                f.seek(offset)
                v: float = _TIME.unpack(f.read(8))[0]
        except (OSError, struct.error):
            return None
        return v or None

    def first(self) -> float | None:
        return self._time(0)

    def last(self) -> float | None:
        return self._time(8)

    def close(self) -> None:
        for ext in (".count", ".times"):
            try:
                os.unlink(self.path + ext)
            except FileNotFoundError:
                pass
