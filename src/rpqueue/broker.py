"""Storage operations on one Redis: each operation is one script call.

The task and worker layers speak to Redis only through this class, so the
key layout and the scripts stay behind one door. Every operation is built
as a ``Call`` (script, keys, arguments, how to read the reply) and run by
``run`` on the sync client or ``arun`` on the asyncio one, so both share
one implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from redis.exceptions import ResponseError

from .errors import translate
from .keys import QueueKeys
from .scripts import LuaScript, scripts

if TYPE_CHECKING:
    from .app import RPQueue

# How many due delayed tasks / expired leases one take handles at most.
MAINTENANCE_BATCH = 100

T = TypeVar("T")


def text(value: Any) -> str:
    """Redis replies as str, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


# Per-message priorities are whole numbers in this range: scripts score a
# task priority * 2**32 + sequence, exact in a double only below 2**53.
PRIORITY_LIMIT = 1_000_000


def task_meta(vis_timeout: float, attempts: int, use_dead: bool, priority: int = 0,
              unique_key: str = "") -> str:
    """The mutable state a task needs in Redis, or '' for a plain 0/1 task
    at the default priority (see parse_meta in scripts/lib/common.lua)."""
    if vis_timeout <= 0 and not use_dead and not priority and not unique_key:
        return ""
    out = f"{ms(vis_timeout)} {attempts} {attempts} {1 if use_dead else 0}"
    if priority or unique_key:
        out += f" {priority}"
        if unique_key:
            out += f" {unique_key}"
    return out


def unstamp(raw: Any) -> Any:
    """A stored message without its ready-time prefix (scripts/lib/common.lua stamp)."""
    if raw is None:
        return None
    head = raw[:14]
    colon = b":" if isinstance(raw, bytes) else ":"
    if len(head) == 14 and head[13:] == colon and head[:13].isdigit():
        return raw[14:]
    return raw


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
    (QUEUED, REPLACED, RUNNING, DUPLICATE, FULL) and its detail: the id of
    the live task holding the unique key (DUPLICATE) or the queue's max_len (FULL)."""

    status: int
    detail: str | int | None = None


QUEUED, REPLACED, RUNNING, DUPLICATE, FULL = 1, 2, 0, 3, 4


def _enqueued(reply: list[Any]) -> Enqueued:
    status = int(reply[0])
    detail = reply[2] if len(reply) > 2 and reply[2] is not None else None
    if status == DUPLICATE:
        return Enqueued(status, text(detail))
    return Enqueued(status, int(detail) if detail is not None else None)


def _many(reply: list[Any]) -> list[Enqueued]:
    # A duplicate comes back as the holder's id, every other outcome as its status.
    return [Enqueued(r) if isinstance(r, int) else Enqueued(DUPLICATE, text(r)) for r in reply]


def call_taskids(call: Call[Any]) -> list[str]:
    """The task ids an enqueue call queues (its argument layout is built in Broker)."""
    if call.script is scripts().enqueue_many:
        # After five head arguments: id, message pairs, or triples with '*'.
        step = 3 if call.args[4] == "*" else 2
        return [str(i) for i in call.args[5::step]]
    return [str(call.args[0])]


