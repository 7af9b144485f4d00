"""The handle of one queued call: ``EnqueuedTask``, what ``execute`` returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .storage import Store
from .storage.message import decode_result

# How long ``result`` waits for a task that has started but not finished.
RESULT_GRACE = 2.0


def store_of(owner: Any) -> Store:
    """The store of an app, a context, or the store itself."""
    return owner if isinstance(owner, Store) else owner.store


def _poll_until(check: Callable[[], bool], timeout: float) -> bool:
    """Call ``check`` with pauses doubling from 1 ms to 50 ms until it is true
    (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        if check():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)


class EnqueuedTask:
    """The handle of one queued call: its status, and ways to wait for it,
    cancel or abort it, and read its result.

    Attributes: ``taskid``, ``name`` (the task's), ``queue``, ``args`` (the
    call's positional arguments) and ``outcome``, what ``execute`` did:

    - ``'queued'``: queued as a new task;
    - ``'replaced'``: a pending task with the same ``taskid`` was replaced;
    - ``'merged'``: a live task with the same unique key was found (see
      ``unique_for``); this handle is that task's;
    - ``'refused'``: ``execute_many`` only, likewise for a task made with
      ``on_duplicate='refuse'`` (``execute`` raises DuplicateTask instead).

    A handle can be made for any known id:
    ``EnqueuedTask(app, name, queue, taskid, ())``.
    """

    def __init__(
        self,
        app: Any,
        name: str,
        queue: str,
        taskid: str,
        args: tuple[Any, ...] | list[Any],
        inline: tuple[Any] | None = None,
        outcome: str = "queued",
    ) -> None:
        self.store = store_of(app)
        self.outcome = outcome
        self.name = name
        self.queue = queue
        self.taskid = taskid
        self.args = args
        # (result,) of a call run with execute_inline_now=True: nothing in Redis.
        self._inline = inline

    def __repr__(self) -> str:
        return f"<EnqueuedTask {self.name} id={self.taskid} queue={self.queue!r}>"

    @property
    def status(self) -> str:
        """Where the task is now, read from Redis on each access:

        - ``'early'``: delayed, its time has not come;
        - ``'late'``: delayed, its time has passed, a worker has yet to move it;
        - ``'waiting'``: queued, ready for a worker;
        - ``'started'``: a worker is running it;
        - ``'done'``: finished (or cancelled, or unknown: Redis keeps no
          record of tasks that are gone).
        """
        if self._inline is not None:
            return "done"
        return self.store.run(self.store.calls.status(self.queue, self.taskid))

    def wait(self, timeout: float = 30) -> bool:
        """Wait until the task has started or finished.

        Returns True once ``status`` is 'started' or 'done', False when
        ``timeout`` seconds pass first. It polls Redis, from every
        millisecond up to every 50 ms. For the result, read ``result``
        (which waits a little for a started task) or use ``await_result``.
        """
        return _poll_until(lambda: self.status in ("started", "done"), timeout)

    def cancel(self) -> bool | int:
        """Remove the task if it has not started.

        Returns True when it was removed before running; False when it is
        unknown, running, or already done without a saved result; -1 when it
        had run and its saved result was deleted instead.
        """
        code = self.store.run(self.store.calls.cancel(self.queue, self.taskid))
        return -1 if code == -1 else bool(code)

    def abort(self, hard: bool = False) -> bool:
        """Stop this task: cancel it if it has not started, else ask it to stop.

        A running task sees ``rpqueue.current_task().abort_requested`` within
        about half a second and may stop itself. With ``hard=True`` the
        worker also stops it: TaskAborted is raised in a plain function, an
        ``async def`` one is cancelled. An aborted run is recorded as failed
        and not retried.

        Returns True when the task was cancelled or asked to stop, False when
        it is unknown or already done (its saved result stays).
        """
        status = self.status
        if status in ("early", "late", "waiting"):
            return self.cancel() is True
        if status != "started":
            return False  # done: its saved result stays
        self.store.set_abort(self.queue, self.taskid, hard)
        return True

    @property
    def result(self) -> Any:
        """The saved return value, or None.

        None also when the task has not finished, its task keeps no results
        (``save_results=0``), the result expired, or the task failed.

        ``wait()`` returns once a task has started, so a result read right
        after it may be a moment early: for a task still running, this waits
        up to RESULT_GRACE seconds for it to finish (the seed README's
        ``if t.wait(5): print(t.result)`` relies on it).
        """
        if self._inline is not None:
            return self._inline[0]
        raw = self.store.read_result(self.queue, self.taskid)
        if raw is None and self.status == "started":
            _poll_until(lambda: self.status != "started", RESULT_GRACE)
            raw = self.store.read_result(self.queue, self.taskid)
        return decode_result(raw)

    # -- asyncio -------------------------------------------------------------

    async def astatus(self) -> str:
        """``status`` for asyncio code, on a redis.asyncio connection."""
        if self._inline is not None:
            return "done"
        return await self.store.arun(self.store.calls.status(self.queue, self.taskid))

    async def await_started(self, timeout: float = 30) -> bool:
        """``wait`` for asyncio code: True once the task has started or finished."""
        return await self._await(("started", "done"), timeout)

    async def await_result(self, timeout: float = 30) -> Any:
        """Wait until the task is done and return its saved result (None if none was saved).

        Raises TimeoutError when it has not finished within ``timeout`` seconds.
        """
        if not await self._await(("done",), timeout):
            raise TimeoutError(f"task {self.taskid} not done after {timeout}s")
        return await self.aresult()

    async def aresult(self) -> Any:
        """The saved return value, or None, read now (no grace wait, unlike ``result``)."""
        if self._inline is not None:
            return self._inline[0]
        raw = await self.store.aread_result(self.queue, self.taskid)
        return decode_result(raw)

    async def acancel(self) -> bool | int:
        """``cancel`` for asyncio code; the same return values."""
        code = await self.store.arun(self.store.calls.cancel(self.queue, self.taskid))
        return -1 if code == -1 else bool(code)

    async def _await(self, states: tuple[str, ...], timeout: float) -> bool:
        import asyncio

        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            if await self.astatus() in states:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)
