"""A reply lost on the way back: the command ran, the client never heard.

A small TCP proxy sits between the producer and Redis (the workers talk to
Redis directly). Armed, it passes the producer's next EVALSHA on, then
swallows Redis's reply and closes the connection, as a network cut or a
``CLIENT KILL`` at that instant would. redis-py then reconnects and sends
the command again when a client was made with ``redis.Redis(host=...)``
and its default Retry, which would run a script twice. rpqueue builds its
clients without that retry (``set_redis_connection_settings``, URLs and the
default localhost client alike): the caller gets the ConnectionError, and
the call may or may not have been queued.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import fault_tasks
import pytest
from faultlib import Ledger, WorkerPool, report, use, wait_until
from redis.exceptions import ConnectionError

import rpqueue

pytestmark = pytest.mark.fault


class LosingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: bytes | None = None
        self.hold = 0.0
        self.lost = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def arm(self, match: bytes, hold: float) -> None:
        """Lose the reply to the next request containing ``match``, ``hold`` s after it came."""
        self.hold = hold
        self.armed = match

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(("127.0.0.1", self.upstream))
        losing = False
        try:
            while not self.closed:
                ready, _, _ = select.select([client, server], [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if self.armed is not None and self.armed in data:
                            self.armed, losing = None, True
                        server.sendall(data)
                    elif losing:
                        time.sleep(self.hold)
                        self.lost += 1
                        return
                    else:
                        client.sendall(data)
        finally:
            client.close()
            server.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[LosingProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    p = LosingProxy(port)
    yield p
    p.close()


def use_settings(proxy: LosingProxy) -> None:
    """The producer connects the README's way: host, port, db."""
    rpqueue.set_redis_connection_settings("127.0.0.1", proxy.port, 0)
    rpqueue.set_key_prefix("rpqueue:")


def warm_up(ledger: Ledger) -> None:
    """One call through the proxy: the queue is registered, the script loaded."""
    taskid = fault_tasks.good.execute(-1).taskid
    wait_until(lambda: taskid in ledger.tally().completed(), timeout=20)


def test_lost_enqueue_reply_does_not_run_a_zero_or_one_task_twice(
        redis_url: str, proxy: LosingProxy, pools: Callable[..., WorkerPool],
        ledger: Ledger) -> None:
    """The README's host/port/db client does not re-send: the caller hears of
    the cut (the call may or may not be queued) and the task runs once."""
    use_settings(proxy)
    pools(redis_url, size=1, threads=2, work=0)
    warm_up(ledger)
    # The task runs and finishes while its enqueue reply is held back.
    proxy.arm(b"EVALSHA", hold=1.5)
    with pytest.raises(ConnectionError):
        fault_tasks.work_once.execute(1, taskid="lost-reply-1")
    assert proxy.lost == 1
    wait_until(lambda: "lost-reply-1" in ledger.tally().completed(), timeout=20)
    time.sleep(1.0)  # a second run, if there were one, would start within this
    starts = ledger.tally().starts["lost-reply-1"]
    report("lost enqueue reply (0/1 task)", runs_of_one_call=starts)
    assert starts == 1


def test_lost_enqueue_reply_with_a_url_client_raises(
        redis_url: str, proxy: LosingProxy, pools: Callable[..., WorkerPool],
        ledger: Ledger) -> None:
    """A client made from a URL does not resend: execute() raises, the call ran once."""
    use(proxy.url)
    pools(redis_url, size=1, threads=2, work=0)
    warm_up(ledger)
    proxy.arm(b"EVALSHA", hold=1.5)
    with pytest.raises(ConnectionError):
        fault_tasks.work_once.execute(3, taskid="lost-reply-3")
    time.sleep(1.0)
    # Ambiguous for the caller, but queued and run exactly once.
    assert ledger.tally().starts["lost-reply-3"] == 1
