"""Fixtures for the fault-injection suite (tests/fault).

Each test gets its own ledger server (a redis-server no fault touches), a
pool factory for real worker processes that are always stopped at
teardown, and the default rpqueue app pointed at the Redis under test.
The figures each test measured are printed at the end of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultlib import FIGURES, Ledger, WorkerPool


@pytest.fixture
def ledger(redis_factory: Callable[..., Any]) -> Iterator[Ledger]:
    server = redis_factory()
    book = Ledger(server.url)
    yield book
    book.close()


@pytest.fixture
def pools(ledger: Ledger, tmp_path: Path) -> Iterator[Callable[..., WorkerPool]]:
    """``pools(url, size=4, threads=4, work=0.005, prefix=(), queues=())``."""
    made: list[WorkerPool] = []

    def make(url: str, **kwargs: Any) -> WorkerPool:
        pool = WorkerPool(url, ledger.url, tmp_path / f"pool{len(made)}", **kwargs)
        made.append(pool)
        return pool

    try:
        yield make
    finally:
        for pool in made:
            pool.stop_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault-injection figures")
    for test, figures in FIGURES.items():
        shown = ", ".join(f"{k}={v}" for k, v in figures.items())
        terminalreporter.write_line(f"{test}: {shown}")
