"""Worker threads must not share one connection (found by this suite).

``run_threads`` builds every ``Worker`` in the calling thread. When
``Worker.__init__`` took ``app.direct()`` (a per-*thread* connection) there,
all worker threads of a process got the calling thread's Direct and talked
on one socket at once: replies got crossed (``IndexError: list index out of
range`` in ``broker.finish_take``, tasks that never settled) with
``--threads 2`` and 1 MiB messages. Fixed by taking it in ``Worker.run``;
this test keeps it fixed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator

import pytest

import rpqueue
from rpqueue.storage import direct as direct_module
from rpqueue.worker.process import run_threads


@pytest.fixture
def threaded_app(redis_url: str) -> Iterator[rpqueue.RPQueue]:
    app = rpqueue.new_rpqueue("sec-threads", "threads:")
    app.set_redis_url(redis_url)
    app.store.forget_seen()
    yield app


def test_each_worker_thread_uses_its_own_direct_connection(
        threaded_app: rpqueue.RPQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    used: dict[int, set[int]] = defaultdict(set)  # Direct object -> threads that used it
    original = direct_module.Direct.call

    def spy(self: direct_module.Direct, *args: object, **kwargs: object) -> object:
        used[id(self)].add(threading.get_ident())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(direct_module.Direct, "call", spy)
    app = threaded_app

    @app.task(name="threads.nap")  # type: ignore[attr-defined]
    def nap() -> None:
        time.sleep(0.01)

    handles = nap.execute_many([() for _ in range(60)])
    stop = threading.Event()
    runner = threading.Thread(target=run_threads, args=(app.ctx, ["default"], 3, 0.5, stop),
                              daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(h.status != "done" for h in handles):
            if any(len(threads) > 1 for threads in list(used.values())):
                break  # seen: no need to wait for tasks a crossed reply may strand
            time.sleep(0.02)
    finally:
        stop.set()
        runner.join(15)
    worker_threads = set().union(*used.values()) if used else set()
    assert len(worker_threads) >= 2, "the test needs two threads taking tasks"
    shared = {d: threads for d, threads in used.items() if len(threads) > 1}
    assert shared == {}, f"Direct connections used by several threads: {shared}"
