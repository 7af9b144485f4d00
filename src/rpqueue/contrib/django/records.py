"""What the backend keeps per Django task call, and how a TaskResult is
rebuilt from it.

A call is one rpqueue task, ``RUNNER_NAME``, whose arguments are the Django
task's module path, its args and kwargs, and ``meta`` (backend alias,
queue, priority, run_after, enqueued_at, takes_context). The runner saves
its outcome as the rpqueue result, a JSON record: the same fields plus
status, return value, errors, start and end times and the worker's id.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback
from datetime import datetime
from typing import Any

from . import api

RUNNER_NAME = "rpqueue.contrib.django.run"
# A result id is "<rpqueue task id>:<queue>": rpqueue ids never hold ':',
# and reading a task's state needs its queue.
SEPARATOR = ":"


def result_id(taskid: str, queue: str) -> str:
    return f"{taskid}{SEPARATOR}{queue}"


def split_result_id(value: str) -> tuple[str, str]:
    """(rpqueue task id, queue) of a result id; ResultDoesNotExist if it is not one."""
    taskid, sep, queue = value.partition(SEPARATOR) if isinstance(value, str) else ("", "", "")
    if not (taskid and sep and queue):
        raise api.ResultDoesNotExist(f"{value!r} is not an rpqueue result id "
                                     f"('<task id>:<queue>')")
    return taskid, queue


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def stamp(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def error_record(exc: BaseException) -> dict[str, str]:
    kind = type(exc)
    return {"exception_class_path": f"{kind.__module__}.{kind.__qualname__}",
            "traceback": "".join(traceback.format_exception(exc))}


def json_value(value: Any) -> Any:
    """The value as it comes back from JSON (tuples become lists...), or TypeError."""
    return json.loads(json.dumps(value, allow_nan=False))


def django_task(path: str, meta: dict[str, Any]) -> Any:
    """The Django Task at ``path``, with the options this call was queued with.

    The path comes from a message, so it only names a task in a module this
    worker already loaded (the ``tasks`` modules of installed apps, imported
    at start by ``rpqueue_worker``): a message never makes a worker import
    code.
    """
    module_name, _, attr = path.rpartition(".")
    module = sys.modules.get(module_name) if module_name else None
    if module is None:
        raise api.InvalidTask(f"{path!r} is not in a module this worker loaded at start (the "
                              "'tasks' modules of INSTALLED_APPS); rpqueue never imports a "
                              "module named by a message")
    found = getattr(module, attr, None)
    if not isinstance(found, api.Task):
        raise api.InvalidTask(f"{path!r} is not a Django task (decorate it with @task)")
    changes: dict[str, Any] = {}
    if "metadata" in meta:  # Django 6.1+ tasks carry metadata
        changes["metadata"] = meta["metadata"]
    return found.using(priority=meta["priority"], queue_name=meta["queue_name"],
                       backend=meta["backend"], run_after=when(meta.get("run_after")), **changes)


def task_result(task: Any, rid: str, status: Any, args: list[Any], kwargs: dict[str, Any],
                meta: dict[str, Any], outcome: dict[str, Any] | None = None) -> Any:
    """A framework TaskResult from what was queued and, once run, its outcome."""
    outcome = outcome or {}
    started = when(outcome.get("started_at"))
    result = api.TaskResult(
        task=task, id=rid, status=status, enqueued_at=when(meta.get("enqueued_at")),
        started_at=started, finished_at=when(outcome.get("finished_at")),
        last_attempted_at=started, args=args, kwargs=kwargs, backend=meta["backend"],
        errors=[api.TaskError(**e) for e in outcome.get("errors", [])],
        worker_ids=[outcome["worker_id"]] if outcome.get("worker_id") else [],
    )
    if "return_value" in outcome:
        # The framework keeps it in a private field of a frozen dataclass.
        object.__setattr__(result, "_return_value", outcome["return_value"])
    return result
