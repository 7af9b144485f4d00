"""The Tasks framework this backend plugs into: Django's own ``django.tasks``
(Django 6.0+), else the ``django-tasks`` package, its reference
implementation and backport for older Django (same API, ``django_tasks``).

Everything is looked up by name once, so the rest of the backend is
written against one API whichever is installed.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def _first(*names: str) -> ModuleType:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("rpqueue.contrib.django needs Django 6's django.tasks or the django-tasks "
                      "package: pip install 'rpqueue[django]'")


base = _first("django.tasks.base", "django_tasks.base")
_root = "django.tasks" if base.__name__.startswith("django.tasks") else "django_tasks"
backends_base = importlib.import_module(f"{_root}.backends.base")
exceptions = importlib.import_module(f"{_root}.exceptions")
signals = importlib.import_module(f"{_root}.signals")
root = importlib.import_module(_root)

BaseTaskBackend: Any = backends_base.BaseTaskBackend
Task: Any = base.Task
TaskContext: Any = base.TaskContext
TaskError: Any = base.TaskError
TaskResult: Any = base.TaskResult
TaskResultStatus: Any = base.TaskResultStatus
# Django 6 spells it TaskResultDoesNotExist, as does django-tasks.
ResultDoesNotExist: Any = exceptions.TaskResultDoesNotExist
InvalidTask: Any = getattr(exceptions, "InvalidTask", None) or exceptions.InvalidTaskError
task_enqueued: Any = signals.task_enqueued
task_started: Any = signals.task_started
task_finished: Any = signals.task_finished


def task_backends() -> Any:
    """The framework's backend handler (``TASKS`` aliases -> backends)."""
    return root.task_backends


def framework() -> str:
    """Which implementation is in use: 'django.tasks' or 'django_tasks'."""
    return _root
