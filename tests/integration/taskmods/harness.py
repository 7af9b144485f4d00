"""Test-side helpers: real worker processes, awaiting conditions, the ledger.

Workers are started exactly the way users start them
(``python -m rpqueue.run --module=M ...``) with this folder as their working
directory, so the task modules here are importable by name. Each worker runs
in its own session (process group), so cleanup can reach the children of
``--processes N`` without touching anything this suite did not start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ledger import LEDGER, release_key

TASKMODS = Path(__file__).resolve().parent
T = TypeVar("T")

# Generous: these bound how long a test waits for something that should
# happen in milliseconds; a slow CI box must not turn them into failures.
DEADLINE = 15.0


class Timeout(AssertionError):
    pass


def wait_until(
    predicate: Callable[[], T],
    timeout: float = DEADLINE,
    interval: float = 0.005,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise Timeout(f"timed out after {timeout}s waiting for: {text}")
        time.sleep(interval)


class Ledger:
    """Reads what the task modules wrote with ledger.note()."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.client.lrange(LEDGER, 0, -1)]

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
            message=lambda: self._describe(count, event, match),
        )

    def _describe(self, count: int, event: str | None, match: dict[str, Any]) -> str:
        found = self.events(event, **match)
        everything = self.entries()
        return (f"{count} ledger entries {event} {match}; {len(found)} match of "
                f"{len(everything)}, the last: {everything[-5:]}")

    def release(self, tag: str, times: int = 1) -> None:
        self.client.rpush(release_key(tag), *(["1"] * times))


class WorkerProcess:
    """One ``python -m rpqueue.run`` (or any python) child with logs in files."""

    def __init__(self, argv: Sequence[str], logdir: Path, name: str,
                 env: dict[str, str] | None = None, cwd: Path = TASKMODS,
                 stdin: Any = subprocess.DEVNULL, merge_output: bool = False) -> None:
        self.argv = list(argv)
        logdir.mkdir(parents=True, exist_ok=True)
        self.out_path = logdir / f"{name}.stdout"
        self.err_path = logdir / f"{name}.stderr"
        full_env = dict(os.environ)
        full_env.pop("RPQUEUE_URL", None)
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        # merge_output: stderr goes to stdout, so prints and log lines keep their order.
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=cwd, env=full_env, stdin=stdin, stdout=out,
                stderr=subprocess.STDOUT if merge_output else err, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def logs(self) -> str:
        return f"--- stdout\n{self.stdout()}\n--- stderr\n{self.stderr()}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_log(self, text: str, timeout: float = DEADLINE, count: int = 1,
                 stream: str = "stderr") -> str:
        read = self.stderr if stream == "stderr" else self.stdout

        def seen() -> str | None:
            if self.proc.poll() is not None and read().count(text) < count:
                raise AssertionError(
                    f"worker exited with {self.proc.returncode} before logging {text!r}:\n"
                    + self.logs()
                )
            out = read()
            return out if out.count(text) >= count else None

        return wait_until(seen, timeout, message=lambda: f"{text!r} in worker log:\n{self.logs()}")

    def wait_ready(self, timeout: float = DEADLINE) -> None:
        """Wait for the worker's start-up line (needs --loglevel INFO or lower)."""
        self.wait_log("serving", timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Timeout(f"worker still running {timeout}s later:\n{self.logs()}") from None

    def stop(self) -> None:
        """Guaranteed cleanup: SIGTERM, then SIGKILL of the worker's own group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:
            # The group is this worker's session: it and its --processes children.
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)


class Workers:
    """Factory for worker processes, all stopped when the test ends."""

    def __init__(self, redis_url: str, logdir: Path) -> None:
        self.redis_url = redis_url
        self.logdir = logdir
        self.started: list[WorkerProcess] = []

    def start(self, module: str | None, *queues: str, url: str | None = "default",
              args: Iterable[str] = (), env: dict[str, str] | None = None,
              ready: bool = True, loglevel: str | None = "INFO",
              stdin: Any = subprocess.DEVNULL, merge_output: bool = False) -> WorkerProcess:
        argv = [sys.executable, "-m", "rpqueue.run"]
        if module is not None:
            argv.append(f"--module={module}")
        if url == "default":
            url = self.redis_url
        if url is not None:
            argv += ["--url", url]
        if loglevel is not None:
            argv += ["--loglevel", loglevel]
        argv += list(args)
        argv += list(queues)
        return self._add(argv, env, ready, stdin, merge_output)

    def python(self, *argv: str, env: dict[str, str] | None = None) -> WorkerProcess:
        """Any python program (e.g. a script calling rpqueue.execute_tasks())."""
        return self._add([sys.executable, *argv], env, ready=False)

    def _add(self, argv: list[str], env: dict[str, str] | None, ready: bool,
             stdin: Any = subprocess.DEVNULL, merge_output: bool = False) -> WorkerProcess:
        worker = WorkerProcess(argv, self.logdir, f"worker{len(self.started)}", env,
                               stdin=stdin, merge_output=merge_output)
        self.started.append(worker)
        if ready:
            worker.wait_log("serving", stream="stdout" if merge_output else "stderr")
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


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
