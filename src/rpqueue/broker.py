"""Storage operations on one Redis: each public method is one script call.

The task and worker layers speak to Redis only through this class, so the
key layout and the scripts stay behind one door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from .errors import translate
from .keys import QueueKeys
from .scripts import scripts

if TYPE_CHECKING:
    from .app import RPQueue

# How many due delayed tasks / expired leases one take handles at most.
MAINTENANCE_BATCH = 100


def text(value: Any) -> str:
    """Redis replies as str, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def task_meta(vis_timeout: float, attempts: int, use_dead: bool) -> str:
    """The mutable state a task needs in Redis, or '' for a plain 0/1 task."""
    if vis_timeout <= 0 and not use_dead:
        return ""
    vis_ms = max(0, round(vis_timeout * 1000))
    return f"{vis_ms} {attempts} {attempts} {1 if use_dead else 0}"


@dataclass
class Taken:
    """A task a worker holds a lease on."""

    queue: str
    id: str
    raw: bytes | str
    token: str


@dataclass
class TakeReply:
    taken: Taken | None
    now_ms: int
    next_ms: int  # earliest pending due time or lease deadline, -1 if none


class Broker:
    def __init__(self, app: RPQueue) -> None:
        self.app = app
        self.s = scripts()

    def _q(self, queue: str) -> QueueKeys:
        return self.app.keys.queue(queue)

    def enqueue(self, queue: str, taskid: str, message: str, delay: float, meta: str) -> int:
        k = self._q(queue)
        try:
            reply = self.s.enqueue(
                self.app.client,
                [k.ready, k.msg, k.delayed, k.meta, k.wake, k.stats, k.leases],
                [taskid, message, max(0, round(delay * 1000)), meta, self.app.max_message_bytes],
            )
        except ResponseError as exc:
            raise translate(exc, f"task {taskid} for queue {queue!r}") from exc
        return int(reply[0])

    def enqueue_many(
        self, queue: str, items: list[tuple[str, str]], delay: float, meta: str, chunk: int = 500
    ) -> list[int]:
        """Queue many messages, one script call per ``chunk`` of them."""
        k = self._q(queue)
        keys = [k.ready, k.msg, k.delayed, k.meta, k.wake, k.stats, k.leases]
        head = [max(0, round(delay * 1000)), meta, self.app.max_message_bytes]
        out: list[int] = []
        for start in range(0, len(items), chunk):
            flat: list[str] = []
            for taskid, message in items[start:start + chunk]:
                flat += (taskid, message)
            try:
                replies = self.s.enqueue_many(self.app.client, keys, head + flat)
            except ResponseError as exc:
                raise translate(exc, f"batch of {len(flat) // 2} tasks for queue {queue!r}") from exc
            out += [int(s) for s in replies]
        return out

    def take(self, queue: str, running_lease: float) -> TakeReply:
        k = self._q(queue)
        taken, raw, token, now, next_ms = self.s.take(
            self.app.client,
            [k.ready, k.msg, k.delayed, k.leases, k.meta, k.wake, k.dead, k.deadmsg, k.stats],
            [round(running_lease * 1000), MAINTENANCE_BATCH],
        )
        got = Taken(queue, text(taken), raw, text(token)) if taken else None
        return TakeReply(got, int(now), int(next_ms))

    def finish_take(self, queue: str, taken: Taken, result: str, keep: float,
                    running_lease: float) -> tuple[bool, TakeReply]:
        """done() for a task of ``queue`` and take() from it, in one round trip."""
        k = self._q(queue)
        reply = self.s.finish_take(
            self.app.client,
            [k.ready, k.msg, k.delayed, k.leases, k.meta, k.wake, k.dead, k.deadmsg, k.stats,
             k.result(taken.id)],
            [round(running_lease * 1000), MAINTENANCE_BATCH, taken.id, taken.token, result,
             max(0, round(keep * 1000))],
        )
        got, raw, token, now, next_ms, finished = reply
        nxt = Taken(queue, text(got), raw, text(token)) if got else None
        return bool(finished), TakeReply(nxt, int(now), int(next_ms))

    def done(self, queue: str, taskid: str, token: str, result: str, keep: float) -> bool:
        k = self._q(queue)
        reply = self.s.done(
            self.app.client,
            [k.leases, k.msg, k.meta, k.stats, k.result(taskid)],
            [taskid, token, result, max(0, round(keep * 1000))],
        )
        return bool(reply)

    def fail(
        self, queue: str, taskid: str, token: str, error: str, force_dead: bool, reason: str
    ) -> int:
        k = self._q(queue)
        return int(
            self.s.fail(
                self.app.client,
                [k.ready, k.msg, k.leases, k.meta, k.dead, k.deadmsg, k.stats, k.wake],
                [taskid, token, error, 1 if force_dead else 0, reason],
            )
        )

    def cancel(self, queue: str, taskid: str) -> int:
        k = self._q(queue)
        return int(
            self.s.cancel(
                self.app.client,
                [k.ready, k.msg, k.delayed, k.leases, k.meta, k.result(taskid)],
                [taskid],
            )
        )

    def status(self, queue: str, taskid: str) -> str:
        k = self._q(queue)
        return text(self.s.status(self.app.client, [k.delayed, k.leases, k.msg], [taskid]))

    def extend(self, queue: str, taskid: str, token: str, seconds: float) -> int:
        k = self._q(queue)
        return int(
            self.s.extend(
                self.app.client, [k.leases, k.meta], [taskid, token, round(seconds * 1000)]
            )
        )

    def clear(self, queue: str, batch: int = 1000) -> int:
        k = self._q(queue)
        removed = 0
        while True:
            n = int(self.s.clear(self.app.client, [k.ready, k.delayed, k.msg, k.meta, k.leases],
                                 [batch]))
            removed += n
            if n < batch:
                return removed
