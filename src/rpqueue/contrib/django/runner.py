"""The rpqueue task that runs Django task calls in a worker."""

from __future__ import annotations

from typing import Any

from ...worker.runner import current_task
from . import api
from .records import django_task as find_task
from .records import error_record, json_value, result_id, stamp, task_result, worker_id


def run(path: str, args: list[Any], kwargs: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Run one Django task call; returns the outcome record the backend reads.

    A task that raises is recorded as FAILED here (its error and traceback
    saved with the result), not retried: the framework defines no retries.
    """
    from django.db import close_old_connections
    from django.utils import timezone

    running = current_task()
    rid = result_id(running.taskid, running.queue) if running is not None else ""
    outcome: dict[str, Any] = {"started_at": stamp(timezone.now()), "worker_id": worker_id(),
                               "errors": []}
    task = find_task(path, meta)
    backend = type(task.get_backend())
    result = task_result(task, rid, api.TaskResultStatus.RUNNING, args, kwargs, meta, outcome)
    api.task_started.send(sender=backend, task_result=result)
    # As Django does around a request: drop connections that went stale or
    # broke while the worker waited, and never carry one into the next task.
    close_old_connections()
    try:
        if task.takes_context:
            value = task.call(api.TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        outcome["return_value"] = json_value(value)
        outcome["status"] = "SUCCESSFUL"
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        outcome["status"] = "FAILED"
        outcome["errors"].append(error_record(exc))
        outcome.pop("return_value", None)
    finally:
        close_old_connections()
    outcome["finished_at"] = stamp(timezone.now())
    done = task_result(task, rid, api.TaskResultStatus[outcome["status"]], args, kwargs, meta,
                       outcome)
    api.task_finished.send(sender=backend, task_result=done)
    return {"path": path, "args": args, "kwargs": kwargs, "meta": meta, **outcome}
