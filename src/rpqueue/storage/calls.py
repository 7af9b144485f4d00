"""Call builders: every script call as a ``Call`` value, nothing sent.

A ``Call`` holds the script, its keys, its arguments and how to read its
reply; ``executor.Executor`` runs it (sync, async, on a held connection, in
a pipeline or durably), so building a call and sending it never mix. The
builders need only the key layout, which keeps them testable without Redis.

Keys come from each script's own KEYS declaration (``LuaScript.keys_for``),
never from a list written out here, so a script and its callers cannot
disagree on the order; argument lists are still laid out by hand, next to
the ARGV comments of the script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .keys import Keys, QueueKeys
from .scripts import LuaScript, scripts
from .wire import CancelOutcome, EnqueueStatus, FailMode, FailOutcome, ms, text

# How many due delayed tasks / expired leases one take handles at most.
MAINTENANCE_BATCH = 100

T = TypeVar("T")


@dataclass
class Taken:
    """A task a worker holds a lease on."""

    queue: str
    id: str
    raw: bytes | str
    token: str
    # The id exactly as Redis holds it: an id that is not UTF-8 must be sent
    # back byte for byte to finish or dead-letter its task.
    rid: bytes | str = ""

    @property
    def key(self) -> bytes | str:
        return self.rid or self.id


@dataclass
class TakeReply:
    taken: Taken | None
    now_ms: int
    next_ms: int  # earliest pending due time or lease deadline, -1 if none


@dataclass
class Call(Generic[T]):
    script: LuaScript
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], T]
    # Names the subject in a refused-write error; a function when building
    # the text would cost more than the call it describes (execute()).
    label: str | Callable[[], str] = ""

    @property
    def what(self) -> str:
        return self.label() if callable(self.label) else self.label


def _take_reply(queue: str, reply: list[Any]) -> TakeReply:
    got, raw, token, now, next_ms = reply[:5]
    taken = Taken(queue, text(got), raw, text(token), got) if got else None
    return TakeReply(taken, int(now), int(next_ms))


@dataclass
class Enqueued:
    """What an enqueue did: ``status`` as the enqueue scripts return it
    (an ``EnqueueStatus``) and its detail: the id of
    the live task holding the unique key (DUPLICATE) or the queue's max_len (FULL)."""

    status: int
    detail: str | int | None = None


def _enqueued(reply: list[Any]) -> Enqueued:
    status = int(reply[0])
    detail = reply[2] if len(reply) > 2 and reply[2] is not None else None
    if status == EnqueueStatus.DUPLICATE:
        return Enqueued(status, text(detail))
    return Enqueued(status, int(detail) if detail is not None else None)


def _many(reply: list[Any]) -> list[Enqueued]:
    # A duplicate comes back as the holder's id, every other outcome as its status.
    return [Enqueued(r) if isinstance(r, int) else Enqueued(EnqueueStatus.DUPLICATE, text(r)) for r in reply]


def call_taskids(call: Call[Any]) -> list[str]:
    """The task ids an enqueue call queues (its argument layout is built in Calls.enqueue_many)."""
    if call.script is scripts().enqueue_many:
        # After six head arguments: id, message pairs, or triples with '*'.
        step = 3 if call.args[4] == "*" else 2
        return [str(i) for i in call.args[6::step]]
    return [str(call.args[0])]


