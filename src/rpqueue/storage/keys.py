"""Every Redis key name rpqueue uses, in one place.

Layout (protocol version 1, see docs/PROTOCOL.md)::

    <prefix>queues                 ZSET  queue name -> unix time last seen
    <prefix>queues:wake            LIST  token pushed when a new queue appears
    <prefix>priorities             HASH  queue name -> priority (lower first)
    <prefix>tasks                  HASH  task name -> JSON task settings
    <prefix>paused                 SET   queues workers do not take from
    <prefix>scheduling             HASH  mode (strict|weighted|aging), age seconds
    <prefix>weights                HASH  queue name -> weight (weighted scheduling)
    <prefix>dataqueues             SET   names of data queues (rpqueue.Data)
    <prefix>workers                HASH  worker id -> JSON heartbeat (registry.py)
    <prefix>q:{<tag>}:<part>       every key of one queue (one hash slot)
    <prefix>d:{<tag>}:<part>       every key of one data queue

All keys of one queue share the hash tag ``{<tag>}``, so each Lua script
touches one Redis Cluster slot. The tag is the queue name with ``%``, ``{``
and ``}`` percent-encoded: a ``}`` inside a name would otherwise end the tag
early, and an empty tag would make Redis hash the whole key.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "rpqueue:"

# Parts of a task queue's keyspace, named for what they hold.
QUEUE_PARTS = (
    "ready",  # LIST of ids waiting to run at the default priority, FIFO
    "prio",  # ZSET id -> priority * 2**32 + sequence, for per-message priorities
    "msg",  # HASH id -> 13-digit ready time (ms) + ':' + message JSON (opaque to scripts)
    "delayed",  # ZSET id -> due time (ms)
    "leases",  # ZSET id -> lease deadline (ms) for taken tasks
    "meta",  # HASH id -> "vis_ms total left use_dead[ priority[ unique_key]]" (mutable state)
    "wake",  # LIST of at most one token: wakes blocked idle workers
    "dead",  # ZSET id -> time it died (ms)
    "deadmsg",  # HASH id -> dead-letter record JSON
    "stats",  # HASH counters: enqueued, done, failed, dead ...
    "periodic",  # ZSET periodic task name -> next planned run (ms)
    "periodic_def",  # HASH periodic task name -> schedule description
    "conf",  # HASH queue settings: max_len, overflow
    "uniq",  # HASH unique key -> "<until_ms> <id>" of the task holding it
    "events",  # STREAM of task state changes, bounded (opt-in, docs/TASK_STATE.md)
)
# Per task, beside result:<id> and abort:<id>, written by the scripts from
# the queue's base (same hash tag): state:<id> STRING "<state> <attempt>
# <total> <time_ms>[\n<error JSON>]" with an expiry; progress:<id> STRING JSON.


def _tag(queue: str) -> str:
    return queue.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def normalize_queue(queue: str | bytes) -> str:
    """Accept a queue name as str or bytes; refuse anything else loudly."""
    if isinstance(queue, bytes):
        try:
            queue = queue.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"queue name {queue!r} is not valid UTF-8") from exc
    if not isinstance(queue, str):
        raise ValueError(f"queue name must be str or bytes, not {type(queue).__name__}")
    if not queue:
        raise ValueError("queue name must not be empty")
    return queue


@dataclass(frozen=True)
class QueueKeys:
    """The key names of one task queue."""

    queue: str
    base: str

    @property
    def ready(self) -> str:
        return self.base + "ready"

    @property
    def prio(self) -> str:
        return self.base + "prio"

    @property
    def conf(self) -> str:
        return self.base + "conf"

    @property
    def uniq(self) -> str:
        return self.base + "uniq"

    @property
    def msg(self) -> str:
        return self.base + "msg"

    @property
    def delayed(self) -> str:
        return self.base + "delayed"

    @property
    def leases(self) -> str:
        return self.base + "leases"

    @property
    def meta(self) -> str:
        return self.base + "meta"

    @property
    def wake(self) -> str:
        return self.base + "wake"

    @property
    def dead(self) -> str:
        return self.base + "dead"

    @property
    def deadmsg(self) -> str:
        return self.base + "deadmsg"

    @property
    def stats(self) -> str:
        return self.base + "stats"

    @property
    def periodic(self) -> str:
        return self.base + "periodic"

    @property
    def periodic_def(self) -> str:
        return self.base + "periodic_def"

    @property
    def events(self) -> str:
        return self.base + "events"

    def result(self, taskid: str) -> str:
        return f"{self.base}result:{taskid}"

    def state(self, taskid: str) -> str:
        return f"{self.base}state:{taskid}"

    def progress(self, taskid: str) -> str:
        return f"{self.base}progress:{taskid}"

    def abort(self, taskid: str) -> str:
        return f"{self.base}abort:{taskid}"


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        if "{" in prefix or "}" in prefix:
            # A brace in the prefix would become every key's hash tag and
            # pin all queues to one cluster slot.
            raise ValueError(f"key prefix {prefix!r} must not contain '{{' or '}}'")
        self.prefix = prefix
        self.queues = prefix + "queues"
        # Pushed when a queue is first seen, so workers serving "all queues"
        # start on a new queue at once instead of at their next refresh.
        self.queues_wake = prefix + "queues:wake"
        # Bumped when a queue appears or a priority changes: busy workers
        # serving all queues re-read their order when it moves.
        self.queues_version = prefix + "queues:version"
        self.priorities = prefix + "priorities"
        # Anti-starvation (worker/scheduling.py), global so all workers agree:
        # HASH mode (strict|weighted|aging), age (seconds, aging only).
        self.scheduling = prefix + "scheduling"
        # HASH queue name -> weight in the weighted mode (1 when absent).
        self.weights = prefix + "weights"
        self.tasks = prefix + "tasks"
        self.data_queues = prefix + "dataqueues"
        self.workers = prefix + "workers"
        # SET of paused queue names: workers skip them, producers still enqueue.
        self.paused = prefix + "paused"
        self._cache: dict[str, QueueKeys] = {}
        self._data_cache: dict[str, QueueKeys] = {}

    def queue(self, queue: str) -> QueueKeys:
        keys = self._cache.get(queue)
        if keys is None:
            keys = QueueKeys(queue, f"{self.prefix}q:{{{_tag(queue)}}}:")
            self._cache[queue] = keys
        return keys

    def data(self, queue: str) -> QueueKeys:
        keys = self._data_cache.get(queue)
        if keys is None:
            keys = QueueKeys(queue, f"{self.prefix}d:{{{_tag(queue)}}}:")
            self._data_cache[queue] = keys
        return keys
