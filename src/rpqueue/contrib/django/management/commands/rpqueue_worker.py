"""``python manage.py rpqueue_worker``: run rpqueue workers for a Django task backend."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ... import api
from ...backend import RPQueueBackend


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no type hints
    help = ("Run rpqueue worker processes for the Django tasks of one TASKS backend "
            "(an rpqueue.contrib.django.RPQueueBackend). Queues named here are served in "
            "the order given; with none, the backend's QUEUES.")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("queues", nargs="*", metavar="QUEUE",
                            help="queues to serve, highest priority first")
        parser.add_argument("--backend", default="default",
                            help="the TASKS alias to serve (default 'default')")
        parser.add_argument("--threads", type=int, default=1, help="worker threads per process")
        parser.add_argument("--processes", type=int, default=1, help="worker processes")
        parser.add_argument("--wait", type=float, default=10,
                            help="seconds running tasks may take to finish on shutdown")
        parser.add_argument("--max-tasks-per-child", type=int, default=0, metavar="N",
                            help="replace a worker process after N tasks (default 0: never)")
        parser.add_argument("--max-memory-per-child", type=float, default=0, metavar="MIB",
                            help="replace a worker process past MIB MiB resident (0: no limit)")
        parser.add_argument("--loglevel", default="INFO", help="log level (default INFO)")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections
        from django.utils.module_loading import autodiscover_modules

        alias = options["backend"]
        try:
            backend = api.task_backends()[alias]
        except Exception as exc:
            raise CommandError(f"no task backend {alias!r} in settings.TASKS: {exc}") from exc
        if not isinstance(backend, RPQueueBackend):
            raise CommandError(f"task backend {alias!r} is {type(backend).__name__}, not "
                               "rpqueue.contrib.django.RPQueueBackend")
        queues: list[str] = options["queues"] or sorted(backend.queues)
        stray = [q for q in options["queues"] if backend.queues and q not in backend.queues]
        if stray:
            raise CommandError(f"queue(s) {', '.join(map(repr, stray))} not in the QUEUES of "
                               f"task backend {alias!r}: {sorted(backend.queues)}")
        level = logging.getLevelName(str(options["loglevel"]).upper())
        if not isinstance(level, int):
            raise CommandError(f"unknown log level {options['loglevel']!r}")
        logging.basicConfig(level=level,
                            format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
        # Tasks are found by name among modules loaded here, never imported
        # by a name from a message (contrib/django/records.py).
        autodiscover_modules("tasks")
        # Worker processes are forked: none may share the parent's database
        # connections.
        connections.close_all()
        try:
            code = backend.app.execute_tasks(
                queues or None, options["threads"], options["processes"], options["wait"],
                max_tasks_per_child=options["max_tasks_per_child"],
                max_memory_per_child=options["max_memory_per_child"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if code:
            raise SystemExit(code)
