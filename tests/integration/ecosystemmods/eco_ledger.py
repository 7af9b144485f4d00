"""A ledger the ecosystem task modules write to: one Redis list per name,
at the URL the test passes to the worker in ECO_REDIS_URL."""

from __future__ import annotations

import json
import os
from typing import Any

import redis

_client: list[Any] = []


def note(name: str, **record: Any) -> None:
    if not _client:
        _client.append(redis.Redis.from_url(os.environ["ECO_REDIS_URL"], socket_timeout=10))
    _client[0].rpush(f"eco:{name}", json.dumps(record))


def read(client: Any, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in client.lrange(f"eco:{name}", 0, -1)]
