"""Test-side helpers for tests/integration: workers, the ledger, awaiting conditions.

Worker processes come from the shared harness (tests/support/worker.py);
workers started here run with this folder as their working directory, so
``workers.python("script.py")`` finds the scripts next to the task modules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ledger import LEDGER, release_key
from support.worker import DEADLINE, Timeout, WorkerProcess, wait_until
from support.worker import Workers as _Workers

__all__ = ["DEADLINE", "TASKMODS", "DelayProxy", "Ledger", "Timeout", "WorkerProcess", "Workers",
           "blocked_clients", "command_calls", "top_level_commands", "wait_until"]

TASKMODS = Path(__file__).resolve().parent


class Ledger:
    """Reads what task modules wrote with their ledger's note().

    ``key`` and ``release`` name the list the tasks push to and the lists
    they wait on; the ops task modules (opsmods/ops_ledger.py) use their own.
    """

    def __init__(self, client: Any, key: str = LEDGER,
                 release: Callable[[str], str] = release_key) -> None:
        self.client = client
        self.key = key
        self.release_key = release

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(self.key, 0, -1)]

    def events(self, event: str | None = None, **match: Any) -> list[dict[str, Any]]:
        return [
            e for e in self.entries()
            if (event is None or e["event"] == event)
            and all(e.get(k) == v for k, v in match.items())
        ]

    def wait_for(self, count: int, event: str | None = None, timeout: float = DEADLINE,
                 **match: Any) -> list[dict[str, Any]]:
        """Wait until at least ``count`` matching entries exist; return them all."""
        return wait_until(
            lambda: (found if len(found := self.events(event, **match)) >= count else None),
            timeout,
            interval=0.005,
            message=lambda: self._describe(count, event, match),
        )

    def _describe(self, count: int, event: str | None, match: dict[str, Any]) -> str:
        found = self.events(event, **match)
        everything = self.entries()
        return (f"{count} ledger entries {event} {match}; {len(found)} match of "
                f"{len(everything)}, the last: {everything[-5:]}")

    def release(self, tag: str, times: int = 1) -> None:
        self.client.rpush(self.release_key(tag), *(["1"] * times))


class Workers(_Workers):
    """Worker processes for one test, run from this folder, all stopped at teardown."""

    def __init__(self, redis_url: str, logdir: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(redis_url, logdir, env, cwd=TASKMODS, grace=5.0)


def blocked_clients(client: Any, command: str = "blpop") -> int:
    """How many clients are blocked in ``command`` right now (idle workers)."""
    return sum(1 for c in client.client_list()
               if c.get("cmd") == command and "b" in c.get("flags", ""))


def command_calls(client: Any) -> dict[str, int]:
    """INFO commandstats as {command: calls}."""
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def top_level_commands(url: str, action: Callable[[], Any]) -> list[dict[str, Any]]:
    """Commands clients sent (not those Lua scripts ran) while ``action`` ran, via MONITOR."""
    import uuid

    import redis

    watcher = redis.Redis.from_url(url, socket_timeout=30)
    marker_client = redis.Redis.from_url(url, socket_timeout=30)
    marker = f"end-of-window-{uuid.uuid4().hex}"
    seen: list[dict[str, Any]] = []
    try:
        marker_client.ping()
        with watcher.monitor() as monitor:
            action()
            marker_client.echo(marker)
            while True:
                cmd = monitor.next_command()
                if marker in cmd["command"]:
                    break
                if cmd["client_type"] != "lua":
                    seen.append(cmd)
    finally:
        watcher.close()
        marker_client.close()
    return seen


class DelayProxy:
    """A TCP proxy in front of Redis that holds every chunk ``delay`` seconds.

    Puts a network's latency between one client (a worker) and Redis while
    the test itself talks to Redis directly, which turns timing windows that
    last microseconds on loopback into ones that last ``2 * delay``.
    """

    def __init__(self, host: str, port: int, delay: float) -> None:
        import socket
        import threading

        self.target = (host, port)
        self.delay = delay
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port: int = self.listener.getsockname()[1]
        self.sockets: list[Any] = [self.listener]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        import socket
        import threading

        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: Any, dst: Any) -> None:
        import socket

        try:
            while not self.closed.is_set():
                data = src.recv(65536)
                if not data:
                    break
                time.sleep(self.delay)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.closed.set()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
