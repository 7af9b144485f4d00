"""Fixtures for integration tests: the default app reset per test, a client,
the ledger, and real worker processes that are always stopped at teardown."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

TASKMODS = Path(__file__).resolve().parent / "taskmods"
# The producer side (this process) imports the same task modules as the
# workers, so both agree on task names ("basic.record", ...).
if str(TASKMODS) not in sys.path:
    sys.path.insert(0, str(TASKMODS))

from harness import DelayProxy, Ledger, Workers  # noqa: E402

import rpqueue  # noqa: E402


@pytest.fixture
def app(redis_url: str) -> Iterator[rpqueue.RPQueue]:
    """The module-level default app, pointed at this test's (flushed) Redis."""
    rpqueue.set_redis_url(redis_url)
    # Also forgets which queues this process already registered: the Redis
    # was flushed, so they must be registered again.
    rpqueue.set_key_prefix("rpqueue:")
    yield rpqueue.default_app()
    rpqueue.set_key_prefix("rpqueue:")


@pytest.fixture
def rcli(redis_url: str) -> Iterator[Any]:
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)
    yield client
    client.close()


@pytest.fixture
def ledger(rcli: Any) -> Ledger:
    return Ledger(rcli)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    factory = Workers(redis_url, tmp_path / "workers")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def slow_link(redis_url: str) -> Iterator[DelayProxy]:
    """A 50 ms (one way) link to this test's Redis, for one worker to use."""
    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].split(":")
    proxy = DelayProxy(host, int(port), 0.05)
    yield proxy
    proxy.close()
