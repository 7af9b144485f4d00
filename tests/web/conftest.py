"""Fixtures for the dashboard tests (helpers live in dashboard_support.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXPECT_MS,
    LiveServer,
    Tab,
    TestClient,
    Worker,
    make_client,
)

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


# Per module: Playwright's sync API keeps an event loop running while it is
# open, which asyncio.run in later (non-browser) test modules cannot share.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if os.environ.get("RPQUEUE_SKIP_BROWSER_TESTS"):
        pytest.skip("RPQUEUE_SKIP_BROWSER_TESTS is set")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright for Python: pip install playwright "
                    "(no 'playwright install': they use the system chromium)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium "
                    "(or point RPQUEUE_CHROMIUM at one)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_MS)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(EXPECT_MS)
    t = Tab(page)
    page.on("dialog", t.on_dialog)
    page.on("pageerror", lambda exc: t.errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: t.errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    try:
        yield t
    finally:
        context.close()
