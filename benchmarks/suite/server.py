"""The harness's own redis-server (a free loopback port, no persistence), a
minimal client to talk to it without redis-py, and redis-benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from types import TracebackType

from .common import WORK


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cmd(port: int, *args: str | bytes | int, timeout: float = 5.0) -> str:
    """Minimal RESP client: send one command, return the first reply line."""
    payload = b"*%d\r\n" % len(args)
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        payload += b"$%d\r\n%s\r\n" % (len(b), b)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").strip()


class RedisServer:
    """A redis-server of the harness: ``start()``/``stop()``, or ``with``.
    ``name`` is its scratch directory under .work/ (one per concurrent
    benchmark script, so that their logs do not mix)."""

    def __init__(self, name: str = "redis") -> None:
        self.port = free_port()
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redis_cmd(self.port, "PING", timeout=1) == "+PONG":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start on port %d" % self.port)

    def alive(self) -> bool:
        try:
            return (self.proc is not None and self.proc.poll() is None
                    and redis_cmd(self.port, "PING", timeout=2) == "+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def url(self) -> str:
        return "redis://127.0.0.1:%d/0" % self.port


def redis_benchmark(port: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """`redis-benchmark -c 1 -n 100000 -t ping` -> {test: requests/s}."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "1", "-n", "100000",
           "-t", "ping", "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL).stdout
    res: dict[str, float] = {}
    detail: dict[str, dict[str, float]] = {}
    header = None
    for line in out.splitlines():
        cells = [c.strip().strip('"') for c in line.split(",")]
        if cells and cells[0] == "test":
            header = cells
        elif len(cells) >= 2 and cells[0].startswith("PING"):
            try:
                res[cells[0]] = float(cells[1])
                if header:
                    detail[cells[0]] = dict(zip(header[1:], (float(c) for c in cells[1:])))
            except ValueError:
                pass
    return res, detail


