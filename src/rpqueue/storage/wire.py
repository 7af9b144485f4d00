"""Small wire formats shared by the scripts and the Python side.

Pure functions and named constants, no I/O: the meta string a task carries
in Redis, the ready-time stamp in front of stored messages, and the reply
codes the scripts return (named here so that no caller compares bare numbers).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


def text(value: Any) -> str:
    """Redis replies as str, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def ms(seconds: float) -> int:
    """Seconds as whole milliseconds, never negative (what the scripts take)."""
    return max(0, round(seconds * 1000))


# Per-message priorities are whole numbers in this range: scripts score a
# task priority * 2**32 + sequence, exact in a double only below 2**53.
PRIORITY_LIMIT = 1_000_000


def task_meta(vis_timeout: float, attempts: int, use_dead: bool, priority: int = 0,
              unique_key: str = "") -> str:
    """The mutable state a task needs in Redis, or '' for a plain 0/1 task
    at the default priority (see parse_meta in scripts/lib/common.lua)."""
    if vis_timeout <= 0 and not use_dead and not priority and not unique_key:
        return ""
    out = f"{ms(vis_timeout)} {attempts} {attempts} {1 if use_dead else 0}"
    if priority or unique_key:
        out += f" {priority}"
        if unique_key:
            out += f" {unique_key}"
    return out


# A stored message starts with 13 digits of ready time (ms) and a colon
# (scripts/lib/common.lua stamp); readers strip it.
STAMP_LEN = 14


def unstamp(raw: Any) -> Any:
    """A stored message without its ready-time prefix."""
    if raw is None:
        return None
    head = raw[:STAMP_LEN]
    colon = b":" if isinstance(raw, bytes) else ":"
    if len(head) == STAMP_LEN and head[13:] == colon and head[:13].isdigit():
        return raw[STAMP_LEN:]
    return raw


def stamped_at(raw: Any) -> int | None:
    """The ready time (ms) stamped in front of a stored message, if any."""
    if raw is None:
        return None
    head = raw[:STAMP_LEN]
    colon = b":" if isinstance(raw, bytes) else ":"
    if len(head) == STAMP_LEN and head[13:] == colon and head[:13].isdigit():
        return int(head[:13])
    return None


class EnqueueStatus(IntEnum):
    """What enqueue-12.lua / enqueue_many-12.lua did with one task."""

    RUNNING = 0     # a task with this id is running: not queued again
    QUEUED = 1
    REPLACED = 2    # a pending task with this id was replaced
    DUPLICATE = 3   # a live unique task holds the key (detail: its id)
    FULL = 4        # the bounded queue refused it (detail: max_len)


class FailOutcome(IntEnum):
    """What fail-11.lua did with a failed task."""

    FENCED = 0      # the lease was no longer ours: nothing written
    DROPPED = 1
    RETRIED = 2
    DEAD = 3


class FailMode(IntEnum):
    """How fail-11.lua treats a failure (its ARGV[4])."""

    RETRY = 0       # retry while attempts are left (vis_timeout tasks)
    DEAD = 1        # dead-letter whatever the settings
    FINAL = 2       # no retry: dead-letter if use_dead, else drop


class CancelOutcome(IntEnum):
    """What cancel-8.lua did."""

    RESULT_DELETED = -1  # it had run; its saved result was deleted
    UNKNOWN = 0
    CANCELLED = 1


# extend-2.lua returns the new deadline (ms), or this when the lease is lost.
LEASE_LOST = 0
