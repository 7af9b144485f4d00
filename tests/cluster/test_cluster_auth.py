"""A password-protected cluster, by URL and by a client passed in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cluster_tasks
import pytest
from cluster_harness import Ledger, Workers, wait_until
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import AuthenticationError, ResponseError
from redis_cluster import RedisCluster6

import rpqueue
from rpqueue.data import Data

PASSWORD = "s3cret-cluster"


@pytest.fixture
def auth_cluster(tmp_path: Path) -> Iterator[RedisCluster6]:
    deployment = RedisCluster6(tmp_path / "cluster", password=PASSWORD).start()
    try:
        yield deployment
    finally:
        rpqueue.default_app().set_redis_connection(None)
        deployment.stop()


def test_password_cluster_by_url_and_by_passed_client(auth_cluster: RedisCluster6,
                                                      ledger: Ledger, tmp_path: Path) -> None:
    assert auth_cluster.url.startswith(f"redis+cluster://:{PASSWORD}@")
    no_auth = auth_cluster.nodes[0].client()
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            no_auth.ping()
    finally:
        no_auth.close()
    workers = Workers(auth_cluster.url, ledger.url, tmp_path / "workers")
    try:
        workers.start()
        # By URL (the worker above) and by a cluster client given to the app.
        rpqueue.set_redis_connection(RedisCluster(
            startup_nodes=[ClusterNode("127.0.0.1", auth_cluster.nodes[0].port)],
            password=PASSWORD))
        t = cluster_tasks.add.execute(5, 6)
        wait_until(lambda: t.status == "done", message="task done")
        assert t.result == 11

        async def main() -> Any:
            # The async client is derived from the given one: same password.
            et = await cluster_tasks.add.aexecute(7, 8)
            return await et.await_result(15)

        assert asyncio.run(main()) == 15
        q = Data("auth-data")
        q.put_data(["x"])
        assert list(q.get_data(1).values()) == ["x"]
    finally:
        workers.stop_all()
