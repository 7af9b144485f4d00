"""The worker's shared pieces as pure logic: no Redis, no threads started."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from rpqueue.worker import process
from rpqueue.worker.aio import TaskExited, _contained
from rpqueue.worker.state import Reservation


def test_a_reservation_hands_out_its_slots_once() -> None:
    r = Reservation(2)
    assert [r.use(), r.use(), r.use()] == [True, True, False]
    assert r.left == 0


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_a_coroutine_exit_is_its_failure_not_the_loops(exc: BaseException) -> None:
    async def task() -> None:
        raise exc

    with pytest.raises(TaskExited, match=type(exc).__name__):
        asyncio.run(_contained(task()))


def test_forked_children_get_default_stop_handlers() -> None:
    saved = {s: signal.getsignal(s) for s in process.STOP_SIGNALS}
    stop = threading.Event()
    try:
        process._on_stop(stop)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what handles SIGTERM and SIGINT here
            ok = (signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
                  and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
        os.close(w)
        assert os.read(r, 1) == b"1"
        os.close(r)
        os.waitpid(pid, 0)
        # The worker itself keeps its own.
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, saved[signal.SIGTERM])
    finally:
        stop.set()
        for s, h in saved.items():
            signal.signal(s, h)
