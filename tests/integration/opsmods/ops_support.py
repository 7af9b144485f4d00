"""Helpers for tests/integration/test_ops_*.py: the ops ledger, metrics
scraping and dead letters.

Workers, waiting and the ledger reader are the shared ones (support.worker
and harness); the fixtures (app, rcli, ledger, ops) are those of
tests/integration/conftest.py.
"""

from __future__ import annotations

import socket
import urllib.request
from typing import Any

import redis
from harness import Ledger as _Ledger
from harness import Workers
from ops_ledger import OPS_LEDGER, release_key
from support.worker import DEADLINE, WorkerProcess, wait_until

import rpqueue

__all__ = ["DEADLINE", "Ledger", "OpsWorkers", "Worker", "client", "dead_records", "free_port",
           "point_default_app", "samples", "scrape", "task_ref", "wait_until"]

# The names these tests have always used for the shared harness classes.
OpsWorkers = Workers
Worker = WorkerProcess


class Ledger(_Ledger):
    """The ledger of the ops task modules (ops_ledger.note())."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, OPS_LEDGER, release_key)


def point_default_app(redis_url: str) -> rpqueue.RPQueue:
    rpqueue.set_redis_url(redis_url)
    rpqueue.set_key_prefix("rpqueue:")  # also forgets queues seen before the flush
    return rpqueue.default_app()


def task_ref(app: rpqueue.RPQueue, name: str) -> Any:
    """The task as published by a running worker: queue calls without importing it."""
    return app.known_tasks[name]  # type: ignore[attr-defined]


def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        body: bytes = reply.read()
    return body.decode("utf-8")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Scraped text as {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def dead_records(ctx: Any, queue: str) -> list[dict[str, Any]]:
    """The dead letters of ``queue``; ``ctx`` is an app's context (``app.ctx``)."""
    from rpqueue import admin

    records: list[dict[str, Any]] = admin.dead_records(ctx, [queue])
    return records
