"""rpqueue: a priority task queue for Python on Redis, with JSON on the wire.

The module-level functions are the bound methods of a default app (an
``RPQueue`` named "default"); make more, fully independent ones with
``new_rpqueue(name, prefix)``. ``help(rpqueue.RPQueue)`` documents them all.
"""

from __future__ import annotations

from .app import DEADLETTER_QUEUE, DEFAULT_QUEUE, MINIMUM_DELAY, RPQueue, new_rpqueue
from .data import Data, Leased
from .errors import (
    DuplicateTask,
    EnqueueRefused,
    MessageTooLarge,
    NotDurable,
    QueueFull,
    RedisOutOfMemory,
    SoftTimeLimitExceeded,
    TaskAborted,
    TaskCancelled,
    TaskError,
    TaskFailed,
    TimeLimitExceeded,
)
from .locks import NoLock, SimpleLock
from .task import EnqueuedTask, Task
from .worker.runner import current_task

VERSION = "1.0.0.dev0"
__version__ = VERSION

_default = new_rpqueue("default")


def default_app() -> RPQueue:
    """The app the module-level functions act on."""
    return _default


# The public API of the original, and what came after, as the default app's methods.
task = _default.task
periodic_task = _default.periodic_task
cron_task = _default.cron_task
set_redis_connection_settings = _default.set_redis_connection_settings
set_redis_connection = _default.set_redis_connection
set_redis_url = _default.set_redis_url
set_key_prefix = _default.set_key_prefix
set_durable = _default.set_durable
set_priority = _default.set_priority
set_scheduling = _default.set_scheduling
get_scheduling = _default.get_scheduling
set_queue_weight = _default.set_queue_weight
queue_weights = _default.queue_weights
set_queue_limit = _default.set_queue_limit
queue_limit = _default.queue_limit
pause_queue = _default.pause_queue
resume_queue = _default.resume_queue
paused_queues = _default.paused_queues
known_queues = _default.known_queues
queue_sizes = _default.queue_sizes
clear_queue = _default.clear_queue
get_page = _default.get_page
delete_item = _default.delete_item
read_deadletter = _default.read_deadletter
result = _default.result
results = _default.results
get_task = _default.get_task
call_task = _default.call_task
known_tasks = _default.known_tasks
flush_tasks = _default.flush_tasks
execute_tasks = _default.execute_tasks

__all__ = [
    "DEADLETTER_QUEUE",
    "DEFAULT_QUEUE",
    "MINIMUM_DELAY",
    "VERSION",
    "Data",
    "DuplicateTask",
    "EnqueueRefused",
    "EnqueuedTask",
    "Leased",
    "MessageTooLarge",
    "NoLock",
    "NotDurable",
    "QueueFull",
    "RPQueue",
    "RedisOutOfMemory",
    "SimpleLock",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskAborted",
    "TaskCancelled",
    "TaskError",
    "TaskFailed",
    "TimeLimitExceeded",
    "call_task",
    "clear_queue",
    "cron_task",
    "current_task",
    "default_app",
    "delete_item",
    "execute_tasks",
    "flush_tasks",
    "get_page",
    "get_scheduling",
    "get_task",
    "known_queues",
    "known_tasks",
    "new_rpqueue",
    "pause_queue",
    "paused_queues",
    "periodic_task",
    "queue_limit",
    "queue_sizes",
    "queue_weights",
    "read_deadletter",
    "result",
    "results",
    "resume_queue",
    "set_durable",
    "set_key_prefix",
    "set_priority",
    "set_queue_limit",
    "set_queue_weight",
    "set_redis_connection",
    "set_redis_connection_settings",
    "set_redis_url",
    "set_scheduling",
    "task",
]
