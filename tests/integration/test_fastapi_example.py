"""examples/fastapi_app.py served in-process (its lifespan, then requests
through httpx's ASGI transport) against a real Redis, its tasks run by a
real worker process started as the example says (``--module fastapi_app``).

Each ``serve`` runs the app's lifespan on an event loop of its own, as a
restarted server would: the async client is made per loop."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import pytest
import redis
from harness import Workers, wait_until

import rpqueue

pytest.importorskip("fastapi")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = TypeVar("T")


@pytest.fixture
def example(app: rpqueue.RPQueue) -> Iterator[ModuleType]:
    # Imported by file, under the name the worker imports it by, so both
    # register the same tasks; the examples folder stays off sys.path.
    spec = importlib.util.spec_from_file_location("fastapi_app", EXAMPLES / "fastapi_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastapi_app"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("fastapi_app", None)


def serve(example: ModuleType, requests: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    """Start the app (its lifespan), make ``requests``, stop it."""
    api = example.api

    async def main() -> T:
        async with api.router.lifespan_context(api):
            transport = httpx.ASGITransport(app=api)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await requests(client)

    return asyncio.run(main())


def test_endpoints_queue_tasks_a_worker_runs(example: ModuleType, workers: Workers) -> None:
    async def ask(client: httpx.AsyncClient) -> tuple[Any, httpx.Response]:
        health = (await client.get("/health")).json()
        queued = await client.post("/reports", json={"user_id": 12, "kind": "full", "urgent": True})
        return health, queued

    health, queued = serve(example, ask)
    assert health == {"redis": True}
    assert queued.status_code == 202, queued.text
    taskid = queued.json()["taskid"]
    assert queued.json()["state"] == "waiting"  # no worker yet

    workers.start("fastapi_app", "reports", env={"PYTHONPATH": str(EXAMPLES)})

    async def look(client: httpx.AsyncClient) -> Any:
        return (await client.get(f"/reports/{taskid}")).json()

    done = wait_until(lambda: (r := serve(example, look))["state"] == "succeeded" and r,
                      message="the report task to succeed")
    assert done["result"] == {"user_id": 12, "kind": "full", "lines": 6}


def test_bad_requests_are_refused_before_anything_is_queued(
        example: ModuleType, app: rpqueue.RPQueue) -> None:
    async def ask(client: httpx.AsyncClient) -> list[int]:
        return [(await client.post("/reports", json={"user_id": 0})).status_code,
                (await client.get("/reports/no-such-task")).status_code]

    assert serve(example, ask) == [422, 404]
    assert app.queue_sizes() == []


def test_the_lifespan_stops_the_start_when_redis_is_unreachable(
        example: ModuleType, app: rpqueue.RPQueue) -> None:
    app.set_redis_url("redis://127.0.0.1:1/0")

    async def never(client: httpx.AsyncClient) -> None:
        raise AssertionError("the app started without its Redis")

    with pytest.raises(redis.exceptions.ConnectionError, match=re.escape("127.0.0.1:1")):
        serve(example, never)
