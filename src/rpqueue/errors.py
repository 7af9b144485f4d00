"""Errors rpqueue raises on purpose, each naming what was wrong."""

from __future__ import annotations

from redis.exceptions import ResponseError


class EnqueueRefused(Exception):
    """A call was refused and nothing was queued."""


class MessageTooLarge(EnqueueRefused, ValueError):
    """The encoded call is larger than the configured limit."""


class RedisOutOfMemory(EnqueueRefused):
    """Redis refused the write: it reached ``maxmemory`` under ``noeviction``."""


def translate(exc: ResponseError, what: str) -> Exception:
    """A clear error for the Redis replies a caller can act on, else the original."""
    text = str(exc)
    if text.startswith("OOM"):
        return RedisOutOfMemory(
            f"{what} was not queued: Redis is out of memory (maxmemory reached with the "
            f"noeviction policy). Free memory or raise maxmemory. Redis said: {text}")
    if "exceeds the limit" in text:
        return MessageTooLarge(f"{what} was not queued: {text}")
    return exc