class Broker:
    def __init__(self, app: RPQueue) -> None:
        self.app = app
        self.s = scripts()
        self._ekeys: dict[str, list[str]] = {}

    def run(self, call: Call[T], via: Any = None) -> T:
        """Run a call on the client, or on ``via``: a worker thread's own connection."""
        try:
            if via is not None:
                reply = via.call(call.script, call.keys, call.args)
            else:
                reply = call.script(self.app.client, call.keys, call.args)
        except ResponseError as exc:
            raise translate(exc, call.what or call.script.name) from exc
        return call.parse(reply)

    async def arun(self, call: Call[T]) -> T:
        try:
            reply = await call.script.acall(self.app.aclient(), call.keys, call.args)
        except ResponseError as exc:
            raise translate(exc, call.what or call.script.name) from exc
        return call.parse(reply)

    def _q(self, queue: str) -> QueueKeys:
        return self.app.keys.queue(queue)

    # -- producing -------------------------------------------------------------

    def _enqueue_keys(self, k: QueueKeys) -> list[str]:
        keys = self._ekeys.get(k.queue)
        if keys is None or keys[0] != k.ready:
            keys = [k.ready, k.msg, k.delayed, k.meta, k.wake, k.stats, k.leases, k.prio, k.conf,
                    k.uniq, k.dead, k.deadmsg]
            self._ekeys[k.queue] = keys
        return keys

    def enqueue_call(self, queue: str, taskid: str, message: str, delay: float,
                     meta: str, unique_for: float = 0, fresh: bool = False) -> Call[Enqueued]:
        """``fresh``: the id was just made by new_id() (cannot be pending or running)."""
        return Call(self.s.enqueue, self._enqueue_keys(self._q(queue)),
                    [taskid, message, ms(delay), meta, self.app.max_message_bytes,
                     ms(unique_for), 1 if fresh else 0],
                    _enqueued, lambda: f"task {taskid} for queue {queue!r}")

    def enqueue(self, queue: str, taskid: str, message: str, delay: float, meta: str,
                unique_for: float = 0) -> Enqueued:
        return self.run(self.enqueue_call(queue, taskid, message, delay, meta, unique_for))

    def enqueue_many_calls(self, queue: str, items: list[tuple[str, str, str]], delay: float,
                           unique_for: float = 0, fresh: bool = False,
                           chunk: int = 2000) -> list[Call[list[Enqueued]]]:
        """One script call per ``chunk`` (id, message, meta) items."""
        keys = self._enqueue_keys(self._q(queue))
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
            head = [ms(delay), self.app.max_message_bytes, ms(unique_for), 1 if fresh else 0,
                    shared]
            calls.append(Call(self.s.enqueue_many, keys, head + flat, _many,
                              f"batch of {len(part)} tasks for queue {queue!r}"))
        return calls

    def enqueue_many(self, queue: str, items: list[tuple[str, str, str]], delay: float,
                     unique_for: float = 0) -> list[Enqueued]:
        out: list[Enqueued] = []
        for call in self.enqueue_many_calls(queue, items, delay, unique_for):
            replies: list[Enqueued] = self.run(call)
            out += replies
        return out

    def peek_call(self, queue: str) -> Call[tuple[int, int]]:
        """(Redis now, time since which the queue's next task has waited or -1), in ms."""
        k = self._q(queue)
        return Call(self.s.peek, [k.ready, k.prio, k.msg, k.delayed, k.leases], [],
                    lambda r: (int(r[0]), int(r[1])))

    # -- consuming -------------------------------------------------------------

    def take_call(self, queue: str, running_lease: float) -> Call[TakeReply]:
        k = self._q(queue)
        return Call(self.s.take,
                    [k.ready, k.msg, k.delayed, k.leases, k.meta, k.wake, k.dead, k.deadmsg,
                     k.stats, k.prio, k.uniq],
                    [ms(running_lease), MAINTENANCE_BATCH], lambda r: _take_reply(queue, r))

    def take(self, queue: str, running_lease: float, via: Any = None) -> TakeReply:
        return self.run(self.take_call(queue, running_lease), via)

    def finish_take(self, queue: str, taken: Taken, result: str, keep: float,
                    running_lease: float, via: Any = None) -> tuple[bool, TakeReply]:
        """done() for a task of ``queue`` and take() from it, in one round trip."""
        k = self._q(queue)
        return self.run(Call(
            self.s.finish_take,
            [k.ready, k.msg, k.delayed, k.leases, k.meta, k.wake, k.dead, k.deadmsg, k.stats,
             k.prio, k.uniq, k.result(taken.id)],
            [ms(running_lease), MAINTENANCE_BATCH, taken.key, taken.token, result, ms(keep)],
            lambda r: (bool(r[5]), _take_reply(queue, r))), via)

    def done_call(self, queue: str, taskid: bytes | str, token: str, result: str,
                  keep: float) -> Call[bool]:
        k = self._q(queue)
        return Call(self.s.done,
                    [k.leases, k.msg, k.meta, k.stats, k.result(text(taskid)), k.uniq],
                    [taskid, token, result, ms(keep)], bool)

    def done(self, queue: str, taskid: bytes | str, token: str, result: str, keep: float) -> bool:
        return self.run(self.done_call(queue, taskid, token, result, keep))

    def fail_call(self, queue: str, taskid: bytes | str, token: str, error: str, force_dead: bool,
                  reason: str, retry_delay: float = 0, final: bool = False) -> Call[int]:
        """``force_dead``: dead-letter whatever the settings; ``final``: no retry."""
        k = self._q(queue)
        mode = 1 if force_dead else 2 if final else 0
        return Call(self.s.fail,
                    [k.ready, k.msg, k.leases, k.meta, k.dead, k.deadmsg, k.stats, k.wake,
                     k.delayed, k.prio, k.uniq],
                    [taskid, token, error, mode, reason, ms(retry_delay)], int)

    def fail(self, queue: str, taskid: bytes | str, token: str, error: str, force_dead: bool,
             reason: str, retry_delay: float = 0, final: bool = False) -> int:
        return self.run(self.fail_call(queue, taskid, token, error, force_dead, reason,
                                       retry_delay, final))

    def release(self, taken: Taken) -> bool:
        """Give back a taken task that will not run here (the worker is stopping)."""
        k = self._q(taken.queue)
        return self.run(Call(self.s.release, [k.leases, k.ready, k.meta, k.wake, k.prio],
                             [taken.key, taken.token], bool))

    def extend(self, queue: str, taskid: str, token: str, seconds: float) -> int:
        k = self._q(queue)
        return self.run(Call(self.s.extend, [k.leases, k.meta], [taskid, token, ms(seconds)],
                             int))

    # -- inspecting --------------------------------------------------------------

    def cancel_call(self, queue: str, taskid: str) -> Call[int]:
        k = self._q(queue)
        return Call(self.s.cancel, [k.ready, k.msg, k.delayed, k.leases, k.meta, k.result(taskid),
                                    k.prio, k.uniq], [taskid], int)

    def cancel(self, queue: str, taskid: str) -> int:
        return self.run(self.cancel_call(queue, taskid))

    def status_call(self, queue: str, taskid: str) -> Call[str]:
        k = self._q(queue)
        return Call(self.s.status, [k.delayed, k.leases, k.msg], [taskid], text)

    def status(self, queue: str, taskid: str) -> str:
        return self.run(self.status_call(queue, taskid))

    def clear(self, queue: str, batch: int = 1000) -> int:
        """Remove waiting and delayed tasks, ``batch`` per script call."""
        k = self._q(queue)
        call = Call(self.s.clear, [k.ready, k.delayed, k.msg, k.meta, k.leases, k.prio, k.uniq],
                    [batch], int)
        removed = 0
        while True:
            n = self.run(call)
            removed += n
            if n < batch:
                return removed
