"""The storage layer: the only part of rpqueue that talks to Redis.

It imports nothing above it. ``Store`` is its front: key layout
(``keys``), clients (``clients``), call builders (``calls``), the executor
(``executor``) and the wire formats (``message``, ``wire``). The Lua scripts
live in ``scripts/``, one file per atomic operation.
"""

from __future__ import annotations

from .calls import Call, Enqueued, Taken, TakeReply
from .connection import RETRYABLE_ERRORS
from .executor import Command, command
from .store import Store

__all__ = ["RETRYABLE_ERRORS", "Call", "Command", "Enqueued", "Store", "TakeReply", "Taken",
           "command"]
