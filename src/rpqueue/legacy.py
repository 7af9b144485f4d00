"""Move tasks queued by rpqueue 0.33 into this layout (``rpqueue migrate-legacy``).

What rpqueue 0.33 keeps in Redis, under its optional prefix ``L`` (bytes,
default empty), for each queue ``q`` (its name as given, bytes)::

    L queues:all      SET   queue names a producer has used
    L queues:wall     ZSET  queue name -> priority (lower first)
    L messages:q      HASH  task id -> JSON [id, name, args, kwargs, due]
    L nqueue:q        LIST  ids waiting to run (producers push here)
    L pqueue:q        LIST  ids waiting to run, taken first (due delayed
                            tasks and retries are moved here)
    L queue:q         ZSET  delayed ids -> due time (Unix seconds, float)
    L invisible:q     ZSET  ids taken by a worker, for tasks with a
                            visibility timeout -> deadline (Unix seconds)
    L rqueue:q        ZSET  periodic task name -> its next run
    L nqueue:DEADLETTER_QUEUE  LIST  dead tasks (whole messages, no queue)

The message's kwargs carry the 0.33 internals ``_attempts`` (attempts left,
also passed to the task), ``_vis_timeout`` and ``_use_dead``. A task taken
by a 0.33 worker without a visibility timeout is no longer in Redis at all.
Periodic tasks use their name as their id.

Each call of the migration script moves a batch of tasks of one legacy key
atomically: for every task it checks that 0.33 still holds it unchanged,
queues it with our enqueue code (``lib/enqueue.lua``, keeping its id) and
removes it from the 0.33 keys, all in one step. A crash, a lost connection
or a 0.33 worker taking tasks at the same time can neither lose a task nor
queue it twice, and running the migration again only moves what is left.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .storage import Call, command
from .storage.executor import Step, raise_first
from .storage.keys import normalize_queue
from .storage.message import encode_call
from .storage.reads import pairs
from .storage.scripts import scripts
from .storage.wire import ms, text

if TYPE_CHECKING:
    from .context import Context

LEGACY_DEADLETTER = b"DEADLETTER_QUEUE"

# Parts of a 0.33 key name, after its prefix.
KNOWN, PRIORITY = b"queues:all", b"queues:wall"
MESSAGES, NOW, PNOW = b"messages:", b"nqueue:", b"pqueue:"
DELAYED, INVISIBLE, REENTRY = b"queue:", b"invisible:", b"rqueue:"

# Outcomes of one task in the migration script.
MOVED, REPLACED, DROPPED, CHANGED, BUSY = 1, 2, 3, -1, -2


def _run(app: Context, steps: list[Step]) -> list[Any]:
    """Plain commands in one round trip, through the store: the first error raised."""
    return raise_first(app.store.pipeline(steps))


@dataclass
class QueueReport:
    """What was (or, in a dry run, would be) done with one 0.33 queue."""

    queue: str
    waiting: int = 0  # waiting tasks moved
    delayed: int = 0  # delayed tasks moved, due time kept
    retried: int = 0  # taken by a 0.33 worker, visibility timeout passed, attempts left: moved
    dropped: int = 0  # ids whose message was gone (0.33 skips those too): removed
    # Left in place, by id: why.
    left: dict[str, str] = field(default_factory=dict)

    @property
    def moved(self) -> int:
        return self.waiting + self.delayed + self.retried

    def left_count(self, reason_start: str = "") -> int:
        return sum(1 for r in self.left.values() if r.startswith(reason_start))


@dataclass
class MigrationReport:
    legacy_prefix: bytes
    dry_run: bool
    queues: list[QueueReport] = field(default_factory=list)
    # Queue priorities copied (would be copied) from 0.33 where none is set here.
    priorities: dict[str, float] = field(default_factory=dict)
    dead_letters: int = 0  # 0.33 dead-lettered tasks: left in place
    problems: list[str] = field(default_factory=list)  # whole queues or keys left alone

    @property
    def moved(self) -> int:
        return sum(q.moved for q in self.queues)

    @property
    def left(self) -> int:
        return sum(len(q.left) for q in self.queues)


# Reasons a task stays in the 0.33 keys (each starts with a stable word).
RUNNING = "running: taken by a 0.33 worker, visibility timeout not yet passed"
PERIODIC = "periodic: scheduled by 0.33 workers; ours schedule periodic tasks themselves"
EXPIRED = ("expired: taken by a 0.33 worker, visibility timeout passed, no attempts left "
           "(0.33 would drop or dead-letter it)")
BUSY_HERE = "busy: a task with this id is running here; run the migration again later"


@dataclass
class _Item:
    rid: bytes  # the id as stored
    action: str  # 'move', 'drop' or a reason to leave it
    category: str = ""  # waiting / delayed / retried, for moves
    sha: str = ""
    message: str = ""
    due_ms: int = 0
    meta: str = ""


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _prefix(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    try:
        return value.encode("latin-1")  # as 0.33's set_key_prefix() encoded a str
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


class _Migration:
    def __init__(self, app: Context, legacy_prefix: bytes, dry_run: bool, batch: int,
                 progress: Callable[[int], None] | None) -> None:
        self.app = app
        self.p = legacy_prefix
        self.dry_run = dry_run
        self.batch = max(1, batch)
        self.progress = progress
        self.done = 0
        self.registry = app.read_registry()

    def key(self, part: bytes, queue: bytes = b"") -> bytes:
        return self.p + part + queue

    # -- reading one 0.33 task ---------------------------------------------------

    def classify(self, queue: str, rid: bytes, raw: Any, source: str, score: float,
                 now_ms: int) -> _Item:
        if source == "expired" and score * 1000 >= now_ms:
            return _Item(rid, RUNNING)
        if raw is None:
            return _Item(rid, "drop")
        raw_bytes = _bytes(raw)
        try:
            taskid = rid.decode("utf-8")
        except UnicodeDecodeError:
            return _Item(rid, "bad: task id is not UTF-8")
        try:
            body = json.loads(raw_bytes.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return _Item(rid, f"bad: message is not JSON ({exc})")
        if (not isinstance(body, list) or len(body) not in (4, 5) or not isinstance(body[1], str)
                or not body[1] or not isinstance(body[2], list) or not isinstance(body[3], dict)):
            return _Item(rid, "bad: message is not [id, name, args, kwargs, due]")
        name, args, kwargs = body[1], body[2], dict(body[3])
        if name == taskid:
            return _Item(rid, PERIODIC)
        legacy_vis = _number(kwargs.pop("_vis_timeout", 0))
        legacy_dead = bool(kwargs.pop("_use_dead", False))
        left = kwargs.get("_attempts")
        if isinstance(left, bool) or not isinstance(left, int) or left < 1:
            left = None
        if source == "expired" and left is None:
            return _Item(rid, EXPIRED)
        # The settings our workers published win: they are what will run it.
        settings = self.registry.get(name, {})
        vis = _number(settings.get("vis_timeout", legacy_vis))
        if vis is None or vis < 0:
            return _Item(rid, "bad: _vis_timeout is not a number of seconds")
        use_dead = bool(settings.get("use_dead", legacy_dead))
        configured = settings.get("attempts")
        if isinstance(configured, bool) or not isinstance(configured, int) or configured < 1:
            configured = None
        if left is None:
            left = configured or 1
            if left > 1:
                kwargs["_attempts"] = left  # as execute() adds it
        total = max(configured or left, left)
        meta = ""
        if vis > 0 or use_dead:
            meta = f"{ms(vis)} {total} {left} {1 if use_dead else 0}"
        try:
            message = encode_call(taskid, name, queue, tuple(args), kwargs)
        except TypeError as exc:
            return _Item(rid, f"bad: {exc}")
        limit = self.app.store.max_message_bytes
        size = len(message.encode("utf-8"))
        if limit and size > limit:
            return _Item(rid, f"bad: {size} bytes here, over the limit of {limit} "
                              "(app.max_message_bytes)")
        category = {"list": "waiting", "zset": "delayed", "expired": "retried"}[source]
        due = round(score * 1000) if source == "zset" else 0
        return _Item(rid, "move", category, hashlib.sha1(raw_bytes).hexdigest(), message,
                     max(0, due), meta)

    # -- one queue --------------------------------------------------------------

    def queue(self, lq: bytes, report: MigrationReport) -> QueueReport | None:
        try:
            queue = normalize_queue(lq)
        except ValueError as exc:
            report.problems.append(f"queue {lq!r} left alone: {exc}")
            return None
        sources = [(self.key(PNOW, lq), "list"), (self.key(NOW, lq), "list"),
                   (self.key(DELAYED, lq), "zset"), (self.key(INVISIBLE, lq), "expired")]
        expected = {"list": b"list", "zset": b"zset", "expired": b"zset"}
        types = [_bytes(t) for t in _run(self.app, [
            command("TYPE", key) for key in [self.key(MESSAGES, lq), *(k for k, _ in sources)]])]
        if types[0] not in (b"hash", b"none"):
            report.problems.append(f"queue {queue!r} left alone: {self.key(MESSAGES, lq)!r} "
                                   f"is a {types[0].decode()}, not a hash")
            return None
        usable = []
        for (key, kind), kind_found in zip(sources, types[1:]):
            if kind_found == b"none":
                continue
            if kind_found != expected[kind]:
                report.problems.append(f"{key!r} left alone: a {kind_found.decode()}, not a "
                                       f"{expected[kind].decode()}")
                continue
            usable.append((key, kind))
        out = QueueReport(queue)
        if not usable:
            return out
        if not self.dry_run:
            self.app.store.note_queue(queue)
        # Passes until one moves nothing: a 0.33 worker or producer still
        # running can shift the keys under a pass; the next one catches up.
        for _ in range(1 if self.dry_run else 20):
            out.left.clear()
            changed = False
            for key, kind in usable:
                changed |= self.source(queue, lq, key, kind, out)
            if not changed:
                break
        else:
            report.problems.append(f"queue {queue!r}: 0.33 keys kept changing; stop its "
                                   "workers and producers, then run the migration again")
        return out

    def source(self, queue: str, lq: bytes, key: bytes, kind: str, out: QueueReport) -> bool:
        """Move what one 0.33 key holds; True if anything moved or changed meanwhile."""
        acted = False
        offset = 0
        while True:
            last = offset + self.batch - 1
            read = (command("LRANGE", key, offset, last, parse=lambda r: [(m, 0.0) for m in r])
                    if kind == "list" else
                    command("ZRANGE", key, offset, last, "WITHSCORES", parse=pairs))
            found, (secs, micros) = _run(self.app, [read, command("TIME")])
            if not found:
                return acted
            rids, scores = [_bytes(r) for r, _ in found], [s for _, s in found]
            now_ms = int(secs) * 1000 + int(micros) // 1000
            raws = _run(self.app, [command("HMGET", self.key(MESSAGES, lq), *rids)])[0]
            items = [self.classify(queue, rid, raw, kind, score, now_ms)
                     for rid, raw, score in zip(rids, raws, scores)]
            todo: list[_Item] = []
            for item in items:
                if item.action in ("move", "drop"):
                    todo.append(item)
                else:
                    out.left[text(item.rid)] = item.action
            if self.dry_run:
                for item in todo:
                    self.count(out, item, MOVED if item.action == "move" else DROPPED)
                offset += len(rids)
                continue
            statuses = self.run(queue, lq, key, kind, todo) if todo else []
            for item, status in zip(todo, statuses):
                self.count(out, item, status)
            if self.progress is not None:
                self.progress(self.done)
            if CHANGED in statuses:
                # Something else changed this key since it was read: read it again.
                return True
            acted = acted or any(s in (MOVED, REPLACED, DROPPED) for s in statuses)
            # What stays in the key stays ahead of the next unread entry.
            offset += len(items) - len(todo) + statuses.count(BUSY)

    def count(self, out: QueueReport, item: _Item, status: int) -> None:
        if status in (MOVED, REPLACED):
            if item.category == "waiting":
                out.waiting += 1
            elif item.category == "delayed":
                out.delayed += 1
            else:
                out.retried += 1
            self.done += 1
        elif status == DROPPED:
            out.dropped += 1
        elif status == BUSY:
            out.left[text(item.rid)] = BUSY_HERE

    def run(self, queue: str, lq: bytes, key: bytes, kind: str, items: list[_Item]) -> list[int]:
        script = scripts().migrate_legacy
        # 0.33's keys are bytes (its prefix need not be UTF-8): sent as they are.
        legacy: dict[str, Any] = {
            "legacy_messages": self.key(MESSAGES, lq), "legacy_source": key,
            "legacy_delayed": self.key(DELAYED, lq), "legacy_invisible": self.key(INVISIBLE, lq)}
        keys = script.keys_for(self.app.store.keys.queue(queue), **legacy)
        args: list[Any] = [kind, self.app.store.max_message_bytes]
        for item in items:
            if item.action == "drop":
                args += [item.rid, "", "", 0, ""]
            else:
                args += [item.rid, item.sha, item.message, item.due_ms, item.meta]
        # The executor translates a refused write (out of memory...) into our errors.
        return self.app.store.run(Call(script, keys, args, lambda r: [int(s) for s in r],
                                       f"a batch of tasks for queue {queue!r}"))


def legacy_queues(app: Context, legacy_prefix: str | bytes | None = None) -> list[bytes]:
    """The queue names rpqueue 0.33 knows under this prefix (as bytes)."""
    p = _prefix(legacy_prefix)
    known, ranked = _run(app, [command("SMEMBERS", p + KNOWN),
                               command("ZRANGE", p + PRIORITY, 0, -1)])
    names = {_bytes(q) for q in [*known, *ranked]}
    names.discard(LEGACY_DEADLETTER)
    return sorted(names)


def migrate_legacy(
    app: Context,
    legacy_prefix: str | bytes | None = None,
    dry_run: bool = False,
    queues: Iterable[str | bytes] | None = None,
    batch: int = 200,
    progress: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Move every task rpqueue 0.33 queued (under ``legacy_prefix``) into ``app``'s queues.

    Waiting and delayed tasks move with their id, name, arguments, queue and
    due time; tasks a 0.33 worker took whose visibility timeout passed move
    as waiting retries if they have attempts left. Periodic entries, tasks
    still running under 0.33, dead letters and anything unreadable stay
    where they are and are reported. ``dry_run`` only counts. ``queues``
    adds queue names to those 0.33 lists in ``queues:all``/``queues:wall``.
    ``progress`` is called with the number of tasks moved so far.
    """
    if app.store.cluster:
        raise ValueError("migrate-legacy needs the single Redis server that rpqueue 0.33 used "
                         "(0.33 never ran on Redis Cluster)")
    p = _prefix(legacy_prefix)
    report = MigrationReport(p, dry_run)
    run = _Migration(app, p, dry_run, batch, progress)
    names = set(legacy_queues(app, p))
    names |= {q if isinstance(q, bytes) else q.encode("utf-8") for q in queues or ()}
    if LEGACY_DEADLETTER in names:
        # Its list holds whole messages, not ids: never read it as a queue.
        names.discard(LEGACY_DEADLETTER)
        report.problems.append("DEADLETTER_QUEUE holds 0.33's dead letters, not a queue: "
                               "left alone")
    for lq in sorted(names):
        done = run.queue(lq, report)
        if done is not None:
            report.queues.append(done)
    ours = app.store.priorities()
    ranked = _run(app, [command("ZRANGE", p + PRIORITY, 0, -1, "WITHSCORES", parse=pairs)])[0]
    for lq, score in ranked:
        try:
            name = normalize_queue(_bytes(lq))
        except ValueError:
            continue
        if name not in ours and _bytes(lq) != LEGACY_DEADLETTER:
            report.priorities[name] = float(score)
            if not dry_run:
                _run(app, [command("HSETNX", app.store.keys.priorities, name, float(score))])
    dead = p + NOW + LEGACY_DEADLETTER
    if _bytes(_run(app, [command("TYPE", dead)])[0]) == b"list":
        report.dead_letters = int(_run(app, [command("LLEN", dead)])[0])
    return report
