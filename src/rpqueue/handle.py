"""The handle of one queued call: ``EnqueuedTask``, what ``execute`` returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic

from . import taskstate
from .errors import TaskError, TaskFailed
from .storage import Store
from .storage.message import decode_result

# R, the task's return type: ``EnqueuedTask[int]`` is the handle of a call to
# a ``Task[..., int]``; a bare ``EnqueuedTask`` is ``EnqueuedTask[Any]``.
from .typevars import R

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


class EnqueuedTask(Generic[R]):
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
        inline_error: BaseException | None = None,
    ) -> None:
        # store_of(app), inlined: a handle is made per execute().
        self.store: Store = app if isinstance(app, Store) else app.store
        self.outcome = outcome
        self.name = name
        self.queue = queue
        self.taskid = taskid
        self.args = args
        # (result,) of a call run with execute_inline_now=True: nothing in Redis.
        self._inline = inline
        # What a call run here (eager mode, rpqueue.testing) raised, if anything.
        self._inline_error = inline_error

    def __repr__(self) -> str:
        return f"<EnqueuedTask {self.name} id={self.taskid} queue={self.queue!r}>"

    @property
    def inline_error(self) -> BaseException | None:
        """The exception a call run in this process raised (eager mode, see
        ``rpqueue.testing``), after any retries; None otherwise, and always
        None for a call a worker ran."""
        return self._inline_error

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
    def result(self) -> R | None:
        """The saved return value, or None.

        None also when the task has not finished, its task keeps no results
        (``save_results=0``), the result expired, or the task failed.

        ``wait()`` returns once a task has started, so a result read right
        after it may be a moment early: for a task still running, this waits
        up to RESULT_GRACE seconds for it to finish (the seed README's
        ``if t.wait(5): print(t.result)`` relies on it).
        """
        if self._inline is not None:
            value: R | None = self._inline[0]
            return value
        raw = self.store.read_result(self.queue, self.taskid)
        if raw is None and self.status == "started":
            _poll_until(lambda: self.status != "started", RESULT_GRACE)
            raw = self.store.read_result(self.queue, self.taskid)
        # The type the task declares: what the worker saved is its return value.
        value = decode_result(raw)
        return value

    # -- what happened (docs/TASK_STATE.md) ------------------------------------

    def task_state(self) -> taskstate.TaskState:
        """State, attempt, error and progress together, in one read."""
        if self._inline is not None:
            return self._inline_state()
        return taskstate.read(self.store, self.queue, self.taskid)

    def _inline_state(self) -> taskstate.TaskState:
        failed = getattr(self, "_inline_error", None) is not None
        return taskstate.TaskState("failed" if failed else "succeeded", 1, 1, None, None, None)

    @property
    def state(self) -> str:
        """What happened to the task, read from Redis on each access:

        - ``'waiting'``: queued, ready for a worker;
        - ``'delayed'``: queued to run later;
        - ``'running'``: a worker holds it;
        - ``'retrying'``: an attempt failed (or its worker was lost) and
          another is queued (``error`` says why);
        - ``'succeeded'``, ``'failed'``, ``'dead'`` (dead-lettered),
          ``'cancelled'``, ``'aborted'``: how it ended;
        - ``'unknown'``: no record (never queued here, or its state record
          expired, see ``RPQueue.state_keep``).
        """
        return self.task_state().state

    @property
    def error(self) -> TaskError | None:
        """The ``TaskError`` of the last failed attempt (type, message, full
        traceback, attempt, worker, time), or None."""
        return self.task_state().error

    @property
    def progress(self) -> taskstate.TaskProgress | None:
        """The last progress the task reported, or None."""
        return self.task_state().progress

    @property
    def attempt(self) -> tuple[int, int]:
        """(attempt n, of m): the attempt running or next, or the last one made."""
        st = self.task_state()
        return st.attempt, st.attempts

    def get(self, timeout: float | None = None) -> R | None:
        """Wait for the task to end and return its result (None when none is
        saved, see ``save_results``).

        Raises ``rpqueue.TaskFailed`` (its ``error`` and message carry the
        remote traceback) when it failed, was dead-lettered or aborted,
        ``rpqueue.TaskCancelled`` when it was cancelled, ``TimeoutError``
        when it has not ended after ``timeout`` seconds (None: no limit).
        A task whose state is unknown (expired record) returns its saved
        result, if any.
        """
        if self._inline is not None:
            if getattr(self, "_inline_error", None) is not None:
                raise TaskFailed(self.taskid, "failed", None) from self._inline_error
            value: R | None = self._inline[0]
            return value
        st = taskstate.wait_final(self.task_state, self.taskid, timeout)
        raw = self.store.read_result(self.queue, self.taskid) if st.state in (
            "succeeded", "unknown") else None
        return taskstate.outcome(raw, st, self.taskid)  # type: ignore[no-any-return]

    async def atask_state(self) -> taskstate.TaskState:
        """``task_state`` for asyncio code."""
        if self._inline is not None:
            return self._inline_state()
        return await taskstate.aread(self.store, self.queue, self.taskid)

    async def astate(self) -> str:
        """``state`` for asyncio code, on a redis.asyncio connection."""
        return (await self.atask_state()).state

    async def aget(self, timeout: float | None = None) -> R | None:
        """``get`` for asyncio code: the same result and errors."""
        if self._inline is not None:
            return self.get()
        st = await taskstate.await_final(self.atask_state, self.taskid, timeout)
        raw = await self.store.aread_result(self.queue, self.taskid) if st.state in (
            "succeeded", "unknown") else None
        return taskstate.outcome(raw, st, self.taskid)  # type: ignore[no-any-return]

    # -- asyncio -------------------------------------------------------------

    async def astatus(self) -> str:
        """``status`` for asyncio code, on a redis.asyncio connection."""
        if self._inline is not None:
            return "done"
        return await self.store.arun(self.store.calls.status(self.queue, self.taskid))

    async def await_started(self, timeout: float = 30) -> bool:
        """``wait`` for asyncio code: True once the task has started or finished."""
        return await self._await(("started", "done"), timeout)

    async def await_result(self, timeout: float = 30) -> R | None:
        """Wait until the task is done and return its saved result (None if none was saved).

        Raises TimeoutError when it has not finished within ``timeout`` seconds.
        """
        if not await self._await(("done",), timeout):
            raise TimeoutError(f"task {self.taskid} not done after {timeout}s")
        return await self.aresult()

    async def aresult(self) -> R | None:
        """The saved return value, or None, read now (no grace wait, unlike ``result``)."""
        if self._inline is not None:
            value: R | None = self._inline[0]
            return value
        raw = await self.store.aread_result(self.queue, self.taskid)
        value = decode_result(raw)
        return value

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
