"""pytest fixtures for testing code that uses rpqueue.

Opt in from your top-level conftest.py with
``pytest_plugins = ["rpqueue.testing.pytest_plugin"]`` (or run pytest with
``-p rpqueue.testing.pytest_plugin``). It is not loaded automatically, so a
project's other test runs are left as they were.

- ``rpqueue_server`` (session): a temporary redis-server (the embedded
  server, ``rpqueue.server.EmbeddedServer``) on a free loopback port, its
  data in a temporary directory; stopped at the end of the session.
- ``rpqueue_app``: the app under test, bound to that server, its database
  emptied after each test. The default app (the one ``@rpqueue.task`` uses);
  override this fixture to return your own app bound with
  ``rpqueue.testing.bind(app, rpqueue_server.url)``.
- ``rpqueue_worker``: an ``InProcessWorker`` of ``rpqueue_app``, started;
  ``rpqueue_worker.drain(timeout)`` waits until the queues are empty and
  nothing runs. Stopped after the test.
- ``rpqueue_eager``: ``rpqueue_app`` in eager mode for the test (no worker:
  tasks run at ``execute``).

The fixtures start nothing until a test asks for them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .. import default_app
from ..app import RPQueue
from ..server import EmbeddedServer
from . import eager
from .harness import InProcessWorker, bind


@pytest.fixture(scope="session")
def rpqueue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """A temporary redis-server for the session (needs redis-server or
    valkey-server installed, or ``rpqueue[server]``)."""
    server = EmbeddedServer(tmp_path_factory.mktemp("rpqueue-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def rpqueue_app(rpqueue_server: EmbeddedServer) -> Iterator[RPQueue]:
    """The default rpqueue app, bound to ``rpqueue_server``; emptied after the test."""
    app = bind(default_app(), rpqueue_server.url)
    yield app
    _empty(rpqueue_server, app)


def _empty(server: EmbeddedServer, app: RPQueue) -> None:
    client = server.client()
    try:
        client.flushdb()
    finally:
        client.close()
    # The app registers each queue once per process: the next test's queues
    # must be registered again in the emptied database.
    app.ctx.store.forget_seen()


@pytest.fixture
def rpqueue_worker(rpqueue_app: RPQueue) -> Iterator[InProcessWorker]:
    """A started in-process worker of ``rpqueue_app``, with ``drain(timeout)``."""
    worker = InProcessWorker(rpqueue_app)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def rpqueue_eager(rpqueue_app: RPQueue) -> Iterator[RPQueue]:
    """``rpqueue_app`` in eager mode for the test: tasks run at ``execute``."""
    with eager(rpqueue_app) as app:
        yield app
