"""Test-side helpers for tests/integration/test_ops_*.py: real worker processes
started the way users start them, the ops ledger, polling with a deadline.

Workers run with this folder as their working directory, so the ops task
modules import by name; each runs in its own session (process group) so
cleanup reaches the children of ``--processes N`` and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import redis
from ops_ledger import OPS_LEDGER, release_key

import rpqueue

OPSMODS = Path(__file__).resolve().parent
DEADLINE = 15.0
T = TypeVar("T")


def wait_until(predicate: Callable[[], T | None], timeout: float = DEADLINE, interval: float = 0.01,
               message: str | Callable[[], str] = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s waiting for: {text}")
        time.sleep(interval)


def point_default_app(redis_url: str) -> rpqueue.RPQueue:
    rpqueue.set_redis_url(redis_url)
    rpqueue.set_key_prefix("rpqueue:")  # also forgets queues seen before the flush
    return rpqueue.default_app()


def task_ref(app: rpqueue.RPQueue, name: str) -> Any:
    """The task as published by a running worker: queue calls without importing it."""
    return app.known_tasks[name]  # type: ignore[attr-defined]


class Ledger:
    def __init__(self, client: Any) -> None:
        self.client = client

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(OPS_LEDGER, 0, -1)]

    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries()
                if (event is None or e["event"] == event)
                and all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, count: int, event: str | None = None, timeout: float = DEADLINE,
                 **match: Any) -> list[dict[str, Any]]:
        return wait_until(
            lambda: found if len(found := self.events(event, **match)) >= count else None,
            timeout,
            message=lambda: f"{count} ledger entries {event} {match}; have {self.entries()}")

    def release(self, tag: str) -> None:
        self.client.rpush(release_key(tag), "1")


class Worker:
    def __init__(self, argv: list[str], logdir: Path, name: str) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.argv = argv
        self.out_path = logdir / f"{name}.stdout"
        self.err_path = logdir / f"{name}.stderr"
        env = dict(os.environ)
        env.pop("RPQUEUE_URL", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=OPSMODS, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def stderr_bytes(self) -> bytes:
        return self.err_path.read_bytes()

    def logs(self) -> str:
        return (f"--- stdout\n{self.out_path.read_text(errors='replace')}\n"
                f"--- stderr\n{self.stderr()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, count: int = 1, timeout: float = DEADLINE) -> str:
        def seen() -> str | None:
            out = self.stderr()
            if out.count(text) >= count:
                return out
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode} before "
                                     f"logging {text!r}:\n{self.logs()}")
            return None

        return wait_until(seen, timeout, message=lambda: f"{text!r} x{count} in:\n{self.logs()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)


class OpsWorkers:
    """Starts ``python -m rpqueue.run`` workers; stop_all() at teardown."""

    def __init__(self, redis_url: str, logdir: Path) -> None:
        self.redis_url = redis_url
        self.logdir = logdir
        self.started: list[Worker] = []

    def start(self, module: str, *queues: str, args: Iterable[str] = (),
              loglevel: str = "INFO", ready: int = 1) -> Worker:
        """``ready``: how many worker processes must have logged that they serve."""
        argv = [sys.executable, "-m", "rpqueue.run", f"--module={module}", "--url",
                self.redis_url, "--loglevel", loglevel, *args, *queues]
        worker = Worker(argv, self.logdir, f"worker{len(self.started)}")
        self.started.append(worker)
        if ready:
            worker.wait_log("serving", count=ready)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


def ops_fixture(redis_url: str, tmp_path: Path) -> Iterator[OpsWorkers]:
    workers = OpsWorkers(redis_url, tmp_path / "workers")
    try:
        yield workers
    finally:
        workers.stop_all()


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


def dead_records(app: rpqueue.RPQueue, queue: str) -> list[dict[str, Any]]:
    from rpqueue import admin

    return admin.dead_records(app.ctx, [queue])
