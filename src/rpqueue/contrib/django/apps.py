"""The Django app that carries the ``rpqueue_worker`` management command."""

from __future__ import annotations

from django.apps import AppConfig


class RPQueueConfig(AppConfig):  # type: ignore[misc]  # Django ships no type hints
    name = "rpqueue.contrib.django"
    label = "rpqueue"
    verbose_name = "rpqueue"
