"""Fixtures for tests/cluster: rpqueue on Redis Cluster and through Sentinel.

- ``cluster``: one 6-node cluster (3 primaries, 3 replicas) for the session;
  ``cluster_url`` empties it for each test and points the default app at it.
- ``sentinel``: one primary, one replica and three sentinels for the
  session; ``sentinel_url`` likewise.
- ``own_cluster`` / ``own_sentinel``: dedicated deployments for tests that
  break them (failover).
- ``ledger``: where tasks note what ran: a plain redis-server, never the
  deployment under test, so it is intact after a failover.
- ``workers``: real ``python -m rpqueue.run`` processes, stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# taskmods/ is importable (tests/conftest.py): the tests import the same task
# module as the workers, so both agree on task names (cluster_tasks.record, ...).
from cluster_harness import Ledger, Workers
from redis_cluster import RedisCluster6, SentinelSetup

import rpqueue


def _point_default_app(url: str | None) -> rpqueue.RPQueue:
    app = rpqueue.default_app()
    app.set_key_prefix("rpqueue:")  # also forgets the queues it registered
    app.set_durable(0)
    if url is None:
        app.set_redis_connection(None)
    else:
        app.set_redis_url(url)
    return app


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster6]:
    deployment = RedisCluster6(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def cluster_url(cluster: RedisCluster6) -> Iterator[str]:
    """The session cluster, emptied, with the default app pointed at it."""
    cluster.wait_ok()
    cluster.flushall()
    _point_default_app(cluster.url)
    yield cluster.url
    _point_default_app(None)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster6]:
    """A cluster for this test alone (it may kill nodes); the default app points at it."""
    deployment = RedisCluster6(tmp_path / "cluster").start()
    _point_default_app(deployment.url)
    try:
        yield deployment
    finally:
        _point_default_app(None)
        deployment.stop()


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    deployment = SentinelSetup(tmp_path_factory.mktemp("sentinel")).start()
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture
def sentinel_url(sentinel: SentinelSetup) -> Iterator[str]:
    sentinel.flushall()
    _point_default_app(sentinel.url)
    yield sentinel.url
    _point_default_app(None)


@pytest.fixture
def own_sentinel(tmp_path: Path) -> Iterator[SentinelSetup]:
    deployment = SentinelSetup(tmp_path / "sentinel").start()
    _point_default_app(deployment.url)
    try:
        yield deployment
    finally:
        _point_default_app(None)
        deployment.stop()


@pytest.fixture
def ledger(redis_factory: Callable[..., Any]) -> Iterator[Ledger]:
    """A ledger on its own plain redis-server."""
    book = Ledger(redis_factory().url)
    yield book
    book.close()


@pytest.fixture
def workers(request: pytest.FixtureRequest, ledger: Ledger, tmp_path: Path) -> Iterator[Workers]:
    """Workers against whichever deployment the test uses (cluster unless it
    asked for sentinel_url / own_sentinel / own_cluster)."""
    names = request.fixturenames
    if "own_cluster" in names:
        url = request.getfixturevalue("own_cluster").url
    elif "own_sentinel" in names:
        url = request.getfixturevalue("own_sentinel").url
    elif "sentinel_url" in names:
        url = request.getfixturevalue("sentinel_url")
    else:
        url = request.getfixturevalue("cluster_url")
    factory = Workers(url, ledger.url, tmp_path / "workers")
    try:
        yield factory
    finally:
        factory.stop_all()
