"""Fixtures for the dashboard tests (helpers live in dashboard_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from dashboard_support import LiveServer, TestClient, Worker, make_client

from rpqueue.app import RPQueue


@pytest.fixture
def rpq(redis_url: str) -> RPQueue:
    """A fresh app on the flushed test Redis, default prefix (as workers use)."""
    app = RPQueue("dashboard-tests")
    app.set_redis_url(redis_url)
    return app


@pytest.fixture
def client(rpq: RPQueue) -> Iterator[TestClient]:
    with make_client(rpq) as c:
        yield c


@pytest.fixture
def live_server(rpq: RPQueue) -> Iterator[LiveServer]:
    server = LiveServer(rpq).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_worker(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(*queues: str) -> Worker:
        worker = Worker(redis_url, tmp_path / "workers", *queues)
        started.append(worker)
        worker.wait_ready()
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
