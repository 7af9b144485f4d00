"""Django integration (``pip install rpqueue[django]``): ``RPQueueBackend``, a
backend for Django's Tasks framework (``django.tasks``, Django 6.0+, or the
``django-tasks`` backport), and the ``rpqueue_worker`` management command
(add ``"rpqueue.contrib.django"`` to INSTALLED_APPS). See docs/ECOSYSTEM.md.
"""

from __future__ import annotations

from .backend import RPQueueBackend

__all__ = ["RPQueueBackend"]
