"""A small Redis lock, kept from the original API."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any

from .storage.data_calls import lock_acquire, lock_release


class NoLock(Exception):
    """The lock is held by someone else."""


class SimpleLock:
    """``with SimpleLock(conn, name, duration):`` — raises NoLock when held.

    The lock expires after ``duration`` seconds, so a holder that dies does
    not keep it; it is released only by its own holder (a token check).
    ``conn`` is any redis-py client: the lock lives where the caller says,
    not in an app's store.
    """

    def __init__(self, conn: Any, name: str, duration: float = 1) -> None:
        self.conn = conn
        self.name = name
        self.duration = duration
        self.token = uuid.uuid4().hex

    def __enter__(self) -> SimpleLock:
        if not lock_acquire(self.conn, self.name, self.token,
                            max(1, round(self.duration * 1000))):
            raise NoLock(self.name)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        lock_release(self.conn, self.name, self.token)
