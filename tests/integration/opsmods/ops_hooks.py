"""A worker module that registers lifecycle hooks: a broken one first (it must not
disturb anything), then one that writes every event it receives to Redis."""

from __future__ import annotations

import json
import os
from typing import Any

import ops_limits  # noqa: F401  (the tasks this worker runs)
import ops_tasks  # noqa: F401
from ops_ledger import HOOK_EVENTS

import rpqueue


def _write(event: str, **fields: Any) -> None:
    record = {"event": event, "pid": os.getpid(), **fields}
    rpqueue.default_app().client.rpush(HOOK_EVENTS, json.dumps(record, default=repr))


class BrokenHook:
    def before_task(self, running: Any) -> None:
        raise RuntimeError("broken before_task")

    def after_task(self, running: Any, result: Any, error: Any) -> None:
        raise RuntimeError("broken after_task")

    def on_retry(self, task: Any, taskid: str, delay: float) -> None:
        raise RuntimeError("broken on_retry")

    def on_dead(self, task: Any, taskid: str, reason: str, error: str) -> None:
        raise RuntimeError("broken on_dead")


class RecordingHook:
    def before_task(self, running: Any) -> None:
        current = rpqueue.current_task()
        _write("before_task", queue=running.queue, id=running.taskid, task=running.task.name,
               started=running.started, abort_requested=running.abort_requested,
               is_current=current is running)

    def after_task(self, running: Any, result: Any, error: Any) -> None:
        _write("after_task", queue=running.queue, id=running.taskid, task=running.task.name,
               result=result, error=None if error is None else repr(error),
               error_type=None if error is None else type(error).__name__)

    def on_retry(self, task: Any, taskid: str, delay: float) -> None:
        _write("on_retry", task=task.name, id=taskid, delay=delay)

    def on_dead(self, task: Any, taskid: str, reason: str, error: str) -> None:
        _write("on_dead", task=task.name, id=taskid, reason=reason, error=error)


rpqueue.default_app().add_hook(BrokenHook())
rpqueue.default_app().add_hook(RecordingHook())
