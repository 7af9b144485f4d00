"""Test-side helpers for tests/cluster: worker processes, the ledger, waiting.

Workers come from the shared harness (tests/support/worker.py), started the
way users start them (``python -m rpqueue.run --module=cluster_tasks --url
<cluster or sentinel url> ...``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import redis
from cluster_tasks import LEDGER_ENV, LEDGER_KEY
from support.paths import CLUSTER_TASKMODS as TASKMODS
from support.worker import WorkerProcess, rpqueue_argv
from support.worker import Workers as _Workers
from support.worker import wait_until as _wait_until

__all__ = ["DEADLINE", "TASKMODS", "Ledger", "WorkerProcess", "Workers", "monitor_commands",
           "wait_until"]

# Longer than elsewhere: a cluster that just lost a node takes seconds to heal.
DEADLINE = 20.0
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = DEADLINE, interval: float = 0.01,
               message: str | Callable[[], str] = "condition") -> T:
    return _wait_until(predicate, timeout, interval, message)


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


class Workers(_Workers):
    """``python -m rpqueue.run`` workers against one URL, all stopped at teardown."""

    def __init__(self, url: str, ledger_url: str, logdir: Path) -> None:
        super().__init__(url, logdir, {LEDGER_ENV: ledger_url}, cwd=TASKMODS)
        self.ledger_url = ledger_url

    def start(self, *queues: str, module: str = "cluster_tasks", threads: int = 1,  # type: ignore[override]
              args: Iterable[str] = (), ready: bool = True) -> WorkerProcess:
        argv = rpqueue_argv(module, *queues, url=self.url,
                            args=["--threads", str(threads), *args])
        # Output and log lines in one file, as the cluster tests read them.
        worker = self.add(argv, ready=0, merge_output=True)
        if ready:
            worker.wait_ready(DEADLINE)
        return worker


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
