"""Test-side helpers for tests/cluster: worker processes, the ledger, waiting.

Workers are started the way users start them (``python -m rpqueue.run
--module=cluster_tasks --url <cluster or sentinel url> ...``) with this
folder as their working directory, each in its own session so cleanup can
reach the whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import redis
from cluster_tasks import LEDGER_ENV, LEDGER_KEY

TASKMODS = Path(__file__).resolve().parent
DEADLINE = 20.0
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = DEADLINE, interval: float = 0.01,
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


class Ledger:
    """What the tasks in cluster_tasks noted, read from the plain ledger server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(LEDGER_KEY, 0, -1)]

    def events(self, event: str | None = "ran", **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.entries()
                if (event is None or e["event"] == event)
                and all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, count: int, event: str | None = "ran", timeout: float = DEADLINE,
                 **match: Any) -> list[dict[str, Any]]:
        return wait_until(
            lambda: found if len(found := self.events(event, **match)) >= count else None,
            timeout, message=lambda: f"{count} ledger entries {event} {match}; have "
                                     f"{self.entries()[-20:]}")

    def set_flag(self, name: str) -> None:
        self.client.set(name, "1")

    def close(self) -> None:
        self.client.close()


class WorkerProcess:
    def __init__(self, argv: list[str], env: dict[str, str], logdir: Path, name: str) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.argv = argv
        self.err_path = logdir / f"{name}.stderr"
        full_env = dict(os.environ)
        full_env.pop("RPQUEUE_URL", None)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env)
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=TASKMODS, env=full_env,
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.err_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = DEADLINE) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            return "serving" in self.log()

        wait_until(ready, timeout, message=lambda: f"worker start-up line:\n{self.log()}")

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


class Workers:
    """``python -m rpqueue.run`` workers against one URL, all stopped at teardown."""

    def __init__(self, url: str, ledger_url: str, logdir: Path) -> None:
        self.url = url
        self.ledger_url = ledger_url
        self.logdir = logdir
        self.started: list[WorkerProcess] = []

    def start(self, *queues: str, module: str = "cluster_tasks", threads: int = 1,
              args: Iterable[str] = (), ready: bool = True) -> WorkerProcess:
        argv = [sys.executable, "-m", "rpqueue.run", f"--module={module}", "--url", self.url,
                "--loglevel", "INFO", "--threads", str(threads), *args, *queues]
        worker = WorkerProcess(argv, {LEDGER_ENV: self.ledger_url}, self.logdir,
                               f"worker{len(self.started)}")
        self.started.append(worker)
        if ready:
            worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def logs(self) -> str:
        return "\n".join(f"--- worker {w.pid}\n{w.log()[-4000:]}" for w in self.started)


def monitor_commands(clients: list[redis.Redis], seconds: float) -> list[dict[str, Any]]:
    """Commands clients sent to these servers (not those Lua scripts ran) for ``seconds``.

    One MONITOR per server; each window is closed by an ECHO of a marker.
    """
    seen: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    marker = f"end-of-window-{uuid.uuid4().hex}"
    started = threading.Barrier(len(clients) + 1, timeout=30)
    stop = threading.Event()

    def watch(client: redis.Redis) -> None:
        kwargs = client.connection_pool.connection_kwargs
        echo = redis.Redis(host=kwargs["host"], port=kwargs["port"], socket_timeout=30)
        try:
            echo.ping()  # connected before the window: its HELLO is not counted
            with client.monitor() as monitor:
                started.wait()
                stop.wait()
                echo.echo(marker)
                while True:
                    cmd = monitor.next_command()
                    if marker in cmd["command"]:
                        return
                    if cmd["client_type"] != "lua":
                        with lock:
                            seen.append(cmd)
        except BaseException as exc:
            errors.append(exc)
            started.abort()
        finally:
            echo.close()

    threads = [threading.Thread(target=watch, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(30)
    if errors:
        raise errors[0]
    if any(t.is_alive() for t in threads):
        raise AssertionError("a MONITOR window did not close")
    return seen
