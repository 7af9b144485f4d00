"""Reading the per-queue event streams (written by the scripts, see
scripts/lib/common.lua ``emit``).

One XREAD covers every stream on a single Redis; on a Redis Cluster each
queue's stream may live on another node, so they are read one by one there
(a multi-key XREAD across slots is refused).
"""

from __future__ import annotations

from typing import Any

from .store import Store
from .wire import text

# Entries read per stream and call.
BATCH = 500

Entry = tuple[str, str, dict[str, str]]  # queue, stream id, fields


def _entries(reply: Any, by_key: dict[str, str]) -> list[Entry]:
    out: list[Entry] = []
    for key, items in reply or []:
        queue = by_key[text(key)]
        for sid, fields in items:
            out.append((queue, text(sid), {text(k): text(v) for k, v in fields.items()}))
    return out


def _streams(store: Store, cursors: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    keys = {store.keys.queue(q).events: c for q, c in cursors.items()}
    return keys, {store.keys.queue(q).events: q for q in cursors}


def read(store: Store, cursors: dict[str, str], block_ms: int) -> list[Entry]:
    """Entries after each queue's cursor (a stream id), waiting up to
    ``block_ms`` when there are none (single Redis; polled on a cluster)."""
    keys, by_key = _streams(store, cursors)
    client = store.client
    if not store.cluster:
        return _entries(client.xread(keys, count=BATCH, block=block_ms or None), by_key)
    out: list[Entry] = []
    for key, cursor in keys.items():
        out += _entries(client.xread({key: cursor}, count=BATCH), by_key)
    return out


async def aread(store: Store, cursors: dict[str, str], block_ms: int) -> list[Entry]:
    """``read`` on the redis.asyncio client."""
    keys, by_key = _streams(store, cursors)
    client = store.aclient()
    if not store.cluster:
        return _entries(await client.xread(keys, count=BATCH, block=block_ms or None), by_key)
    out: list[Entry] = []
    for key, cursor in keys.items():
        out += _entries(await client.xread({key: cursor}, count=BATCH), by_key)
    return out
