"""``RPQueueBackend``: Django's Tasks framework on rpqueue.

    TASKS = {
        "default": {
            "BACKEND": "rpqueue.contrib.django.RPQueueBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"URL": "redis://localhost:6379/0"},
        }
    }

OPTIONS (all optional): ``URL`` (the Redis URL; default: rpqueue's
connection defaults, ``$RPQUEUE_URL`` or localhost), ``PREFIX`` (key prefix,
default 'rpqueue:'), ``APP`` (the name of the rpqueue app to use, default
'django'), ``RESULT_TTL`` (seconds results are kept, default 86400).
"""

from __future__ import annotations

from typing import Any

from ... import app as rpqueue_app
from ...handle import EnqueuedTask
from ...storage import reads
from ...storage.message import MalformedMessage, decode
from . import api, runner
from .records import RUNNER_NAME, result_id, split_result_id, stamp, task_result

DEFAULT_RESULT_TTL = 24 * 3600
_OPTION_NAMES = {"URL", "PREFIX", "APP", "RESULT_TTL"}
# The framework's statuses for rpqueue's.
_PENDING = {"early": "READY", "late": "READY", "waiting": "READY", "started": "RUNNING"}


class RPQueueBackend(api.BaseTaskBackend):  # type: ignore[misc]  # the framework is untyped here
    """Queues Django tasks as rpqueue calls; ``manage.py rpqueue_worker`` runs them.

    Priorities (-100..100, higher first) map to rpqueue priorities (lower
    first), ``run_after`` to a delay, and results are kept ``RESULT_TTL``
    seconds. ``enqueue`` sends the call at once, as the framework defines;
    to send it only if the surrounding transaction commits, enqueue from
    ``transaction.on_commit`` (docs/ECOSYSTEM.md).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        options = dict(self.options)
        unknown = sorted(set(options) - _OPTION_NAMES)
        if unknown:
            raise api.InvalidTask(f"unknown OPTIONS for the rpqueue task backend {alias!r}: "
                                  f"{', '.join(unknown)} (known: {', '.join(sorted(_OPTION_NAMES))})")
        ttl = options.get("RESULT_TTL", DEFAULT_RESULT_TTL)
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise api.InvalidTask(f"OPTIONS['RESULT_TTL'] of task backend {alias!r} must be "
                                  f"seconds > 0, got {ttl!r}")
        self.app = rpqueue_app.new_rpqueue(str(options.get("APP", "django")),
                                           options.get("PREFIX"))
        if options.get("URL"):
            self.app.set_redis_url(options["URL"])
        # One rpqueue task runs every Django task call; registering it here
        # makes it known wherever the backend is loaded, workers included.
        self.runner = self.app.task(name=RUNNER_NAME, save_results=ttl)(runner.run)

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """Queue one call; returns its TaskResult (status READY)."""
        from django.utils import timezone

        self.validate_task(task)
        now = timezone.now()
        args, kwargs = list(args), dict(kwargs)
        meta = {"backend": self.alias, "queue_name": task.queue_name, "priority": task.priority,
                "run_after": stamp(task.run_after), "enqueued_at": stamp(now),
                "takes_context": task.takes_context}
        if getattr(task, "metadata", None):
            meta["metadata"] = task.metadata
        delay = None
        if task.run_after is not None:
            delay = max(0.0, (task.run_after - now).total_seconds())
        handle = self.runner.execute(task.module_path, args, kwargs, meta, _queue=task.queue_name,
                                     priority=-task.priority, delay=delay)
        result = task_result(task, result_id(handle.taskid, handle.queue),
                             api.TaskResultStatus.READY, args, kwargs, meta)
        api.task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        """The TaskResult of a call, read from Redis; ResultDoesNotExist when
        the id is unknown or its result has expired."""
        from .records import django_task

        taskid, queue = split_result_id(result_id)
        handle = EnqueuedTask(self.app, RUNNER_NAME, queue, taskid, ())
        for _ in range(3):
            status = handle.status
            if status == "done":
                record = handle.result
                if not isinstance(record, dict) or "status" not in record:
                    break
                return task_result(django_task(record["path"], record["meta"]), result_id,
                                   api.TaskResultStatus[record["status"]], record["args"],
                                   record["kwargs"], record["meta"], record)
            queued = self._queued(queue, taskid)
            if queued is not None:
                path, args, kwargs, meta = queued
                return task_result(django_task(path, meta), result_id,
                                   api.TaskResultStatus[_PENDING.get(status, "READY")],
                                   args, kwargs, meta)
            # It finished between the two reads: look again.
        raise api.ResultDoesNotExist(f"no rpqueue task result {result_id!r} (unknown, or "
                                     "its result expired)")

    def _queued(self, queue: str, taskid: str) -> tuple[str, list[Any], dict[str, Any],
                                                        dict[str, Any]] | None:
        """The call as queued, while its message is in Redis."""
        (raw,), _ = reads.messages(self.app.ctx.store, queue, [taskid])
        if raw is None:
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        try:
            # Stored as "<ready time ms>:<message>" (storage/keys.py).
            message = decode(text.partition(":")[2])
        except MalformedMessage:
            return None
        if message.name != RUNNER_NAME or len(message.args) != 4:
            return None
        path, args, kwargs, meta = message.args
        return path, args, kwargs, meta
