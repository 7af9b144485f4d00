"""Helpers for the dashboard tests: the API through Starlette's TestClient, a
real uvicorn server, real workers, and writers of queue state exactly as
docs/PROTOCOL.md describes it."""

from __future__ import annotations

import json
import os
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from support.paths import WEB
from support.worker import WorkerProcess, rpqueue_argv
from support.worker import wait_until as _wait_until

from rpqueue import admin
from rpqueue.app import RPQueue
from rpqueue.task import EnqueuedTask, TaskRef
from rpqueue.web import create_app

with warnings.catch_warnings():
    # Starlette 1.x prefers httpx2 and warns about httpx; both work, and
    # older Starlette (allowed by pyproject) only knows httpx.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from starlette.testclient import TestClient

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "DEADLINE", "EXPECT_MS", "LiveServer", "Tab", "TestClient",
           "Worker", "add_dead", "csrf_headers", "enqueue", "make_client", "open_dashboard",
           "wait_until"]

T = TypeVar("T")
# Bounds waits for things that take milliseconds; generous for slow CI.
DEADLINE = 15.0


def wait_until(predicate: Callable[[], T], timeout: float = DEADLINE, what: str = "condition") -> T:
    return _wait_until(predicate, timeout, 0.02, what)


def make_client(rpq: RPQueue, token: str | None = None, **kwargs: Any) -> TestClient:
    # The dashboard only answers to loopback Host names, so the client must
    # send one rather than TestClient's default "testserver".
    return TestClient(create_app(rpq, token, **kwargs), base_url="http://127.0.0.1:8765")


def csrf_headers(c: TestClient) -> dict[str, str]:
    """Headers a page would send on a POST: its CSRF token (also sets the session cookie)."""
    return {"X-CSRF-Token": c.get("/api/session").json()["csrf_token"]}


def enqueue(rpq: RPQueue, name: str, queue: str, *args: Any, delay: float = 0,
            **kwargs: Any) -> EnqueuedTask:
    """Queue a call by task name, as a producer that does not import the task would:
    with the settings a worker published for it (use_dead, attempts ...), if any."""
    published = admin.get_task(rpq.ctx, name)
    ref = published if published is not None else TaskRef(rpq, name, queue=queue)
    return ref.execute(*args, delay=delay, _queue=queue, **kwargs)


def add_dead(rpq: RPQueue, queue: str, name: str, args: list[Any], error: str = "boom",
             taskid: str | None = None, when: float = 1_700_000_000.0,
             reason: str = "task raised an exception") -> str:
    """Write a dead letter in the documented record format (docs/PROTOCOL.md)."""
    taskid = taskid or f"dead-{name}-{when}"
    message = json.dumps({"v": 1, "id": taskid, "name": name, "queue": queue, "args": args,
                          "kwargs": {}}, separators=(",", ":"))
    record = {"id": taskid, "message": message, "reason": reason, "error": error,
              "attempts_used": 1, "time": when}
    k = rpq.keys.queue(queue)
    rpq.client.hset(k.deadmsg, taskid, json.dumps(record))
    rpq.client.zadd(k.dead, {taskid: when * 1000})
    rpq.client.zadd(rpq.keys.queues, {queue: when}, nx=True)
    return taskid


# -- a real HTTP server ----------------------------------------------------------


class LiveServer:
    """The dashboard under uvicorn in a thread, on a free loopback port."""

    def __init__(self, rpq: RPQueue, token: str | None = None, poll_interval: float = 0.5,
                 **app_options: Any) -> None:
        # Bound here and handed over, so the port is known and never raced for.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(rpq, token, poll_interval=poll_interval, **app_options)
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        wait_until(lambda: self.server.started, what="uvicorn to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


# -- real workers ------------------------------------------------------------------


class Worker(WorkerProcess):
    """``python -m rpqueue.run --module=webtasks`` (the shared harness), output in one file."""

    def __init__(self, redis_url: str, logdir: Path, *queues: str) -> None:
        super().__init__(rpqueue_argv("webtasks", *queues, url=redis_url), logdir, cwd=WEB,
                         merge_output=True)


# -- the browser (Playwright on the system chromium) ----------------------------------

CHROMIUM = os.environ.get("RPQUEUE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Playwright waits this long (ms) for the page; the page polls every 0.5 s.
EXPECT_MS = 10_000


@dataclass
class Tab:
    """A page plus what it said: console errors (CSP violations land there),
    uncaught exceptions, and dialogs (alert() would be an XSS tell)."""

    page: Any
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = True

    def on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        if self.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()


def open_dashboard(tab: Tab, server: LiveServer) -> Any:
    from playwright.sync_api import expect

    tab.page.goto(server.url)
    expect(tab.page.locator("#status")).to_contain_text("updated")
    return tab.page