class Calls:
    """Builds the calls of the task queues under one key layout."""

    def __init__(self, keys: Callable[[], Keys], max_message_bytes: Callable[[], int],
                 opts: Callable[[], str] = lambda: "0 0") -> None:
        # Getters, not values: set_key_prefix(), the message limit and the
        # state and event settings may change after the builders are made.
        self._keys = keys
        self._max = max_message_bytes
        # "<keep_ms> <events_maxlen>" (parse_opts in scripts/lib/common.lua).
        self._opts = opts
        self.s = scripts()

    def _q(self, queue: str) -> QueueKeys:
        return self._keys().queue(queue)

    # -- producing -------------------------------------------------------------

    def enqueue(self, queue: str, taskid: str, message: str, delay: float,
                meta: str, unique_for: float = 0, fresh: bool = False) -> Call[Enqueued]:
        """``fresh``: the id was just made by new_id() (cannot be pending or running)."""
        # ms() only when there is something to convert: most calls have neither.
        return Call(self.s.enqueue, self.s.enqueue.keys_for(self._keys().queue(queue)),
                    [taskid, message, ms(delay) if delay else 0, meta, self._max(),
                     ms(unique_for) if unique_for else 0, 1 if fresh else 0, self._opts()],
                    _enqueued, lambda: f"task {taskid} for queue {queue!r}")

    def enqueue_many(self, queue: str, items: list[tuple[str, str, str]], delay: float,
                     unique_for: float = 0, fresh: bool = False,
                     chunk: int = 2000) -> list[Call[list[Enqueued]]]:
        """One script call per ``chunk`` (id, message, meta) items."""
        keys = self.s.enqueue_many.keys_for(self._q(queue))
        calls = []
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            shared = part[0][2] if part else ""
            flat: list[str] = []
            if all(meta == shared for _, _, meta in part):
                for taskid, message, _ in part:
                    flat += (taskid, message)
            else:
                shared = "*"
                for item in part:
                    flat += item
            head = [ms(delay), self._max(), ms(unique_for), 1 if fresh else 0, shared,
                    self._opts()]
            calls.append(Call(self.s.enqueue_many, keys, head + flat, _many,
                              f"batch of {len(part)} tasks for queue {queue!r}"))
        return calls

    def peek(self, queue: str) -> Call[tuple[int, int]]:
        """(Redis now, time since which the queue's next task has waited or -1), in ms."""
        return Call(self.s.peek, self.s.peek.keys_for(self._q(queue)), [],
                    lambda r: (int(r[0]), int(r[1])))

    # -- consuming -------------------------------------------------------------

    def take(self, queue: str, running_lease: float) -> Call[TakeReply]:
        return Call(self.s.take, self.s.take.keys_for(self._q(queue)),
                    [ms(running_lease), MAINTENANCE_BATCH, self._opts(), self._max()],
                    lambda r: _take_reply(queue, r))

    def finish_take(self, queue: str, taken: Taken, result: str, keep: float,
                    running_lease: float) -> Call[tuple[bool, TakeReply]]:
        """done() for a task of ``queue`` and take() from it, in one script call."""
        k = self._q(queue)
        return Call(
            self.s.finish_take, self.s.finish_take.keys_for(k, result=k.result(taken.id)),
            [ms(running_lease), MAINTENANCE_BATCH, taken.key, taken.token, result,
             ms(keep) if keep else 0,  # results are rarely kept: skip the call
             self._opts(), self._max()],
            lambda r: (bool(r[5]), _take_reply(queue, r)))

    def done(self, queue: str, taskid: bytes | str, token: str, result: str,
             keep: float) -> Call[bool]:
        k = self._q(queue)
        return Call(self.s.done, self.s.done.keys_for(k, result=k.result(text(taskid))),
                    [taskid, token, result, ms(keep), self._opts()], bool)

    def fail(self, queue: str, taskid: bytes | str, token: str, error: str, mode: FailMode,
             reason: str, retry_delay: float = 0, record: str = "", again: str = "",
             attempts: int = 1, aborted: bool = False) -> Call[FailOutcome]:
        """``record``: the error record JSON for the state record; ``again``: the
        message of the next attempt of a task without a visibility timeout
        (retried under the same id), with ``attempts`` in all."""
        return Call(self.s.fail, self.s.fail.keys_for(self._q(queue)),
                    [taskid, token, error, int(mode), reason, ms(retry_delay), self._opts(),
                     record, again, attempts, "aborted" if aborted else ""],
                    lambda r: FailOutcome(int(r)))

    def progress(self, queue: str, taskid: str, token: str, done: float,
                 total: float | None, note: str, payload: str) -> Call[bool]:
        """Record a running task's progress (``payload`` is its JSON)."""
        return Call(self.s.progress, self.s.progress.keys_for(self._q(queue)),
                    [taskid, token, payload, self._opts(), repr(done),
                     "" if total is None else repr(total), note], bool)

    def task_state(self, queue: str, taskid: str) -> Call[list[Any]]:
        """[live state or None, attempt, total, raw state record or None, raw
        progress or None] (see task_state-4.lua)."""
        return Call(self.s.task_state, self.s.task_state.keys_for(self._q(queue)), [taskid],
                    lambda r: [text(r[0]) if r[0] else None, int(r[1]), int(r[2]),
                               text(r[3]) if r[3] else None, text(r[4]) if r[4] else None])

    def release(self, taken: Taken) -> Call[bool]:
        """Give back a taken task that will not run here (the worker is stopping)."""
        return Call(self.s.release, self.s.release.keys_for(self._q(taken.queue)),
                    [taken.key, taken.token], bool)

    def extend(self, queue: str, taskid: str, token: str, seconds: float) -> Call[int]:
        """The new lease deadline (ms), or LEASE_LOST."""
        return Call(self.s.extend, self.s.extend.keys_for(self._q(queue)),
                    [taskid, token, ms(seconds)], int)

    # -- inspecting --------------------------------------------------------------

    def cancel(self, queue: str, taskid: str) -> Call[CancelOutcome]:
        k = self._q(queue)
        return Call(self.s.cancel, self.s.cancel.keys_for(k, result=k.result(taskid)),
                    [taskid, self._opts()],
                    lambda r: CancelOutcome(int(r)))

    def status(self, queue: str, taskid: str) -> Call[str]:
        return Call(self.s.status, self.s.status.keys_for(self._q(queue)), [taskid], text)

    def clear(self, queue: str, batch: int = 1000) -> Call[int]:
        """Remove up to ``batch`` waiting and delayed tasks (run it until it returns < batch)."""
        return Call(self.s.clear, self.s.clear.keys_for(self._q(queue)), [batch], int)
