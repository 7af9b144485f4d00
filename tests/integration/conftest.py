"""Fixtures for integration tests: the default app reset per test, a client,
the ledger, and real worker processes that are always stopped at teardown.

The task folders are importable (tests/conftest.py); worker processes come
from the shared harness (tests/support/worker.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from harness import DelayProxy, Ledger, Workers

import rpqueue


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ops_ledger: the ledger fixture reads the ops task modules' ledger (ops_ledger.py)",
    )


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
def ledger(request: pytest.FixtureRequest, rcli: Any) -> Ledger:
    """What the task modules noted; modules marked ``ops_ledger`` (the
    test_ops_* files) read the list the ops task modules write instead."""
    if request.node.get_closest_marker("ops_ledger") is not None:
        from ops_support import Ledger as OpsLedger

        return OpsLedger(rcli)
    return Ledger(rcli)


@pytest.fixture
def workers(redis_url: str, tmp_path: Path) -> Iterator[Workers]:
    factory = Workers(redis_url, tmp_path / "workers")
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def ops(workers: Workers) -> Workers:
    """The worker factory, under the name the test_ops_* modules use."""
    return workers


@pytest.fixture
def slow_link(redis_url: str) -> Iterator[DelayProxy]:
    """A 50 ms (one way) link to this test's Redis, for one worker to use."""
    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].split(":")
    proxy = DelayProxy(host, int(port), 0.05)
    yield proxy
    proxy.close()
